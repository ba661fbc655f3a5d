// Package budgettest is the conformance suite every budget.Store passes.
// A store's tests call Run with a constructor; see membudget and
// redisbudget for examples.
package budgettest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/budget"
)

// NewStore returns a store for test t. Every call with the same t must
// return a store over the same backend, empty when t starts; calls with
// different t must not share state. Returning a new client per call lets
// the race test model several gateway replicas.
type NewStore func(t *testing.T) budget.Store

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewStore)
	}{
		{"Arithmetic", testArithmetic},
		{"HardRefusal", testHardRefusal},
		{"ErrorMessage", testErrorMessage},
		{"Soft", testSoft},
		{"Idempotent", testIdempotent},
		{"Rollover", testRollover},
		{"TopUp", testTopUp},
		{"Expiry", testExpiry},
		{"Race", testRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

const dollar budget.Micros = 1_000_000

// t0 is a Wednesday in UTC, aligned to the millisecond as stores may round.
var t0 = time.Date(2026, 11, 18, 12, 0, 0, 0, time.UTC)

func req(id string, amount budget.Micros, now time.Time, bs ...budget.Budget) budget.Request {
	return budget.Request{ID: id, Budgets: bs, Amount: amount, Now: now, TTL: 10 * time.Minute}
}

func reserve(t *testing.T, s budget.Store, r budget.Request) budget.Reservation {
	t.Helper()
	res, err := s.Reserve(context.Background(), r)
	if err != nil {
		t.Fatalf("Reserve(%q, %s) error = %v, want nil", r.ID, r.Amount, err)
	}
	return res
}

func exceeded(t *testing.T, s budget.Store, r budget.Request) *budget.ExceededError {
	t.Helper()
	_, err := s.Reserve(context.Background(), r)
	var ee *budget.ExceededError
	if !errors.As(err, &ee) || !errors.Is(err, budget.ErrExceeded) {
		t.Fatalf("Reserve(%q, %s) error = %v, want *budget.ExceededError", r.ID, r.Amount, err)
	}
	return ee
}

func settle(t *testing.T, s budget.Store, r budget.Reservation, actual budget.Micros) {
	t.Helper()
	if err := s.Settle(context.Background(), r, actual); err != nil {
		t.Fatalf("Settle(%q, %s) error = %v", r.ID, actual, err)
	}
}

func release(t *testing.T, s budget.Store, r budget.Reservation) {
	t.Helper()
	if err := s.Release(context.Background(), r); err != nil {
		t.Fatalf("Release(%q) error = %v", r.ID, err)
	}
}

func wantSpent(t *testing.T, s budget.Store, b budget.Budget, now time.Time, settled, reserved budget.Micros) {
	t.Helper()
	gs, gr, err := s.Spent(context.Background(), b, now)
	if err != nil {
		t.Fatalf("Spent(%q) error = %v", b.Name, err)
	}
	if gs != settled || gr != reserved {
		t.Errorf("Spent(%q, %s) = %s settled, %s reserved; want %s, %s", b.Name, now.Format(time.RFC3339), gs, gr, settled, reserved)
	}
}

func testArithmetic(t *testing.T, newStore NewStore) {
	s := newStore(t)
	b := budget.Budget{Name: "key:arith", Limit: dollar, Period: budget.Total}
	r1 := reserve(t, s, req("a1", 300_000, t0, b))
	r2 := reserve(t, s, req("a2", 400_000, t0, b))
	wantSpent(t, s, b, t0, 0, 700_000)
	settle(t, s, r1, 123_457)
	wantSpent(t, s, b, t0, 123_457, 400_000)
	release(t, s, r2)
	wantSpent(t, s, b, t0, 123_457, 0)
	// Exactly up to the limit fits; one micro-dollar more does not.
	r3 := reserve(t, s, req("a3", dollar-123_457, t0, b))
	exceeded(t, s, req("a4", 1, t0, b))
	settle(t, s, r3, dollar-123_457)
	wantSpent(t, s, b, t0, dollar, 0)
	// Zero-cost requests still fit an exhausted budget.
	reserve(t, s, req("a5", 0, t0, b))
	// An overrun is recorded as spent: the money was spent.
	o := budget.Budget{Name: "key:overrun", Limit: dollar, Period: budget.Total}
	r6 := reserve(t, s, req("a6", 100, t0, o))
	settle(t, s, r6, 250)
	wantSpent(t, s, o, t0, 250, 0)
}

func testHardRefusal(t *testing.T, newStore NewStore) {
	s := newStore(t)
	key := budget.Budget{Name: "key:team-search", Limit: dollar, Period: budget.Total}
	team := budget.Budget{Name: "team:search", Limit: 500_000, Period: budget.Monthly}
	other := budget.Budget{Name: "key:other", Limit: 200_000, Period: budget.Daily}
	settle(t, s, reserve(t, s, req("h1", 450_000, t0, key, team)), 450_000)

	// The team budget refuses; nothing is held on the key budget.
	ee := exceeded(t, s, req("h2", 100_000, t0, key, team))
	want := budget.ExceededError{Budget: team, Limit: 500_000, Spent: 450_000, Needed: 100_000,
		Reset: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	if diff := cmp.Diff(want, *ee, cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() })); diff != "" {
		t.Errorf("Reserve refused by team: error mismatch (-want +got):\n%s", diff)
	}
	wantSpent(t, s, key, t0, 450_000, 0)
	wantSpent(t, s, team, t0, 450_000, 0)

	// The key budget refuses (listed second); nothing is held on the other.
	settle(t, s, reserve(t, s, req("h3", 180_000, t0, other)), 180_000)
	ee = exceeded(t, s, req("h4", 30_000, t0, team, other))
	if ee.Budget.Name != other.Name || ee.Spent != 180_000 || ee.Limit != 200_000 {
		t.Errorf("Reserve refused by %q: got budget %q limit %s spent %s", other.Name, ee.Budget.Name, ee.Limit, ee.Spent)
	}
	wantSpent(t, s, team, t0, 450_000, 0)
	wantSpent(t, s, other, t0, 180_000, 0)

	// Holds count against the limit like settled spend.
	reserve(t, s, req("h5", 40_000, t0, team))
	ee = exceeded(t, s, req("h6", 20_000, t0, team))
	if ee.Spent != 490_000 {
		t.Errorf("ExceededError.Spent = %s, want %s", ee.Spent, budget.Micros(490_000))
	}
}

func testErrorMessage(t *testing.T, newStore NewStore) {
	s := newStore(t)
	key := budget.Budget{Name: "key:team-search", Limit: dollar, Period: budget.Total}
	settle(t, s, reserve(t, s, req("m1", 990_000, t0, key)), 990_000)
	_, err := s.Reserve(context.Background(), req("m2", 20_000, t0, key))
	want := `budget "key:team-search" (total) of $1.000000 is exhausted: $0.990000 spent, $0.020000 needed`
	if err == nil || err.Error() != want {
		t.Errorf("Reserve error = %v, want %s", err, want)
	}
	month := budget.Budget{Name: "team:search", Limit: 100 * dollar, Period: budget.Monthly}
	_, err = s.Reserve(context.Background(), req("m3", 101*dollar, t0, month))
	want = `budget "team:search" (monthly) of $100.000000 is exhausted: $0.000000 spent, $101.000000 needed; resets at 2026-12-01T00:00:00Z`
	if err == nil || err.Error() != want {
		t.Errorf("Reserve error = %v, want %s", err, want)
	}
}

func testSoft(t *testing.T, newStore NewStore) {
	s := newStore(t)
	soft := budget.Budget{Name: "team:soft", Limit: 100_000, Period: budget.Daily, Mode: budget.Soft}
	hard := budget.Budget{Name: "key:hard", Limit: dollar, Period: budget.Daily}
	r := reserve(t, s, req("s1", 80_000, t0, hard, soft))
	if len(r.SoftExceeded) != 0 {
		t.Errorf("Reserve under the soft limit: SoftExceeded = %q, want none", r.SoftExceeded)
	}
	r = reserve(t, s, req("s2", 80_000, t0, hard, soft))
	if diff := cmp.Diff([]string{"team:soft"}, r.SoftExceeded); diff != "" {
		t.Errorf("Reserve over the soft limit: SoftExceeded mismatch (-want +got):\n%s", diff)
	}
	wantSpent(t, s, soft, t0, 0, 160_000)
	wantSpent(t, s, hard, t0, 0, 160_000)
}

func testIdempotent(t *testing.T, newStore NewStore) {
	s := newStore(t)
	b := budget.Budget{Name: "key:idem", Limit: dollar, Period: budget.Weekly}
	r := reserve(t, s, req("i1", 300_000, t0, b))
	again := reserve(t, s, req("i1", 300_000, t0, b))
	if diff := cmp.Diff(r, again, cmp.Comparer(func(a, b *time.Location) bool { return a == b })); diff != "" {
		t.Errorf("Reserve replay mismatch (-first +replay):\n%s", diff)
	}
	wantSpent(t, s, b, t0, 0, 300_000)
	settle(t, s, r, 200_000)
	settle(t, s, r, 200_000)
	release(t, s, r)
	wantSpent(t, s, b, t0, 200_000, 0)
	r2 := reserve(t, s, req("i2", 300_000, t0, b))
	release(t, s, r2)
	release(t, s, r2)
	wantSpent(t, s, b, t0, 200_000, 0)
}

func testRollover(t *testing.T, newStore NewStore) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		b         budget.Budget
		last      time.Time // in the first window, spent out
		next      time.Time // first instant of the next window
		wantReset time.Time
	}{
		{"daily Berlin midnight", budget.Budget{Period: budget.Daily, Location: berlin},
			time.Date(2026, 3, 28, 23, 59, 59, 0, berlin), time.Date(2026, 3, 29, 0, 0, 0, 0, berlin),
			time.Date(2026, 3, 28, 23, 0, 0, 0, time.UTC)},
		{"daily Berlin DST day", budget.Budget{Period: budget.Daily, Location: berlin},
			time.Date(2026, 3, 29, 23, 59, 0, 0, berlin), time.Date(2026, 3, 30, 0, 0, 0, 0, berlin),
			time.Date(2026, 3, 29, 22, 0, 0, 0, time.UTC)},
		{"weekly Sunday to Monday", budget.Budget{Period: budget.Weekly},
			time.Date(2026, 11, 22, 23, 59, 59, 0, time.UTC), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)},
		{"monthly January 31", budget.Budget{Period: budget.Monthly},
			time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
		{"monthly February 28", budget.Budget{Period: budget.Monthly},
			time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"monthly leap February 29", budget.Budget{Period: budget.Monthly, Location: berlin},
			time.Date(2028, 2, 29, 23, 0, 0, 0, berlin), time.Date(2028, 3, 1, 0, 0, 0, 0, berlin),
			time.Date(2028, 2, 29, 23, 0, 0, 0, time.UTC)},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			b := tc.b
			b.Name, b.Limit = fmt.Sprintf("key:roll%d", i), dollar
			first, _ := b.Window(tc.last)
			settle(t, s, reserve(t, s, req("r1", dollar, first, b)), dollar)
			ee := exceeded(t, s, req("r2", 1, tc.last, b))
			if !ee.Reset.Equal(tc.wantReset) {
				t.Errorf("ExceededError.Reset = %v, want %v", ee.Reset, tc.wantReset)
			}
			wantSpent(t, s, b, tc.last, dollar, 0)
			wantSpent(t, s, b, tc.next, 0, 0)
			settle(t, s, reserve(t, s, req("r3", dollar, tc.next, b)), dollar)
			wantSpent(t, s, b, tc.last, dollar, 0)
		})
	}
	t.Run("total never resets", func(t *testing.T) {
		s := newStore(t)
		b := budget.Budget{Name: "key:forever", Limit: dollar, Period: budget.Total}
		settle(t, s, reserve(t, s, req("r1", dollar, t0, b)), dollar)
		later := t0.AddDate(3, 1, 1)
		ee := exceeded(t, s, req("r2", 1, later, b))
		if !ee.Reset.IsZero() {
			t.Errorf("ExceededError.Reset = %v, want zero", ee.Reset)
		}
		wantSpent(t, s, b, later, dollar, 0)
	})
}

