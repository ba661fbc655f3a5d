package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

// testScan runs the ledger.Scanner cases, each on a store of its own.
func testScan(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store, sc ledger.Scanner)
	}{
		{"Order", testScanOrder},
		{"Fields", testScanFields},
		{"TimeRange", testScanTimeRange},
		{"BillableOnly", testScanBillableOnly},
		{"CallbackError", testScanCallbackError},
		{"Canceled", testScanCanceled},
		{"Empty", testScanEmpty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			sc, ok := s.(ledger.Scanner)
			if !ok {
				t.Fatalf("store %T does not implement ledger.Scanner", s)
			}
			tc.fn(t, s, sc)
		})
	}
}

// scanAll returns shallow copies of the records Scan passes, which the
// Scanner contract says are enough to keep them.
func scanAll(t *testing.T, sc ledger.Scanner, f ledger.ScanFilter) []ledger.Record {
	t.Helper()
	var got []ledger.Record
	if err := sc.Scan(ctxT(t), f, func(r *ledger.Record) error {
		got = append(got, *r)
		return nil
	}); err != nil {
		t.Fatalf("Scan(%+v) = %v", f, err)
	}
	return got
}

// scanned returns what Scan should pass for recs under f, in order:
// Route and UnitPrices zero, times in UTC.
func scanned(recs []ledger.Record, f ledger.ScanFilter) []ledger.Record {
	var want []ledger.Record
	for _, r := range recs {
		if (!f.From.IsZero() && r.Time.Before(f.From)) || (!f.To.IsZero() && !r.Time.Before(f.To)) {
			continue
		}
		if f.BillableOnly && !r.Billable {
			continue
		}
		r.Route, r.UnitPrices = "", pricing.Price{}
		r.Time = r.Time.UTC()
		want = append(want, r)
	}
	slices.SortFunc(want, func(a, b ledger.Record) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.RequestID, b.RequestID), cmp.Compare(a.Attempt, b.Attempt))
	})
	return want
}

func checkScan(t *testing.T, sc ledger.Scanner, recs []ledger.Record, f ledger.ScanFilter) {
	t.Helper()
	got := scanAll(t, sc, f)
	want := scanned(recs, f)
	if diff := gocmp.Diff(want, got, cmpRecords); diff != "" {
		t.Errorf("Scan(%+v) mismatch (-want +got):\n%s", f, diff)
	}
}

// tiedRecords returns n records, inserted out of order, whose times fall
// on a few instants, so that the order rests on RequestID and Attempt.
func tiedRecords(r *rand.Rand, n int) []ledger.Record {
	ids := []string{"a", "B", "b", "a0", "é", "z", "Z", "req-10", "req-9", "req-09", ""}
	var recs []ledger.Record
	seen := map[ledger.ID]bool{}
	for len(recs) < n {
		id := fmt.Sprintf("%s%d", ids[r.IntN(len(ids))], r.IntN(n/20+1))
		attempt := []int{0, 1, 2, 9, 10, 100}[r.IntN(6)]
		if seen[ledger.ID{RequestID: id, Attempt: attempt}] {
			continue
		}
		seen[ledger.ID{RequestID: id, Attempt: attempt}] = true
		rec := newRecord(id, attempt)
		rec.Time = epoch.Add(time.Duration(r.IntN(5)) * time.Second)
		rec.Billable = false // many attempts per request
		rec.Usage.OutputTokens = r.Int64N(1 << 40)
		rec.Cost = pricing.Cost(rec.UnitPrices, rec.Usage)
		recs = append(recs, rec)
	}
	return recs
}

