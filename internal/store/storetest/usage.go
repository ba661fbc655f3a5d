package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

// randomRecords returns n records spread over a few values of every group
// field, with costs at awkward prices, some failed non-billable attempts,
// and times spread over ten days from epoch.
func randomRecords(r *rand.Rand, n int) []ledger.Record {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	prices := []pricing.Price{
		{Input: pricing.MustMoney("2.50"), CachedInput: pricing.MustMoney("1.25"), Output: pricing.MustMoney("10")},
		{Input: pricing.MustMoney("0.000001"), CachedInput: pricing.MustMoney("0.0000001"), Output: pricing.MustMoney("0.0000003")},
		{Input: pricing.MustMoney("15"), CachedInput: pricing.MustMoney("1.50"), CacheWrite: pricing.MustMoney("18.75"), Output: pricing.MustMoney("75")},
		{Input: pricing.MustMoney("0.275"), Output: pricing.MustMoney("4.40")},
	}
	var recs []ledger.Record
	for i := 0; len(recs) < n; i++ {
		attempts := 1 + r.IntN(3)*r.IntN(2) // mostly 1, sometimes 2 or 3
		for a := 1; a <= attempts && len(recs) < n; a++ {
			p := prices[r.IntN(len(prices))]
			in := r.Int64N(1 << 33)
			u := pricing.Usage{InputTokens: in, CachedTokens: r.Int64N(in/2 + 1), OutputTokens: r.Int64N(1 << 30)}
			rec := newRecord(fmt.Sprintf("u-%06d", i), a)
			rec.Time = epoch.Add(time.Duration(r.Int64N(int64(10*24*time.Hour))) / time.Microsecond * time.Microsecond)
			rec.Provider = pick("openai", "anthropic", "google")
			rec.Model = pick("m-a", "m-b", "m-c", "m-d")
			rec.Key = pick("k1", "k2", "k3", "k4", "k5")
			rec.Team = pick("", "red", "blue")
			rec.Workload = pick("chat", "embed")
			rec.Usage, rec.UnitPrices, rec.Cost = u, p, pricing.Cost(p, u)
			rec.Billable = a == attempts // the last attempt served the request
			recs = append(recs, rec)
		}
	}
	return recs
}

// expectUsage computes Usage in Go.
func expectUsage(recs []ledger.Record, q ledger.Query) ([]ledger.Row, ledger.Row) {
	groups := map[string]*ledger.Row{}
	var keys []string
	for _, rec := range recs {
		if (!q.From.IsZero() && rec.Time.Before(q.From)) || (!q.To.IsZero() && !rec.Time.Before(q.To)) {
			continue
		}
		var parts []string
		for _, g := range q.GroupBy {
			parts = append(parts, rec.Group(g))
		}
		k := strings.Join(parts, "\x00")
		row, ok := groups[k]
		if !ok {
			row = &ledger.Row{}
			for _, g := range q.GroupBy {
				row.SetGroup(g, rec.Group(g))
			}
			groups[k] = row
			keys = append(keys, k)
		}
		row.Records++
		row.InputTokens += rec.Usage.InputTokens
		row.OutputTokens += rec.Usage.OutputTokens
		row.CachedTokens += rec.Usage.CachedTokens
		row.Cost = row.Cost.Add(rec.Cost)
		if rec.Billable {
			row.Requests++
			row.BillableCost = row.BillableCost.Add(rec.Cost)
		}
	}
	slices.Sort(keys) // "\x00" sorts before any other byte: same as column-wise order
	rows := make([]ledger.Row, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, *groups[k])
	}
	return rows, ledger.Total(rows)
}

func checkUsage(t *testing.T, s Store, recs []ledger.Record, q ledger.Query) {
	t.Helper()
	rows, total, err := s.Usage(ctxT(t), q)
	if err != nil {
		t.Fatalf("Usage(%+v) = %v", q, err)
	}
	wantRows, wantTotal := expectUsage(recs, q)
	if diff := cmp.Diff(wantRows, rows, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Usage(group by %v, %v..%v) rows (-want +got):\n%s", q.GroupBy, q.From, q.To, diff)
	}
	if diff := cmp.Diff(wantTotal, total); diff != "" {
		t.Errorf("Usage(group by %v) total (-want +got):\n%s", q.GroupBy, diff)
	}
	// String equality as well: the sums must be exact, not merely equal
	// after rounding in some comparison.
	if total.Cost.String() != wantTotal.Cost.String() {
		t.Errorf("total cost %s, want %s", total.Cost, wantTotal.Cost)
	}
}

func testUsageGrouping(t *testing.T, s Store) {
	recs := randomRecords(rand.New(rand.NewPCG(7, 8)), 3000)
	mustRecord(t, s, recs...)
	for _, g := range [][]string{
		nil,
		{ledger.GroupProvider},
		{ledger.GroupModel},
		{ledger.GroupKey},
		{ledger.GroupTeam},
		{ledger.GroupWorkload},
		{ledger.GroupModel, ledger.GroupKey},
		{ledger.GroupWorkload, ledger.GroupTeam, ledger.GroupProvider},
		ledger.GroupFields,
	} {
		t.Run(strings.Join(g, ","), func(t *testing.T) {
			checkUsage(t, s, recs, ledger.Query{GroupBy: g})
		})
	}
}

func testUsageTimeRange(t *testing.T, s Store) {
	var recs []ledger.Record
	for i := range 10 {
		rec := newRecord(fmt.Sprintf("t-%d", i), 1)
		rec.Time = epoch.Add(time.Duration(i) * time.Hour)
		rec.Model = fmt.Sprintf("m%d", i%3)
		recs = append(recs, rec)
	}
	mustRecord(t, s, recs...)
	at := func(h int) time.Time { return epoch.Add(time.Duration(h) * time.Hour) }
	tests := []struct {
		name     string
		from, to time.Time
		want     int64
	}{
		{"open", time.Time{}, time.Time{}, 10},
		{"from inclusive", at(3), time.Time{}, 7},
		{"to exclusive", time.Time{}, at(3), 3},
		{"window", at(2), at(5), 3},
		{"one microsecond", at(4), at(4).Add(time.Microsecond), 1},
		{"just after", at(4).Add(time.Microsecond), at(5), 0},
		{"other zone", at(2).In(time.FixedZone("X", -7*3600)), at(5).In(time.FixedZone("Y", 9*3600)), 3},
		{"before all", at(-10), at(-1), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := ledger.Query{From: tc.from, To: tc.to, GroupBy: []string{ledger.GroupModel}}
			_, total, err := s.Usage(ctxT(t), q)
			if err != nil {
				t.Fatal(err)
			}
			if total.Records != tc.want {
				t.Errorf("Usage(%v..%v) = %d records, want %d", tc.from, tc.to, total.Records, tc.want)
			}
			checkUsage(t, s, recs, q)
		})
	}
}

func testUsageBadQuery(t *testing.T, s Store) {
	for _, q := range []ledger.Query{
		{GroupBy: []string{"api_key; DROP TABLE usage_records"}},
		{GroupBy: []string{"model", "model"}},
		{From: epoch, To: epoch},
	} {
		if _, _, err := s.Usage(ctxT(t), q); !errors.Is(err, ledger.ErrBadQuery) {
			t.Errorf("Usage(%+v) = %v, want ErrBadQuery", q, err)
		}
	}
	rows, total, err := s.Usage(ctxT(t), ledger.Query{})
	if err != nil || len(rows) != 0 || total.Records != 0 || !total.Cost.IsZero() {
		t.Errorf("Usage on an empty store = %v, %+v, %v; want no rows, zero total", rows, total, err)
	}
}