func testTopUp(t *testing.T, newStore NewStore) {
	s := newStore(t)
	ctx := context.Background()
	b := budget.Budget{Name: "key:prepaid", Limit: dollar, Period: budget.Total}
	settle(t, s, reserve(t, s, req("t1", dollar, t0, b)), dollar)
	exceeded(t, s, req("t2", 500_000, t0, b))
	if err := s.TopUp(ctx, b, 250_000); err != nil {
		t.Fatalf("TopUp error = %v", err)
	}
	if err := s.TopUp(ctx, b, 250_000); err != nil {
		t.Fatalf("TopUp error = %v", err)
	}
	settle(t, s, reserve(t, s, req("t3", 500_000, t0, b)), 500_000)
	ee := exceeded(t, s, req("t4", 1, t0.AddDate(1, 0, 0), b))
	if ee.Limit != 1_500_000 {
		t.Errorf("ExceededError.Limit = %s, want %s", ee.Limit, budget.Micros(1_500_000))
	}
	daily := budget.Budget{Name: "key:daily", Limit: dollar, Period: budget.Daily}
	if err := s.TopUp(ctx, daily, 1); !errors.Is(err, budget.ErrNotTotal) {
		t.Errorf("TopUp(daily) error = %v, want ErrNotTotal", err)
	}
	if err := s.TopUp(ctx, b, 0); err == nil {
		t.Error("TopUp(0) error = nil, want error")
	}
}

