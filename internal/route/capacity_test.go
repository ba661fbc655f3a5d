package route

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCapacitySlidingWindow(t *testing.T) {
	s := tierSpec(StrategyOrdered)
	s.Providers[0].Capacity = Capacity{RPM: 4}
	r := mustNew(t, s)
	// Two requests at t0, two at t0+30s: full until the first two leave
	// the minute at t0+60s.
	for _, at := range []time.Duration{0, 0, 30 * time.Second, 30 * time.Second} {
		if why := r.Begin("a", "m", 0, t0.Add(at)); why != Admitted {
			t.Fatalf("Begin at t0+%v = %s", at, why)
		}
	}
	for _, tc := range []struct {
		at   time.Duration
		want string
	}{
		{59 * time.Second, "capacity_exhausted"},
		{60 * time.Second, "candidate"},
		{89 * time.Second, "candidate"},
		{90 * time.Second, "candidate"},
	} {
		if got := state(t, r, t0.Add(tc.at)); got != tc.want {
			t.Errorf("state at t0+%v = %s, want %s", tc.at, got, tc.want)
		}
	}
	// Other providers are unaffected.
	var p Plan
	_ = r.Plan(&Request{Model: "m", Now: t0.Add(45 * time.Second)}, &p)
	if got, want := order(&p), "b/m c/m"; got != want {
		t.Errorf("Plan() = %q, want %q", got, want)
	}
}

// TestCapacityConcurrent: concurrent Begins never admit past the limit.
func TestCapacityConcurrent(t *testing.T) {
	s := tierSpec(StrategyOrdered)
	s.Providers[0].Capacity = Capacity{RPM: 50, TPM: 10_000}
	r := mustNew(t, s)
	var admitted, tokens atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				tok := int64(100 + (g*20+i)%7*50)
				if r.Begin("a", "m", tok, t0) == Admitted {
					admitted.Add(1)
					tokens.Add(tok)
				}
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n == 0 || n > 50 || tokens.Load() > 10_000 {
		t.Errorf("admitted %d requests of %d tokens, want 1..50 and at most 10000 tokens", n, tokens.Load())
	}
}

func TestWindowAdd(t *testing.T) {
	var w window
	add(&w.req[0], 60, 5)
	add(&w.req[0], 60, -7) // saturates at zero
	if got := sum(&w.req, 60); got != 0 {
		t.Errorf("sum after underflow = %d, want 0", got)
	}
	add(&w.req[0], 120, -1) // an expired bucket is not touched by a release
	add(&w.req[0], 120, 3)
	if got := sum(&w.req, 120); got != 3 {
		t.Errorf("sum = %d, want 3", got)
	}
	if got := sum(&w.req, 180); got != 0 {
		t.Errorf("sum a minute later = %d, want 0", got)
	}
}
