package membudget

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/budget"
)

// TestRecordRetention checks that finished reservations are forgotten
// RecordRetention after they end, in order and without a full scan, while
// staying idempotent until then.
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
	if got := len(s.records); got != n+1 {
		t.Fatalf("%d records kept, want %d", got, n+1)
	}
	// Within the retention a second Settle is a no-op.
	if err := s.Settle(ctx, budget.Reservation{ID: "0", Amount: 10, Budgets: []budget.Budget{b}, Windows: held.Windows}, 7); err != nil {
		t.Fatal(err)
	}
	if settled, _, _ := s.Spent(ctx, b, t0); settled != 7*n {
		t.Errorf("settled = %d, want %d", settled, 7*n)
	}
	reserve("later", t0.Add(2*time.Second))
	if got := len(s.records); got != 2 {
		t.Errorf("%d records kept after the retention, want 2 (the held ones)", got)
	}
	if len(s.finished) != 0 {
		t.Errorf("%d finished records queued, want 0", len(s.finished))
	}
	if err := s.Release(ctx, held); err != nil {
		t.Fatal(err)
	}
	if _, reserved, _ := s.Spent(ctx, b, t0.Add(2*time.Second)); reserved != 10 {
		t.Errorf("reserved = %d, want 10 (only \"later\")", reserved)
	}
}

// TestReserveAllocs bounds the heap work of a reservation: the record
// holding it, and the hold in the window's map.
func TestReserveAllocs(t *testing.T) {
	ctx := context.Background()
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
		r, err := s.Reserve(ctx, budget.Request{ID: ids[i%len(ids)], Budgets: bs, Amount: 10, Now: now, TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Settle(ctx, r, 5); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs > 2 {
		t.Errorf("Reserve and Settle allocate %v times, want at most 2", allocs)
	}
}