func testScanOrder(t *testing.T, s Store, sc ledger.Scanner) {
	recs := tiedRecords(rand.New(rand.NewPCG(1, 2)), 2000)
	recs = append(recs, randomRecords(rand.New(rand.NewPCG(3, 4)), 1000)...)
	mustRecord(t, s, recs...)
	got := scanAll(t, sc, ledger.ScanFilter{})
	if len(got) != len(recs) {
		t.Fatalf("Scan passed %d records, want %d", len(got), len(recs))
	}
	for i := 1; i < len(got); i++ {
		a, b := &got[i-1], &got[i]
		if c := cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.RequestID, b.RequestID), cmp.Compare(a.Attempt, b.Attempt)); c >= 0 {
			t.Fatalf("Scan order: %s %q/%d before %s %q/%d", a.Time, a.RequestID, a.Attempt, b.Time, b.RequestID, b.Attempt)
		}
	}
	checkScan(t, sc, recs, ledger.ScanFilter{})
}

func testScanFields(t *testing.T, s Store, sc ledger.Scanner) {
	a := newRecord("fields-a", 0)
	a.Time = time.Date(2026, 3, 4, 7, 6, 7, 999999000, time.FixedZone("CEST", 2*3600)) // passed in UTC
	a.Billable, a.Estimated, a.Stream = false, true, false
	a.Status, a.Outcome, a.LatencyMs = 502, "upstream_error", 1<<62
	a.Usage = pricing.Usage{InputTokens: 900_000_000_000_000_000, OutputTokens: 1<<63 - 1, CachedTokens: 7, CacheWriteTokens: 11, ReasoningTokens: 5}
	a.UnitPrices = pricing.Price{
		Input: pricing.MustMoney("75"), Output: pricing.MustMoney("0.000001"),
		CachedInput: pricing.MustMoney("0.0000000000000000000001"), CacheWrite: pricing.MustMoney("123456789.987654321"),
	}
	a.Cost = pricing.Cost(a.UnitPrices, a.Usage) // more digits than a uint64 holds
	a.Key, a.Team, a.Workload = "ключ-🔑", "", "batch 'quoted' \"x\" \x01\x1f\u2028 \\u0041"
	a.Model, a.Provider, a.UpstreamModel = "model\t", "prov\\ider", ""
	a.Agreements = nil
	b := newRecord("fields-a", 1<<31-1) // largest attempt
	b.Cost = pricing.MustMoney("0.0000000000000000000000000001")
	b.Agreements = []string{"x", "y \"quoted\"", "ü,[]", ""}
	c := newRecord("fields-c", 1)
	c.Cost = pricing.MustMoney("0")
	c.Status = 0
	c.Agreements = []string{"acme-commit"}
	d := newRecord("fields-d", 1)
	d.Cost = pricing.MustMoney("12.50")
	d.Agreements = []string{"acme-commit"} // same set as c: may share c's slice
	e := newRecord("fields-e", 1)
	e.Agreements = []string{} // stored as [], passed as empty
	recs := []ledger.Record{a, b, c, d, e}
	mustRecord(t, s, recs...)
	got := scanAll(t, sc, ledger.ScanFilter{})
	checkScan(t, sc, recs, ledger.ScanFilter{})
	for _, r := range got {
		if r.Time.Location() != time.UTC {
			t.Errorf("Scan time zone of %q/%d = %v, want UTC", r.RequestID, r.Attempt, r.Time.Location())
		}
	}
	// Exact money, not merely equal: the digits come back as stored.
	want := scanned(recs, ledger.ScanFilter{})
	for i := range min(len(got), len(want)) {
		if got[i].Cost.String() != want[i].Cost.String() {
			t.Errorf("Scan cost of %q/%d = %s, want %s", got[i].RequestID, got[i].Attempt, got[i].Cost, want[i].Cost)
		}
	}
}

