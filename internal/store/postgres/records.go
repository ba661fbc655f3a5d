package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

const columns = `request_id, attempt, ts, api_key, team, workload, model, provider, upstream_model,
	input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, estimated,
	price_input, price_output, price_cached_input, price_cache_write, price_from, cost,
	status, outcome, billable, latency_ms, stream, route, agreements`

// insertSQL inserts a batch passed as one array per column, failing on
// any conflict. It is the fast path: PostgreSQL's ON CONFLICT insertion is
// speculative and about twice as slow, and fresh batches rarely conflict.
const insertSQL = insertSelect

// insertSkipSQL is the slow path, after insertSQL hit a unique violation.
// No conflict target: a duplicate (request_id, attempt) and a second
// billable record are both skipped; Record tells them apart afterwards.
const insertSkipSQL = insertSelect + `
ON CONFLICT DO NOTHING`

const insertSelect = `INSERT INTO usage_records (` + columns + `)
SELECT r, a, ts, k, te, wl, m, pv, um, it, ot, ct, cwt, rt, est,
	pi::numeric, po::numeric, pc::numeric, pw::numeric, pf, c::numeric, st, oc, b, lat, str, ro, ag::jsonb
FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
	$10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bool[],
	$16::text[], $17::text[], $18::text[], $19::text[], $20::timestamptz[], $21::text[],
	$22::int[], $23::text[], $24::bool[], $25::bigint[], $26::bool[], $27::text[], $28::text[])
	AS t(r, a, ts, k, te, wl, m, pv, um, it, ot, ct, cwt, rt, est, pi, po, pc, pw, pf, c, st, oc, b, lat, str, ro, ag)`

// missingSQL returns the ids of a batch that are not stored: after the
// insert, those are the refused second billable records.
const missingSQL = `SELECT t.r, t.a FROM unnest($1::text[], $2::int[]) AS t(r, a)
WHERE NOT EXISTS (SELECT 1 FROM usage_records u WHERE u.request_id = t.r AND u.attempt = t.a)`

// batch holds a batch as column arrays.
type batch struct {
	id, key, team, workload, model, provider, upstream, outcome, route, agreements []string
	attempt, status                                                                []int32
	ts, from                                                                       []time.Time
	in, out, cached, written, reasoning, latency                                   []int64
	estimated, billable, stream                                                    []bool
	pIn, pOut, pCached, pWrite, cost                                               []string
}

func newBatch(recs []ledger.Record) *batch {
	n := len(recs)
	b := &batch{}
	for _, s := range []*[]string{&b.id, &b.key, &b.team, &b.workload, &b.model, &b.provider, &b.upstream, &b.outcome,
		&b.route, &b.agreements, &b.pIn, &b.pOut, &b.pCached, &b.pWrite, &b.cost} {
		*s = make([]string, 0, n)
	}
	for i := range recs {
		r := &recs[i]
		ag := "[]"
		if len(r.Agreements) > 0 {
			j, _ := json.Marshal(r.Agreements) // []string cannot fail
			ag = string(j)
		}
		b.id = append(b.id, r.RequestID)
		b.attempt = append(b.attempt, int32(r.Attempt)) // range checked by Validate
		b.ts = append(b.ts, r.Time)
		b.key = append(b.key, r.Key)
		b.team = append(b.team, r.Team)
		b.workload = append(b.workload, r.Workload)
		b.model = append(b.model, r.Model)
		b.provider = append(b.provider, r.Provider)
		b.upstream = append(b.upstream, r.UpstreamModel)
		b.in = append(b.in, r.Usage.InputTokens)
		b.out = append(b.out, r.Usage.OutputTokens)
		b.cached = append(b.cached, r.Usage.CachedTokens)
		b.written = append(b.written, r.Usage.CacheWriteTokens)
		b.reasoning = append(b.reasoning, r.Usage.ReasoningTokens)
		b.estimated = append(b.estimated, r.Estimated)
		b.pIn = append(b.pIn, r.UnitPrices.Input.String())
		b.pOut = append(b.pOut, r.UnitPrices.Output.String())
		b.pCached = append(b.pCached, r.UnitPrices.CachedInput.String())
		b.pWrite = append(b.pWrite, r.UnitPrices.CacheWrite.String())
		b.from = append(b.from, r.UnitPrices.From)
		b.cost = append(b.cost, r.Cost.String())
		b.status = append(b.status, int32(r.Status))
		b.outcome = append(b.outcome, r.Outcome)
		b.billable = append(b.billable, r.Billable)
		b.latency = append(b.latency, r.LatencyMs)
		b.stream = append(b.stream, r.Stream)
		b.route = append(b.route, r.Route)
		b.agreements = append(b.agreements, ag)
	}
	return b
}