func testExpiry(t *testing.T, newStore NewStore) {
	s := newStore(t)
	b := budget.Budget{Name: "key:expiry", Limit: dollar, Period: budget.Total}
	team := budget.Budget{Name: "team:expiry", Limit: 10 * dollar, Period: budget.Daily}
	r := req("e1", dollar, t0, b, team)
	r.TTL = time.Minute
	crashed := reserve(t, s, r)
	if want := t0.Add(time.Minute); !crashed.Expires.Equal(want) {
		t.Errorf("Reservation.Expires = %v, want %v", crashed.Expires, want)
	}
	exceeded(t, s, req("e2", 1, t0.Add(time.Minute-time.Millisecond), b, team))
	wantSpent(t, s, team, t0.Add(time.Minute-time.Millisecond), 0, dollar)
	// At the TTL the hold lapses on every budget it was charged to.
	wantSpent(t, s, b, t0.Add(time.Minute), 0, 0)
	wantSpent(t, s, team, t0.Add(time.Minute), 0, 0)
	ok := reserve(t, s, req("e3", 600_000, t0.Add(time.Minute), b, team))
	// A late Settle of the expired reservation still records the spend.
	settle(t, s, crashed, 300_000)
	settle(t, s, crashed, 300_000)
	wantSpent(t, s, b, t0.Add(time.Minute), 300_000, 600_000)
	release(t, s, ok)
	wantSpent(t, s, team, t0.Add(time.Minute), 300_000, 0)
}
