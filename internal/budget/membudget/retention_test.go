package membudget

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/budget"
)

// kept is how many reservation records s holds.
func (s *Store) kept() int { return len(s.held) + len(s.done[0]) + len(s.done[1]) }

// TestRecordRetention checks that finished reservations are forgotten a
// generation at a time once RecordRetention has passed, while staying
// idempotent until then.
func TestRecordRetention(t *testing.T) {
	ctx := context.Background()
	s, err := New(Options{RecordRetention: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := budget.Budget{Name: "key:r", Limit: 1_000_000_000, Period: budget.Monthly}
	t0 := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	reserve := func(id string, now time.Time) budget.Reservation {
		t.Helper()
		r, err := s.Reserve(ctx, budget.Request{ID: id, Budgets: []budget.Budget{b}, Amount: 10, Now: now, TTL: time.Hour})
		if err != nil {
			t.Fatalf("Reserve(%s) = %v", id, err)
		}
		return r
	}
	const n = 1000
	for i := range n {
		r := reserve(fmt.Sprint(i), t0)
		if err := s.Settle(ctx, r, 7); err != nil {
			t.Fatal(err)
		}
	}
	held := reserve("held", t0)
	if got := s.kept(); got != n+1 {
		t.Fatalf("%d records kept, want %d", got, n+1)
	}
	// Within the retention a second Settle is a no-op.
	if err := s.Settle(ctx, budget.Reservation{ID: "0", Amount: 10, Budgets: []budget.Budget{b}, Windows: held.Windows}, 7); err != nil {
		t.Fatal(err)
	}
	if settled, _, _ := s.Spent(ctx, b, t0); settled != 7*n {
		t.Errorf("settled = %d, want %d", settled, 7*n)
	}
	// Kept through the next generation: a record finished at t0 is
	// remembered until at least t0 + RecordRetention.
	reserve("soon", t0.Add(1500*time.Millisecond))
	if got := s.kept(); got != n+2 {
		t.Errorf("%d records kept %v after they finished, want %d (still idempotent)", got, 1500*time.Millisecond, n+2)
	}
	if err := s.Settle(ctx, budget.Reservation{ID: "1", Amount: 10, Budgets: []budget.Budget{b}, Windows: held.Windows}, 7); err != nil {
		t.Fatal(err)
	}
	if settled, _, _ := s.Spent(ctx, b, t0); settled != 7*n {
		t.Errorf("settled = %d after a repeated Settle within the retention, want %d", settled, 7*n)
	}
	reserve("later", t0.Add(2*time.Second))
	if got := s.kept(); got != 3 {
		t.Errorf("%d records kept after two generations, want 3 (the held ones)", got)
	}
	if err := s.Release(ctx, held); err != nil {
		t.Fatal(err)
	}
	if _, reserved, _ := s.Spent(ctx, b, t0.Add(2*time.Second)); reserved != 20 {
		t.Errorf("reserved = %d, want 20 (\"soon\" and \"later\")", reserved)
	}
	// A gap of several generations forgets everything finished at once.
	for _, id := range []string{"soon", "later"} {
		if err := s.Settle(ctx, budget.Reservation{ID: id, Amount: 10, Budgets: []budget.Budget{b}, Windows: held.Windows}, 1); err != nil {
			t.Fatal(err)
		}
	}
	reserve("much-later", t0.Add(time.Hour))
	if got := s.kept(); got != 1 {
		t.Errorf("%d records kept an hour later, want 1 (the held one)", got)
	}
}

// TestReserveAllocs bounds the heap work of a reservation: the record
// holding it, and the hold in the window's map.
func TestReserveAllocs(t *testing.T) {
	s, err := New(Options{RecordRetention: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	bs := []budget.Budget{
		{Name: "key:a", Limit: 1 << 60, Period: budget.Monthly},
		{Name: "team:a", Limit: 1 << 60, Period: budget.Daily},
	}
	now := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprint("r", i)
	}
	i := 0
	allocs := testing.AllocsPerRun(500, func() {
		now = now.Add(time.Millisecond)
		reserveSettle(t, s, bs, ids[i%len(ids)], now)
		i++
	})
	if allocs > 2 {
		t.Errorf("Reserve and Settle allocate %v times, want at most 2", allocs)
	}
}

// BenchmarkReserveSettle reserves and settles as a gateway does at 2,000
// requests a second with the gateway's one-second record retention, so
// that thousands of finished records are kept and forgotten as it runs.
func BenchmarkReserveSettle(b *testing.B) {
	s, _ := New(Options{RecordRetention: time.Second})
	bs := []budget.Budget{{Name: "key:a", Limit: 1 << 60, Period: budget.Monthly}}
	now := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprintf("req_f974431760ce_%013d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now = now.Add(500 * time.Microsecond)
		reserveSettle(b, s, bs, ids[i%len(ids)], now)
		i++
	}
}

// reserveSettle reserves 10 micro-dollars of bs for id at now and settles
// 5, as a request does.
func reserveSettle(tb testing.TB, s *Store, bs []budget.Budget, id string, now time.Time) {
	ctx := context.Background()
	r, err := s.Reserve(ctx, budget.Request{ID: id, Budgets: bs, Amount: 10, Now: now, TTL: time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Settle(ctx, r, 5); err != nil {
		tb.Fatal(err)
	}
}
