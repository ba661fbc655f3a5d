package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

var _ ledger.Scanner = (*Store)(nil)

// scanColumns are the columns Scan reads, all but the prices and route,
// and the type each is decoded as. Money and agreements come as text:
// NUMERIC's binary form would need converting, and JSONB's text is JSON.
var scanColumns = []struct {
	expr string
	oid  uint32
}{
	{"request_id", pgtype.TextOID}, {"attempt", pgtype.Int4OID}, {"ts", pgtype.TimestamptzOID},
	{"api_key", pgtype.TextOID}, {"team", pgtype.TextOID}, {"workload", pgtype.TextOID},
	{"model", pgtype.TextOID}, {"provider", pgtype.TextOID}, {"upstream_model", pgtype.TextOID},
	{"input_tokens", pgtype.Int8OID}, {"output_tokens", pgtype.Int8OID}, {"cached_tokens", pgtype.Int8OID},
	{"cache_write_tokens", pgtype.Int8OID}, {"reasoning_tokens", pgtype.Int8OID}, {"estimated", pgtype.BoolOID},
	{"cost::text", pgtype.TextOID}, {"status", pgtype.Int4OID}, {"outcome", pgtype.TextOID},
	{"billable", pgtype.BoolOID}, {"latency_ms", pgtype.Int8OID}, {"stream", pgtype.BoolOID},
	{"agreements::text", pgtype.TextOID},
}

// Positions in scanColumns.
const (
	colRequestID = iota
	colAttempt
	colTS
	colKey
	colTeam
	colWorkload
	colModel
	colProvider
	colUpstreamModel
	colInputTokens
	colOutputTokens
	colCachedTokens
	colCacheWriteTokens
	colReasoningTokens
	colEstimated
	colCost
	colStatus
	colOutcome
	colBillable
	colLatencyMs
	colStream
	colAgreements
	numScanColumns
)

// binaryResults asks for every column in binary format, which Scan
// decodes itself from the raw row.
var binaryResults = func() pgx.QueryResultFormats {
	f := make(pgx.QueryResultFormats, numScanColumns)
	for i := range f {
		f[i] = pgx.BinaryFormatCode
	}
	return f
}()

func scanSQL(f ledger.ScanFilter) (string, []any) {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range scanColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.expr)
	}
	b.WriteString(" FROM usage_records")
	args := []any{binaryResults}
	var where []string
	if !f.From.IsZero() {
		args = append(args, f.From)
		where = append(where, fmt.Sprintf("ts >= $%d", len(args)-1))
	}
	if !f.To.IsZero() {
		args = append(args, f.To)
		where = append(where, fmt.Sprintf("ts < $%d", len(args)-1))
	}
	if f.BillableOnly {
		where = append(where, "billable")
	}
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	// COLLATE "C" orders request ids byte-wise, as SQLite and Go do,
	// whatever the database's collation. With the ts index PostgreSQL
	// sorts each run of equal ts (an incremental sort), not the whole scan.
	b.WriteString(` ORDER BY ts, request_id COLLATE "C", attempt`)
	return b.String(), args
}

// errScanFormat reports a result column not in the expected type and
// binary format, as happens when the pool is configured for the simple
// protocol, which only returns text.
var errScanFormat = errors.New("unexpected result column format")

// Scan implements ledger.Scanner with one query whose rows pgx streams
// from the connection; Scan decodes each raw row in place. It holds a
// pool connection for the whole scan. If the scan stops early, the
// connection is closed rather than drained.
func (s *Store) Scan(ctx context.Context, f ledger.ScanFilter, fn func(*ledger.Record) error) error {
	// Cancelling before Close makes pgx drop the connection instead of
	// reading every remaining row when fn stops the scan early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q, args := scanSQL(f)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	defer func() {
		cancel()
		rows.Close()
	}()
	fds := rows.FieldDescriptions()
	if len(fds) != numScanColumns {
		return fmt.Errorf("scan records: %d result columns, want %d: %w", len(fds), numScanColumns, errScanFormat)
	}
	for i, fd := range fds {
		if fd.DataTypeOID != scanColumns[i].oid || fd.Format != pgx.BinaryFormatCode {
			return fmt.Errorf("scan records: column %s: type %d, format %d: %w", fd.Name, fd.DataTypeOID, fd.Format, errScanFormat)
		}
	}
	var (
		r      ledger.Record
		strs   ledger.Interner
		agreed ledger.AgreementsCache
		done   = ctx.Done()
	)
	for rows.Next() {
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		if err := decodeRow(&r, rows.RawValues(), &strs, &agreed); err != nil {
			return fmt.Errorf("scan records: %w", err)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scan records: %w", err)
	}
	return nil
}

