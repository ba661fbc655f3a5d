package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"strings"

	"modernc.org/sqlite"

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

// Usage aggregates records in [q.From, q.To) grouped by q.GroupBy. Token
// sums are SQLite integer sums (an overflow is an error, not a wrap);
// money is summed exactly by multipolar_decimal_sum.
func (s *Store) Usage(ctx context.Context, q ledger.Query) ([]ledger.Row, ledger.Row, error) {
	if err := q.Validate(); err != nil {
		return nil, ledger.Row{}, err
	}
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.From.IsZero() {
		from = q.From.UnixMicro()
	}
	if !q.To.IsZero() {
		to = q.To.UnixMicro()
	}
	cols := make([]string, len(q.GroupBy))
	for i, g := range q.GroupBy {
		cols[i] = groupColumn[g] // Validate guarantees presence: no user text reaches the SQL
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	for _, c := range cols {
		b.WriteString(c + ", ")
	}
	b.WriteString(`count(*), coalesce(sum(billable), 0), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
		coalesce(sum(cached_tokens), 0), ` + decimalSumName + `(cost), ` + decimalSumName + `(CASE WHEN billable THEN cost END)
		FROM usage_records WHERE ts >= ? AND ts < ?`)
	if len(cols) > 0 {
		g := strings.Join(cols, ", ")
		b.WriteString(" GROUP BY " + g + " ORDER BY " + g)
	}
	rows, err := s.r.QueryContext(ctx, b.String(), from, to)
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

const decimalSumName = "multipolar_decimal_sum"

// decimalSum is the exact sum aggregate over decimal TEXT; NULLs are
// skipped and the sum of nothing is "0". A value that is not a plain
// decimal fails the query rather than being skipped.
type decimalSum struct {
	terms []pricing.Money
}

func newDecimalSum(sqlite.FunctionContext) (sqlite.AggregateFunction, error) {
	return &decimalSum{}, nil
}

func toMoney(v driver.Value) (pricing.Money, bool, error) {
	switch x := v.(type) {
	case nil:
		return pricing.Money{}, false, nil
	case string:
		m, err := pricing.ParseMoney(x)
		return m, true, err
	case []byte:
		m, err := pricing.ParseMoney(string(x))
		return m, true, err
	case int64:
		return pricing.MoneyFromInt(x), true, nil
	}
	return pricing.Money{}, false, fmt.Errorf("%s: unsupported value of type %T", decimalSumName, v)
}

// Step adds one row.
func (d *decimalSum) Step(_ *sqlite.FunctionContext, args []driver.Value) error {
	m, ok, err := toMoney(args[0])
	if ok && err == nil {
		d.terms = append(d.terms, m)
	}
	return err
}

// WindowInverse removes one row (window use).
func (d *decimalSum) WindowInverse(_ *sqlite.FunctionContext, args []driver.Value) error {
	m, ok, err := toMoney(args[0])
	if ok && err == nil {
		d.terms = append(d.terms, pricing.Money{}.Sub(m))
	}
	return err
}

// WindowValue returns the sum as canonical decimal text.
func (d *decimalSum) WindowValue(*sqlite.FunctionContext) (driver.Value, error) {
	s := pricing.Sum(d.terms...)
	d.terms = append(d.terms[:0], s) // keep the window cheap to re-sum
	return s.String(), nil
}

// Final releases the terms.
func (d *decimalSum) Final(*sqlite.FunctionContext) { d.terms = nil }