func testScanTimeRange(t *testing.T, s Store, sc ledger.Scanner) {
	var recs []ledger.Record
	for i := range 10 {
		for a := range 2 {
			rec := newRecord(fmt.Sprintf("t-%d", i), a)
			rec.Time = epoch.Add(time.Duration(i) * time.Hour)
			rec.Billable = a == 1
			recs = append(recs, rec)
		}
	}
	mustRecord(t, s, recs...)
	at := func(h int) time.Time { return epoch.Add(time.Duration(h) * time.Hour) }
	tests := []struct {
		name     string
		from, to time.Time
		want     int
	}{
		{"open", time.Time{}, time.Time{}, 20},
		{"from inclusive", at(3), time.Time{}, 14},
		{"to exclusive", time.Time{}, at(3), 6},
		{"window", at(2), at(5), 6},
		{"one microsecond", at(4), at(4).Add(time.Microsecond), 2},
		{"just after", at(4).Add(time.Microsecond), at(5), 0},
		{"other zone", at(2).In(time.FixedZone("X", -7*3600)), at(5).In(time.FixedZone("Y", 9*3600)), 6},
		{"before all", at(-10), at(-1), 0},
		{"empty", at(5), at(5), 0},
		{"reversed", at(6), at(2), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := ledger.ScanFilter{From: tc.from, To: tc.to}
			if got := scanAll(t, sc, f); len(got) != tc.want {
				t.Errorf("Scan(%v..%v) passed %d records, want %d", tc.from, tc.to, len(got), tc.want)
			}
			checkScan(t, sc, recs, f)
			f.BillableOnly = true
			checkScan(t, sc, recs, f)
		})
	}
}

func testScanBillableOnly(t *testing.T, s Store, sc ledger.Scanner) {
	recs := randomRecords(rand.New(rand.NewPCG(5, 6)), 2000)
	mustRecord(t, s, recs...)
	f := ledger.ScanFilter{BillableOnly: true}
	got := scanAll(t, sc, f)
	for _, r := range got {
		if !r.Billable {
			t.Fatalf("Scan(BillableOnly) passed %q/%d, which is not billable", r.RequestID, r.Attempt)
		}
	}
	checkScan(t, sc, recs, f)
	f.From, f.To = epoch.Add(24*time.Hour), epoch.Add(72*time.Hour)
	checkScan(t, sc, recs, f)
}

var errStop = errors.New("storetest: stop")

func testScanCallbackError(t *testing.T, s Store, sc ledger.Scanner) {
	recs := randomRecords(rand.New(rand.NewPCG(9, 10)), 5000)
	mustRecord(t, s, recs...)
	calls := 0
	err := sc.Scan(ctxT(t), ledger.ScanFilter{}, func(*ledger.Record) error {
		calls++
		if calls == 3 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Errorf("Scan with a failing callback = %v, want %v", err, errStop)
	}
	if calls != 3 {
		t.Errorf("Scan called fn %d times after it failed on the 3rd call, want 3", calls)
	}
	// The store is still usable: the stopped scan released what it held.
	for range 3 {
		checkScan(t, sc, recs, ledger.ScanFilter{})
	}
}

func testScanCanceled(t *testing.T, s Store, sc ledger.Scanner) {
	recs := randomRecords(rand.New(rand.NewPCG(11, 12)), 5000)
	mustRecord(t, s, recs...)

	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	calls := 0
	err := sc.Scan(ctx, ledger.ScanFilter{}, func(*ledger.Record) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Errorf("Scan(canceled ctx) = %v after %d calls, want context.Canceled and none", err, calls)
	}

	ctx, cancel = context.WithCancel(ctxT(t))
	defer cancel()
	calls = 0
	err = sc.Scan(ctx, ledger.ScanFilter{}, func(*ledger.Record) error {
		calls++
		if calls == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Scan canceled midway = %v, want context.Canceled", err)
	}
	if calls != 10 {
		t.Errorf("Scan called fn %d times, want 10: it must stop once ctx is done", calls)
	}
	checkScan(t, sc, recs, ledger.ScanFilter{})
}

func testScanEmpty(t *testing.T, _ Store, sc ledger.Scanner) {
	if got := scanAll(t, sc, ledger.ScanFilter{}); len(got) != 0 {
		t.Errorf("Scan on an empty store passed %d records, want none", len(got))
	}
}
