package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

var groupColumn = map[string]string{
	ledger.GroupProvider: "provider",
	ledger.GroupModel:    "model",
	ledger.GroupKey:      "api_key",
	ledger.GroupTeam:     "team",
	ledger.GroupWorkload: "workload",
}

// Usage aggregates records in [q.From, q.To) grouped by q.GroupBy. Sums
// of BIGINT and NUMERIC are NUMERIC in PostgreSQL, so they are exact;
// token sums are cast back to BIGINT (an overflow is an error). Rows are
// ordered byte-wise (COLLATE "C"), whatever the database's collation.
func (s *Store) Usage(ctx context.Context, q ledger.Query) ([]ledger.Row, ledger.Row, error) {
	if err := q.Validate(); err != nil {
		return nil, ledger.Row{}, err
	}
	cols := make([]string, len(q.GroupBy))
	order := make([]string, len(q.GroupBy))
	for i, g := range q.GroupBy {
		cols[i] = groupColumn[g] // Validate guarantees presence: no user text reaches the SQL
		order[i] = cols[i] + ` COLLATE "C"`
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	for _, c := range cols {
		b.WriteString(c + ", ")
	}
	b.WriteString(`count(*), count(*) FILTER (WHERE billable),
		coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint, coalesce(sum(cached_tokens), 0)::bigint,
		coalesce(sum(cost), 0)::text, coalesce(sum(cost) FILTER (WHERE billable), 0)::text
		FROM usage_records`)
	var where []string
	var args []any
	if !q.From.IsZero() {
		args = append(args, q.From)
		where = append(where, fmt.Sprintf("ts >= $%d", len(args)))
	}
	if !q.To.IsZero() {
		args = append(args, q.To)
		where = append(where, fmt.Sprintf("ts < $%d", len(args)))
	}
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	if len(cols) > 0 {
		b.WriteString(" GROUP BY " + strings.Join(cols, ", ") + " ORDER BY " + strings.Join(order, ", "))
	}
	rows, err := s.pool.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, ledger.Row{}, fmt.Errorf("usage query: %w", err)
	}
	defer rows.Close()
	var out []ledger.Row
	groups := make([]string, len(cols))
	dest := make([]any, 0, len(cols)+7)
	for rows.Next() {
		var r ledger.Row
		var cost, billable string
		dest = dest[:0]
		for i := range groups {
			dest = append(dest, &groups[i])
		}
		dest = append(dest, &r.Records, &r.Requests, &r.InputTokens, &r.OutputTokens, &r.CachedTokens, &cost, &billable)
		if err := rows.Scan(dest...); err != nil {
			return nil, ledger.Row{}, fmt.Errorf("usage query: %w", err)
		}
		if r.Records == 0 { // no GROUP BY over no rows still yields one row
			continue
		}
		for i, g := range q.GroupBy {
			r.SetGroup(g, groups[i])
		}
		if r.Cost, err = pricing.ParseMoney(cost); err != nil {
			return nil, ledger.Row{}, fmt.Errorf("usage query: %w", err)
		}
		if r.BillableCost, err = pricing.ParseMoney(billable); err != nil {
			return nil, ledger.Row{}, fmt.Errorf("usage query: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, ledger.Row{}, fmt.Errorf("usage query: %w", err)
	}
	return out, ledger.Total(out), nil
}
