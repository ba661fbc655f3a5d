package budgettest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/budget"
)

// testRace is the overspend test: a $1.00 hard budget, 500 goroutines each
// reserving at most $0.0125 and settling a random actual up to that (mean
// $0.01), spread over three store replicas. Settled spend must end ≤ $1.00
// exactly, and at least 90 requests must have run.
//
// A refused goroutine retries only while the budget still has room for a
// whole reservation once in-flight holds settle (as a client honouring
// Retry-After would); otherwise the number of successes would measure the
// scheduler, not the store.
func testRace(t *testing.T, newStore NewStore) {
	const (
		workers = 500
		max     = budget.Micros(12_500)
		limit   = dollar
	)
	replicas := []budget.Store{newStore(t), newStore(t), newStore(t)}
	b := budget.Budget{Name: "key:race", Limit: limit, Period: budget.Monthly}
	team := budget.Budget{Name: "team:race", Limit: 100 * dollar, Period: budget.Monthly}
	ctx := context.Background()

	var (
		wg        sync.WaitGroup
		succeeded atomic.Int64
		charged   atomic.Int64
		errOnce   sync.Once
		firstErr  error
	)
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := replicas[i%len(replicas)]
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			actual := budget.Micros(7_500 + rng.Int64N(5_001)) // uniform 7500..12500, mean 10000
			for attempt := 0; ; attempt++ {
				r := budget.Request{ID: fmt.Sprintf("race-%d-%d", i, attempt), Budgets: []budget.Budget{b, team},
					Amount: max, Now: t0, TTL: time.Hour}
				res, err := s.Reserve(ctx, r)
				var ee *budget.ExceededError
				if errors.As(err, &ee) {
					settled, _, err := s.Spent(ctx, b, t0)
					if err != nil {
						fail(err)
						return
					}
					if settled+max > limit || attempt > 10_000 {
						return // truly exhausted
					}
					continue
				}
				if err != nil {
					fail(err)
					return
				}
				if err := s.Settle(ctx, res, actual); err != nil {
					fail(err)
					return
				}
				succeeded.Add(1)
				charged.Add(int64(actual))
				return
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("race: %v", firstErr)
	}
	settled, reserved, err := replicas[0].Spent(ctx, b, t0)
	if err != nil {
		t.Fatal(err)
	}
	if settled > limit {
		t.Errorf("race: settled %s > limit %s: OVERSPEND", settled, limit)
	}
	if settled != budget.Micros(charged.Load()) || reserved != 0 {
		t.Errorf("race: Spent = %s settled, %s reserved; want %s, 0", settled, reserved, budget.Micros(charged.Load()))
	}
	if n := succeeded.Load(); n < 90 {
		t.Errorf("race: %d requests succeeded, want ≥ 90", n)
	}
	teamSettled, _, err := replicas[1].Spent(ctx, team, t0)
	if err != nil {
		t.Fatal(err)
	}
	if teamSettled != settled {
		t.Errorf("race: team settled %s, key settled %s; want equal", teamSettled, settled)
	}
	t.Logf("race: %d of %d succeeded, settled %s of %s", succeeded.Load(), workers, settled, limit)
}
