package route

import (
	"testing"
	"time"
)

// state returns how the first member "a" of tierSpec's model fares in a
// plan at now: "candidate" or its refusal reason.
func state(t *testing.T, r *Router, now time.Time) string {
	t.Helper()
	var p Plan
	if err := r.Plan(&Request{Model: "m", Now: now}, &p); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Candidates {
		if c.Provider == "a" {
			return "candidate"
		}
	}
	for _, s := range p.Skipped {
		if s.Provider == "a" {
			return s.Reason.String()
		}
	}
	t.Fatalf("a is neither candidate nor skipped in %q", order(&p))
	return ""
}

// feed observes outcomes for a/m at now, one per letter: S success,
// F server error, T timeout, C connect error, R 429.
func feed(r *Router, now time.Time, outcomes string) {
	for _, c := range outcomes {
		o := map[rune]Outcome{'S': Success, 'F': ServerError, 'T': Timeout, 'C': ConnectError, 'R': RateLimited}[c]
		r.Observe("a", "m", o, 10*time.Millisecond, 0, now)
	}
}

func TestBreakerOpens(t *testing.T) {
	tests := []struct {
		name   string
		health HealthSpec
		// steps are fed in turn at t0 + at.
		steps []struct {
			at       time.Duration
			outcomes string
		}
		want string
	}{
		{name: "four failures", steps: steps(0, "FTCF"), want: "candidate"},
		{name: "five consecutive failures", steps: steps(0, "FTCFF"), want: "circuit_open"},
		{name: "a success resets the run", steps: steps(0, "FFFFSFFFF"), want: "candidate"},
		{name: "429s are neutral", steps: steps(0, "RRRRRRRRRRFFFF"), want: "candidate"},
		{name: "custom threshold", health: HealthSpec{ConsecutiveFailures: 2}, steps: steps(0, "FF"), want: "circuit_open"},
		// FFS×6 + F: 13 of 19 failed, below MinRequests.
		{name: "error rate below min requests", steps: steps(0, "FFSFFSFFSFFSFFSFFSF"), want: "candidate"},
		// One more failure: 14 of 20 > 50%.
		{name: "error rate over 50% of 20", steps: steps(0, "FFSFFSFFSFFSFFSFFSFF"), want: "circuit_open"},
		{name: "error rate of exactly 50%", steps: steps(0, "FSFSFSFSFSFSFSFSFSFS"), want: "candidate"},
		{name: "failures outside the window expire",
			steps: append(steps(0, "FFSFFSFFSFFSFFSFFSF"), steps(61*time.Second, "F")...), want: "candidate"},
		{name: "failures inside the window count",
			steps: append(steps(0, "FFSFFSFFSFFSFFSFFSF"), steps(50*time.Second, "F")...), want: "circuit_open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tierSpec(StrategyOrdered)
			s.Health = tc.health
			r := mustNew(t, s)
			var last time.Time
			for _, st := range tc.steps {
				last = t0.Add(st.at)
				feed(r, last, st.outcomes)
			}
			if got := state(t, r, last); got != tc.want {
				t.Errorf("state after %v = %s, want %s", tc.steps, got, tc.want)
			}
		})
	}
}

func steps(at time.Duration, outcomes string) []struct {
	at       time.Duration
	outcomes string
} {
	return []struct {
		at       time.Duration
		outcomes string
	}{{at, outcomes}}
}

func TestBreakerHalfOpen(t *testing.T) {
	r := mustNew(t, tierSpec(StrategyOrdered))
	feed(r, t0, "FFFFF")
	check := func(at time.Duration, want string) {
		t.Helper()
		if got := state(t, r, t0.Add(at)); got != want {
			t.Errorf("state at t0+%v = %s, want %s", at, got, want)
		}
	}
	begin := func(at time.Duration, want Reason) {
		t.Helper()
		if got := r.Begin("a", "m", 1, t0.Add(at)); got != want {
			t.Errorf("Begin at t0+%v = %s, want %s", at, got, want)
		}
	}
	check(29*time.Second, "circuit_open")
	begin(29*time.Second, CircuitOpen)
	// A straggler's success while open does not close the breaker.
	r.Observe("a", "m", Success, time.Millisecond, 0, t0.Add(10*time.Second))
	check(29*time.Second, "circuit_open")

	// Half-open: one probe.
	check(30*time.Second, "candidate")
	begin(30*time.Second, Admitted)
	begin(30*time.Second, CircuitOpen)
	check(31*time.Second, "circuit_open")

	// The probe fails: open for another cool-down.
	r.Observe("a", "m", ServerError, 0, 0, t0.Add(31*time.Second))
	r.End("a", "m")
	check(60*time.Second, "circuit_open")
	check(61*time.Second, "candidate")

	// A probe whose outcome never comes lapses after a cool-down.
	begin(61*time.Second, Admitted)
	check(90*time.Second, "circuit_open")
	check(91*time.Second, "candidate")

	// A probe that meets a 429 frees the probe (the cool-down covers the
	// retry-after).
	begin(91*time.Second, Admitted)
	r.Observe("a", "m", RateLimited, 0, 0, t0.Add(91*time.Second))
	check(91*time.Second, "candidate")

	// The next probe succeeds: closed, everyone admitted.
	begin(91*time.Second, Admitted)
	r.Observe("a", "m", Success, time.Millisecond, 0, t0.Add(92*time.Second))
	check(92*time.Second, "candidate")
	begin(92*time.Second, Admitted)
	begin(92*time.Second, Admitted)
	// And the counts started afresh: four failures do not reopen it.
	feed(r, t0.Add(93*time.Second), "FFFF")
	check(93*time.Second, "candidate")
}

func TestCooldown(t *testing.T) {
	r := mustNew(t, tierSpec(StrategyOrdered))
	r.Observe("a", "m", RateLimited, 0, 7*time.Second, t0)
	for _, tc := range []struct {
		at   time.Duration
		want string
	}{
		{0, "cooling_down"},
		{7*time.Second - time.Nanosecond, "cooling_down"},
		{7 * time.Second, "candidate"},
	} {
		if got := state(t, r, t0.Add(tc.at)); got != tc.want {
			t.Errorf("state at t0+%v = %s, want %s", tc.at, got, tc.want)
		}
	}
	if got := r.Begin("a", "m", 1, t0.Add(time.Second)); got != CoolingDown {
		t.Errorf("Begin while cooling down = %s, want cooling_down", got)
	}
	// A shorter retry-after does not cut an earlier, longer one short.
	r.Observe("a", "m", RateLimited, 0, 10*time.Second, t0)
	r.Observe("a", "m", RateLimited, 0, time.Second, t0)
	if got := state(t, r, t0.Add(9*time.Second)); got != "cooling_down" {
		t.Errorf("state at t0+9s = %s, want cooling_down", got)
	}
	// Only a/m cools down: the other members stay candidates.
	var p Plan
	_ = r.Plan(&Request{Model: "m", Now: t0}, &p)
	if got, want := order(&p), "b/m c/m"; got != want {
		t.Errorf("Plan() = %q, want %q", got, want)
	}
}

func TestObserveIgnoresUnknown(t *testing.T) {
	r := mustNew(t, tierSpec(StrategyOrdered))
	r.Observe("nope", "m", ServerError, 0, 0, t0)
	r.Observe("a", "other", ServerError, 0, 0, t0)
	r.End("nope", "m")
	if got := r.Begin("nope", "m", 1, t0); got != Admitted {
		t.Errorf("Begin(unknown) = %s, want admitted", got)
	}
}