// errScanValue reports a raw value of the wrong size, or a NULL.
var errScanValue = errors.New("malformed value")

// pgEpochMicros is 2000-01-01 UTC, PostgreSQL's timestamp epoch, in Unix
// microseconds.
const pgEpochMicros = 946_684_800_000_000

// decodeRow fills r from the binary values of one row of scanColumns.
// Strings that repeat across records are interned in strs.
func decodeRow(r *ledger.Record, v [][]byte, strs *ledger.Interner, agreed *ledger.AgreementsCache) error {
	if len(v) != numScanColumns {
		return fmt.Errorf("%d values, want %d: %w", len(v), numScanColumns, errScanValue)
	}
	for _, want := range [...]struct{ col, size int }{
		{colAttempt, 4}, {colTS, 8}, {colInputTokens, 8}, {colOutputTokens, 8}, {colCachedTokens, 8},
		{colCacheWriteTokens, 8}, {colReasoningTokens, 8}, {colEstimated, 1}, {colStatus, 4},
		{colBillable, 1}, {colLatencyMs, 8}, {colStream, 1},
	} {
		if len(v[want.col]) != want.size {
			return fmt.Errorf("column %s: %d bytes: %w", scanColumns[want.col].expr, len(v[want.col]), errScanValue)
		}
	}
	for _, col := range [...]int{colRequestID, colKey, colTeam, colWorkload, colModel, colProvider, colUpstreamModel, colCost, colOutcome, colAgreements} {
		if v[col] == nil { // NOT NULL columns; a NULL would read as ""
			return fmt.Errorf("column %s: null: %w", scanColumns[col].expr, errScanValue)
		}
	}
	r.RequestID = string(v[colRequestID])
	r.Attempt = int(int32(binary.BigEndian.Uint32(v[colAttempt])))
	ts := int64(binary.BigEndian.Uint64(v[colTS]))
	if ts == math.MaxInt64 || ts == math.MinInt64 {
		return fmt.Errorf("%q/%d: infinite time: %w", r.RequestID, r.Attempt, errScanValue)
	}
	r.Time = time.UnixMicro(ts + pgEpochMicros).UTC()
	r.Key = strs.Get(v[colKey])
	r.Team = strs.Get(v[colTeam])
	r.Workload = strs.Get(v[colWorkload])
	r.Model = strs.Get(v[colModel])
	r.Provider = strs.Get(v[colProvider])
	r.UpstreamModel = strs.Get(v[colUpstreamModel])
	r.Usage.InputTokens = int64(binary.BigEndian.Uint64(v[colInputTokens]))
	r.Usage.OutputTokens = int64(binary.BigEndian.Uint64(v[colOutputTokens]))
	r.Usage.CachedTokens = int64(binary.BigEndian.Uint64(v[colCachedTokens]))
	r.Usage.CacheWriteTokens = int64(binary.BigEndian.Uint64(v[colCacheWriteTokens]))
	r.Usage.ReasoningTokens = int64(binary.BigEndian.Uint64(v[colReasoningTokens]))
	r.Estimated = v[colEstimated][0] != 0
	r.Status = int(int32(binary.BigEndian.Uint32(v[colStatus])))
	r.Outcome = strs.Get(v[colOutcome])
	r.Billable = v[colBillable][0] != 0
	r.LatencyMs = int64(binary.BigEndian.Uint64(v[colLatencyMs]))
	r.Stream = v[colStream][0] != 0
	var err error
	if r.Cost, err = pricing.ParseMoneyBytes(v[colCost]); err != nil {
		return fmt.Errorf("%q/%d: %w", r.RequestID, r.Attempt, err)
	}
	if r.Agreements, err = agreed.Decode(v[colAgreements], nil); err != nil {
		return fmt.Errorf("%q/%d: agreements: %w", r.RequestID, r.Attempt, err)
	}
	return nil
}