func (b *batch) args() []any {
	return []any{b.id, b.attempt, b.ts, b.key, b.team, b.workload, b.model, b.provider, b.upstream,
		b.in, b.out, b.cached, b.written, b.reasoning, b.estimated,
		b.pIn, b.pOut, b.pCached, b.pWrite, b.from, b.cost,
		b.status, b.outcome, b.billable, b.latency, b.stream, b.route, b.agreements}
}

// uniqueViolation is PostgreSQL's SQLSTATE unique_violation.
const uniqueViolation = "23505"

// Record implements ledger.Recorder with one INSERT for the whole batch.
// A single statement outside a transaction is atomic: if it hits a unique
// violation nothing was stored, and the batch is inserted again skipping
// conflicts. Only when rows were skipped does a third query find which of
// them were refused (not stored under their own id) rather than
// duplicates.
func (s *Store) Record(ctx context.Context, recs []ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return fmt.Errorf("record usage: %w", err)
		}
		if recs[i].Status < -1<<31 || recs[i].Status > 1<<31-1 {
			return fmt.Errorf("record usage: status %d out of range", recs[i].Status)
		}
	}
	b := newBatch(recs)
	tag, err := s.pool.Exec(ctx, insertSQL, b.args()...)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		tag, err = s.pool.Exec(ctx, insertSkipSQL, b.args()...)
	}
	if err != nil {
		return fmt.Errorf("record usage: insert: %w", err)
	}
	if int(tag.RowsAffected()) == len(recs) {
		return nil
	}
	rows, err := s.pool.Query(ctx, missingSQL, b.id, b.attempt)
	if err != nil {
		return fmt.Errorf("record usage: check conflicts: %w", err)
	}
	defer rows.Close()
	var refused []ledger.ID
	for rows.Next() {
		var id ledger.ID
		var attempt int32
		if err := rows.Scan(&id.RequestID, &attempt); err != nil {
			return fmt.Errorf("record usage: check conflicts: %w", err)
		}
		id.Attempt = int(attempt)
		refused = append(refused, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("record usage: check conflicts: %w", err)
	}
	if refused != nil {
		return &ledger.RejectedError{IDs: refused}
	}
	return nil
}

// Records returns the records of requestID ordered by attempt.
func (s *Store) Records(ctx context.Context, requestID string) ([]ledger.Record, error) {
	rows, err := s.pool.Query(ctx, `SELECT request_id, attempt, ts, api_key, team, workload, model, provider, upstream_model,
		input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, estimated,
		price_input::text, price_output::text, price_cached_input::text, price_cache_write::text, price_from, cost::text,
		status, outcome, billable, latency_ms, stream, route, agreements::text
		FROM usage_records WHERE request_id = $1 ORDER BY attempt`, requestID)
	if err != nil {
		return nil, fmt.Errorf("read records %q: %w", requestID, err)
	}
	defer rows.Close()
	var out []ledger.Record
	for rows.Next() {
		var r ledger.Record
		var attempt, status int32
		var pi, po, pc, pw, cost, ag string
		if err := rows.Scan(&r.RequestID, &attempt, &r.Time, &r.Key, &r.Team, &r.Workload, &r.Model, &r.Provider, &r.UpstreamModel,
			&r.Usage.InputTokens, &r.Usage.OutputTokens, &r.Usage.CachedTokens, &r.Usage.CacheWriteTokens, &r.Usage.ReasoningTokens, &r.Estimated,
			&pi, &po, &pc, &pw, &r.UnitPrices.From, &cost,
			&status, &r.Outcome, &r.Billable, &r.LatencyMs, &r.Stream, &r.Route, &ag); err != nil {
			return nil, fmt.Errorf("read records %q: %w", requestID, err)
		}
		r.Attempt, r.Status = int(attempt), int(status)
		r.Time, r.UnitPrices.From = r.Time.UTC(), r.UnitPrices.From.UTC()
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
