package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

const columns = `request_id, attempt, ts, api_key, team, workload, model, provider, upstream_model,
	input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, estimated,
	price_input, price_output, price_cached_input, price_cache_write, price_from, cost,
	status, outcome, billable, latency_ms, stream, route, agreements`

const numColumns = 28

// chunkSize records go in one INSERT: 128*28 = 3584 parameters, well under
// SQLite's limit of 32766.
const chunkSize = 128

func insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO usage_records (" + columns + ") VALUES ")
	row := "(" + strings.Repeat("?,", numColumns-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	// No conflict target: a duplicate (request_id, attempt) and a second
	// billable record are both skipped; Record tells them apart.
	b.WriteString(" ON CONFLICT DO NOTHING")
	return b.String()
}

// rowArgs boxes records into insert arguments. Consecutive records of a
// batch mostly share their key, model, provider, prices and so on, so a
// value equal to the previous record's reuses its box: boxing a string
// or a large integer allocates, and so does formatting money. Not safe
// for concurrent use.
type rowArgs struct {
	prev *ledger.Record
	box  [numColumns]any
}

var emptyArray any = "[]" // agreements of a record with none

func (a *rowArgs) append(args []any, r *ledger.Record) []any {
	p, b := a.prev, &a.box
	all := p == nil
	if all {
		p = r
	}
	str := func(i int, v, old string) {
		if all || v != old {
			b[i] = v
		}
	}
	num := func(i int, v, old int64) {
		if all || v != old {
			b[i] = v
		}
	}
	money := func(i int, v, old *pricing.Money) {
		if all || !v.Equal(*old) {
			b[i] = v.String()
		}
	}
	str(0, r.RequestID, p.RequestID)
	num(1, int64(r.Attempt), int64(p.Attempt))
	num(2, r.Time.UnixMicro(), p.Time.UnixMicro())
	str(3, r.Key, p.Key)
	str(4, r.Team, p.Team)
	str(5, r.Workload, p.Workload)
	str(6, r.Model, p.Model)
	str(7, r.Provider, p.Provider)
	str(8, r.UpstreamModel, p.UpstreamModel)
	num(9, r.Usage.InputTokens, p.Usage.InputTokens)
	num(10, r.Usage.OutputTokens, p.Usage.OutputTokens)
	num(11, r.Usage.CachedTokens, p.Usage.CachedTokens)
	num(12, r.Usage.CacheWriteTokens, p.Usage.CacheWriteTokens)
	num(13, r.Usage.ReasoningTokens, p.Usage.ReasoningTokens)
	b[14] = r.Estimated // a bool's box never allocates
	money(15, &r.UnitPrices.Input, &p.UnitPrices.Input)
	money(16, &r.UnitPrices.Output, &p.UnitPrices.Output)
	money(17, &r.UnitPrices.CachedInput, &p.UnitPrices.CachedInput)
	money(18, &r.UnitPrices.CacheWrite, &p.UnitPrices.CacheWrite)
	num(19, r.UnitPrices.From.UnixMicro(), p.UnitPrices.From.UnixMicro())
	money(20, &r.Cost, &p.Cost)
	num(21, int64(r.Status), int64(p.Status))
	str(22, r.Outcome, p.Outcome)
	b[23] = r.Billable
	num(24, r.LatencyMs, p.LatencyMs)
	b[25] = r.Stream
	str(26, r.Route, p.Route)
	if all || !slices.Equal(r.Agreements, p.Agreements) {
		b[27] = emptyArray
		if len(r.Agreements) > 0 {
			ag, _ := json.Marshal(r.Agreements) // []string cannot fail
			b[27] = string(ag)
		}
	}
	a.prev = r
	return append(args, b[:]...)
}

