package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
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

// chunkSize records at most go in one INSERT: 128*28 = 3584 parameters,
// well under SQLite's limit of 32766.
const chunkSize = 128

// shape is what an insert statement depends on: how many rows it inserts,
// and which columns hold the same value in every one of them.
type shape struct {
	rows int
	same uint32 // bit c set: column c is bound once, for all rows
}

// maxShapes bounds the prepared inserts kept. Beyond it, a chunk whose
// shape is new binds every value per row (same 0), a shape kept for each
// chunk size.
const maxShapes = 128

// insertSQL writes the insert of sh. Every parameter is anonymous: the
// driver looks up each parameter's name, which SQLite finds by a linear
// search, so numbered parameters made binding quadratic. The shared
// values are therefore parameters of a one-row CTE, written first so
// that they take the first numbers, joined to the rows of varying values.
//
// OR IGNORE skips a duplicate (request_id, attempt) and a second billable
// record alike; Record tells them apart. It also spares every statement a
// statement journal: ON CONFLICT DO NOTHING left the NOT NULL checks able
// to abort a statement of many rows halfway, so SQLite journalled each page
// the statement touched, 10–20% of the writer's CPU. No column is ever
// bound NULL, so nothing else is ever ignored.
func insertSQL(sh shape) string {
	var b strings.Builder
	if sh.same == 0 {
		b.WriteString("INSERT OR IGNORE INTO usage_records (" + columns + ") VALUES ")
		row := "(" + strings.Repeat("?,", numColumns-1) + "?)"
		for i := range sh.rows {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(row)
		}
	} else {
		var shared, varying, sel []string
		for c := range numColumns {
			if sh.same&(1<<c) != 0 {
				shared = append(shared, fmt.Sprintf("s%d", c))
				sel = append(sel, fmt.Sprintf("s%d", c))
			} else {
				varying = append(varying, "?")
				sel = append(sel, fmt.Sprintf("column%d", len(varying)))
			}
		}
		row := "(" + strings.Join(varying, ",") + ")"
		fmt.Fprintf(&b, "WITH s(%s) AS (SELECT %s) INSERT OR IGNORE INTO usage_records (%s) SELECT %s FROM s, (VALUES ",
			strings.Join(shared, ","), strings.Repeat("?,", len(shared)-1)+"?", columns, strings.Join(sel, ","))
		for i := range sh.rows {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(row)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// column is one column of usage_records: whether two records hold the
// same value in it, and the value as an insert argument.
type column struct {
	equal func(a, b *ledger.Record) bool
	value func(r *ledger.Record) any
}

func strColumn(f func(r *ledger.Record) string) column {
	return column{func(a, b *ledger.Record) bool { return f(a) == f(b) }, func(r *ledger.Record) any { return f(r) }}
}

func intColumn(f func(r *ledger.Record) int64) column {
	return column{func(a, b *ledger.Record) bool { return f(a) == f(b) }, func(r *ledger.Record) any { return f(r) }}
}

func boolColumn(f func(r *ledger.Record) bool) column {
	return column{func(a, b *ledger.Record) bool { return f(a) == f(b) }, func(r *ledger.Record) any { return f(r) }}
}

func moneyColumn(f func(r *ledger.Record) *pricing.Money) column {
	return column{func(a, b *ledger.Record) bool { return f(a).Equal(*f(b)) }, func(r *ledger.Record) any { return f(r).String() }}
}

var emptyArray any = "[]" // agreements of a record with none

// usageColumns are the columns of usage_records, in the order of columns.
var usageColumns = [numColumns]column{
	strColumn(func(r *ledger.Record) string { return r.RequestID }),
	intColumn(func(r *ledger.Record) int64 { return int64(r.Attempt) }),
	intColumn(func(r *ledger.Record) int64 { return r.Time.UnixMicro() }),
	strColumn(func(r *ledger.Record) string { return r.Key }),
	strColumn(func(r *ledger.Record) string { return r.Team }),
	strColumn(func(r *ledger.Record) string { return r.Workload }),
	strColumn(func(r *ledger.Record) string { return r.Model }),
	strColumn(func(r *ledger.Record) string { return r.Provider }),
	strColumn(func(r *ledger.Record) string { return r.UpstreamModel }),
	intColumn(func(r *ledger.Record) int64 { return r.Usage.InputTokens }),
	intColumn(func(r *ledger.Record) int64 { return r.Usage.OutputTokens }),
	intColumn(func(r *ledger.Record) int64 { return r.Usage.CachedTokens }),
	intColumn(func(r *ledger.Record) int64 { return r.Usage.CacheWriteTokens }),
	intColumn(func(r *ledger.Record) int64 { return r.Usage.ReasoningTokens }),
	boolColumn(func(r *ledger.Record) bool { return r.Estimated }),
	moneyColumn(func(r *ledger.Record) *pricing.Money { return &r.UnitPrices.Input }),
	moneyColumn(func(r *ledger.Record) *pricing.Money { return &r.UnitPrices.Output }),
	moneyColumn(func(r *ledger.Record) *pricing.Money { return &r.UnitPrices.CachedInput }),
	moneyColumn(func(r *ledger.Record) *pricing.Money { return &r.UnitPrices.CacheWrite }),
	intColumn(func(r *ledger.Record) int64 { return r.UnitPrices.From.UnixMicro() }),
	moneyColumn(func(r *ledger.Record) *pricing.Money { return &r.Cost }),
	intColumn(func(r *ledger.Record) int64 { return int64(r.Status) }),
	strColumn(func(r *ledger.Record) string { return r.Outcome }),
	boolColumn(func(r *ledger.Record) bool { return r.Billable }),
	intColumn(func(r *ledger.Record) int64 { return r.LatencyMs }),
	boolColumn(func(r *ledger.Record) bool { return r.Stream }),
	strColumn(func(r *ledger.Record) string { return r.Route }),
	{
		equal: func(a, b *ledger.Record) bool { return slices.Equal(a.Agreements, b.Agreements) },
		value: func(r *ledger.Record) any {
			if len(r.Agreements) == 0 {
				return emptyArray
			}
			ag, _ := json.Marshal(r.Agreements) // []string cannot fail
			return string(ag)
		},
	},
}

// sameColumns returns the columns holding one value in every record of
// recs, as a bit set, except the request id.
func sameColumns(recs []ledger.Record) uint32 {
	var same uint32
	first := &recs[0]
	for c := range usageColumns {
		eq := true
		for i := 1; i < len(recs) && eq; i++ {
			eq = usageColumns[c].equal(first, &recs[i])
		}
		if eq {
			same |= 1 << c
		}
	}
	// A row needs a value of its own: keep the request id per row even
	// when a batch holds one record twice.
	return same &^ 1
}

// appendArgs appends the arguments inserting recs as shaped by same: the
// columns in same once, then the others row by row. Binding a column
// once instead of per row matters: the records of a batch mostly share
// their key, model, provider, prices and so on, and in the pure-Go driver
// each argument costs calls into SQLite and, for text, a copy into C
// memory, about a third of an insert's time when every value was bound
// per row. A value equal to the previous row's reuses its box: boxing a
// string or a large integer allocates, and so does formatting money.
func appendArgs(args []any, recs []ledger.Record, same uint32) []any {
	for c := range usageColumns {
		if same&(1<<c) != 0 {
			args = append(args, usageColumns[c].value(&recs[0]))
		}
	}
	var box [numColumns]any
	for i := range recs {
		r := &recs[i]
		for c := range usageColumns {
			if same&(1<<c) != 0 {
				continue
			}
			if i == 0 || !usageColumns[c].equal(r, &recs[i-1]) {
				box[c] = usageColumns[c].value(r)
			}
			args = append(args, box[c])
		}
	}
	return args
}

// chunk is the records one insert statement stores, and that statement.
type chunk struct {
	recs  []ledger.Record
	sh    shape
	stmt  *sql.Stmt
	local bool // stmt was prepared in the transaction, not on the pool
}

// split cuts recs into chunks of chunkSize records, and the rest into
// chunks of falling powers of two: a handful of statement sizes serve
// every batch.
func split(recs []ledger.Record) []chunk {
	var out []chunk
	for rest := recs; len(rest) > 0; {
		n := chunkSize
		for n > len(rest) {
			n /= 2
		}
		out = append(out, chunk{recs: rest[:n], sh: shape{rows: n, same: sameColumns(rest[:n])}})
		rest = rest[n:]
	}
	return out
}

// Record implements ledger.Recorder: one batch of Begin, Add and Commit,
// so one transaction of multi-row inserts that skip conflicts, then, only
// for chunks where rows were skipped, a look-up telling duplicates (stored
// under their own id) from refused second billable records.
func (s *Store) Record(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	b, err := s.Begin(ctx)
	if err != nil {
		return err
	}
	if err := b.Add(ctx, recs); err != nil {
		b.Rollback()
		return err
	}
	return b.Commit(ctx)
}

// insert runs chunks' inserts in tx and returns refused with the ids of
// the second billable records it skipped appended.
func insert(ctx context.Context, tx *sql.Tx, chunks []chunk, refused []ledger.ID) ([]ledger.ID, error) {
	args := make([]any, 0, min(len(chunks[0].recs), chunkSize)*numColumns)
	for _, c := range chunks {
		args = appendArgs(args[:0], c.recs, c.sh.same)
		st := c.stmt
		if !c.local {
			st = tx.StmtContext(ctx, st)
		}
		res, err := st.ExecContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("record usage: insert: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("record usage: %w", err)
		}
		if int(n) == len(c.recs) {
			continue
		}
		for i := range c.recs {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM usage_records WHERE request_id = ? AND attempt = ?`,
				c.recs[i].RequestID, c.recs[i].Attempt).Scan(&one)
			switch {
			case err == sql.ErrNoRows:
				refused = append(refused, c.recs[i].ID())
			case err != nil:
				return nil, fmt.Errorf("record usage: check conflicts: %w", err)
			}
		}
	}
	return refused, nil
}

// Begin implements ledger.Batcher: the batch is one write transaction,
// held until Commit or Rollback, which other writes to the database wait
// for (the admin API's key changes, another process).
func (s *Store) Begin(ctx context.Context) (ledger.OpenBatch, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("record usage: begin: %w", err)
	}
	return &openBatch{s: s, tx: tx}, nil
}

// openBatch is a ledger.OpenBatch in one SQLite transaction.
type openBatch struct {
	s       *Store
	tx      *sql.Tx
	refused []ledger.ID
	// local are the inserts prepared in tx because the pool had none of
	// their shape: the transaction holds the pool's only connection.
	// They are prepared on the pool once the transaction ends.
	local map[shape]*sql.Stmt
}

// Add implements ledger.OpenBatch.
func (b *openBatch) Add(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return fmt.Errorf("record usage: %w", err)
		}
	}
	chunks := split(recs)
	for i := range chunks {
		c := &chunks[i]
		var ok bool
		if c.stmt, c.sh, ok = b.s.cachedStmt(c.sh); ok {
			continue
		}
		if c.stmt = b.local[c.sh]; c.stmt == nil {
			st, err := b.tx.PrepareContext(ctx, insertSQL(c.sh))
			if err != nil {
				return fmt.Errorf("record usage: prepare: %w", err)
			}
			if b.local == nil {
				b.local = make(map[shape]*sql.Stmt)
			}
			b.local[c.sh], c.stmt = st, st
		}
		c.local = true
	}
	var err error
	b.refused, err = insert(ctx, b.tx, chunks, b.refused)
	return err
}

// Commit implements ledger.OpenBatch.
func (b *openBatch) Commit(ctx context.Context) error {
	defer b.end()
	if err := ctx.Err(); err != nil {
		b.tx.Rollback()
		return fmt.Errorf("record usage: commit: %w", err)
	}
	if err := b.tx.Commit(); err != nil {
		return fmt.Errorf("record usage: commit: %w", err)
	}
	if b.refused != nil {
		return &ledger.RejectedError{IDs: b.refused}
	}
	return nil
}

// Rollback implements ledger.OpenBatch.
func (b *openBatch) Rollback() error {
	defer b.end()
	if err := b.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("record usage: rollback: %w", err)
	}
	return nil
}

// end prepares on the pool, for the next batches, the inserts this one
// had to prepare in its transaction. A failure leaves them to be
// prepared again in a later batch.
func (b *openBatch) end() {
	for sh := range b.local {
		b.s.keep(sh)
	}
	b.local = nil
}

// keep prepares the insert of sh on the pool and keeps it, unless one is
// kept already or maxShapes are and sh binds shared columns: beyond that
// bound a chunk binds every value per row (same 0), one statement per
// chunk size. Compiling a multi-row statement for every batch cost more
// than inserting the rows. It prepares without holding stmtMu: preparing
// waits for the pool's one connection, which an open batch may hold
// while it looks up its inserts under stmtMu.
func (s *Store) keep(sh shape) {
	if _, got, ok := s.cachedStmt(sh); ok || got != sh {
		return
	}
	st, err := s.w.PrepareContext(context.Background(), insertSQL(sh))
	if err != nil {
		return
	}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if s.inserts[sh] != nil || (len(s.inserts) >= maxShapes && sh.same != 0) {
		st.Close()
		return
	}
	s.inserts[sh] = st
}

// cachedStmt returns the kept insert of sh and the shape it really has
// (same 0 once maxShapes are kept and sh is not among them); ok is false,
// with the shape to prepare, when none is kept.
func (s *Store) cachedStmt(sh shape) (*sql.Stmt, shape, bool) {
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st := s.inserts[sh]; st != nil {
		return st, sh, true
	}
	if len(s.inserts) >= maxShapes {
		sh.same = 0
		if st := s.inserts[sh]; st != nil {
			return st, sh, true
		}
	}
	return nil, sh, false
}

// Records returns the records of requestID ordered by attempt.
func (s *Store) Records(ctx context.Context, requestID string) ([]ledger.Record, error) {
	out, err := s.records(ctx, `WHERE request_id = ? ORDER BY attempt`, requestID)
	if err != nil {
		return nil, fmt.Errorf("read records %q: %w", requestID, err)
	}
	return out, nil
}

// records returns the records that where, a WHERE clause and what follows
// it, selects.
func (s *Store) records(ctx context.Context, where string, args ...any) ([]ledger.Record, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+columns+` FROM usage_records `+where, args...)
	if err != nil {
		return nil, err
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
			return nil, err
		}
		r.Time = time.UnixMicro(ts).UTC()
		r.UnitPrices.From = time.UnixMicro(from).UTC()
		for _, f := range []struct {
			dst *pricing.Money
			src string
		}{{&r.UnitPrices.Input, pi}, {&r.UnitPrices.Output, po}, {&r.UnitPrices.CachedInput, pc}, {&r.UnitPrices.CacheWrite, pw}, {&r.Cost, cost}} {
			if *f.dst, err = pricing.ParseMoney(f.src); err != nil {
				return nil, err
			}
		}
		if err := json.Unmarshal([]byte(ag), &r.Agreements); err != nil {
			return nil, fmt.Errorf("agreements: %w", err)
		}
		if len(r.Agreements) == 0 {
			r.Agreements = nil
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