// Record implements ledger.Recorder: one transaction, multi-row inserts
// that skip conflicts, then, only for chunks where rows were skipped, a
// look-up telling duplicates (stored under their own id) from refused
// second billable records.
func (s *Store) Record(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return fmt.Errorf("record usage: %w", err)
		}
	}
	// Prepare before the transaction: the writer pool has one connection,
	// which the transaction holds.
	var stmts [2]*sql.Stmt // full chunks, and the last, partial one
	var err error
	if stmts[0], err = s.insertStmt(ctx, chunkSize); err == nil && len(recs)%chunkSize != 0 {
		stmts[1], err = s.insertStmt(ctx, len(recs)%chunkSize)
	}
	if err != nil {
		return fmt.Errorf("record usage: prepare: %w", err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record usage: begin: %w", err)
	}
	defer tx.Rollback()
	var refused []ledger.ID
	args := make([]any, 0, chunkSize*numColumns)
	var rows rowArgs
	for start := 0; start < len(recs); start += chunkSize {
		chunk := recs[start:min(start+chunkSize, len(recs))]
		args = args[:0]
		for i := range chunk {
			args = rows.append(args, &chunk[i])
		}
		stmt := stmts[0]
		if len(chunk) < chunkSize {
			stmt = stmts[1]
		}
		res, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
		if err != nil {
			return fmt.Errorf("record usage: insert: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("record usage: %w", err)
		}
		if int(n) == len(chunk) {
			continue
		}
		for i := range chunk {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM usage_records WHERE request_id = ? AND attempt = ?`,
				chunk[i].RequestID, chunk[i].Attempt).Scan(&one)
			switch {
			case err == sql.ErrNoRows:
				refused = append(refused, chunk[i].ID())
			case err != nil:
				return fmt.Errorf("record usage: check conflicts: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record usage: commit: %w", err)
	}
	if refused != nil {
		return &ledger.RejectedError{IDs: refused}
	}
	return nil
}

// insertStmt returns the prepared insert of n rows, preparing it on first
// use: a batch's size varies with the load, and compiling a multi-row
// statement for every batch cost more than inserting the rows.
func (s *Store) insertStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st := s.inserts[n]; st != nil {
		return st, nil
	}
	st, err := s.w.PrepareContext(ctx, insertSQL(n))
	if err != nil {
		return nil, err
	}
	s.inserts[n] = st
	return st, nil
}

// Records returns the records of requestID ordered by attempt.
func (s *Store) Records(ctx context.Context, requestID string) ([]ledger.Record, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+columns+` FROM usage_records WHERE request_id = ? ORDER BY attempt`, requestID)
	if err != nil {
		return nil, fmt.Errorf("read records %q: %w", requestID, err)
	}
	defer rows.Close()
	var out []ledger.Record
	for rows.Next() {
		var r ledger.Record
		var ts, from int64
		var pi, po, pc, pw, cost, ag string
		if err := rows.Scan(&r.RequestID, &r.Attempt, &ts, &r.Key, &r.Team, &r.Workload, &r.Model, &r.Provider, &r.UpstreamModel,
			&r.Usage.InputTokens, &r.Usage.OutputTokens, &r.Usage.CachedTokens, &r.Usage.CacheWriteTokens, &r.Usage.ReasoningTokens, &r.Estimated,
			&pi, &po, &pc, &pw, &from, &cost,
			&r.Status, &r.Outcome, &r.Billable, &r.LatencyMs, &r.Stream, &r.Route, &ag); err != nil {
			return nil, fmt.Errorf("read records %q: %w", requestID, err)
		}
		r.Time = time.UnixMicro(ts).UTC()
		r.UnitPrices.From = time.UnixMicro(from).UTC()
		for _, f := range []struct {
			dst *pricing.Money
			src string
		}{{&r.UnitPrices.Input, pi}, {&r.UnitPrices.Output, po}, {&r.UnitPrices.CachedInput, pc}, {&r.UnitPrices.CacheWrite, pw}, {&r.Cost, cost}} {
			if *f.dst, err = pricing.ParseMoney(f.src); err != nil {
				return nil, fmt.Errorf("read records %q: %w", requestID, err)
			}
		}
		if err := json.Unmarshal([]byte(ag), &r.Agreements); err != nil {
			return nil, fmt.Errorf("read records %q: agreements: %w", requestID, err)
		}
		if len(r.Agreements) == 0 {
			r.Agreements = nil
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read records %q: %w", requestID, err)
	}
	return out, nil
}
