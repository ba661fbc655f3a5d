package route

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// tierSpec returns a spec whose model "m" has one tier of members on
// providers a, b and c, under strategy.
func tierSpec(strategy string, weights ...int) Spec {
	s := Spec{Rand: rand.New(rand.NewPCG(7, 9)).Float64}
	for i, name := range []string{"a", "b", "c"} {
		s.Providers = append(s.Providers, ProviderSpec{Name: name, Prices: map[string]Price{}})
		mem := MemberSpec{Provider: name}
		if weights != nil {
			mem.Weight = weights[i]
		}
		if s.Models == nil {
			s.Models = []ModelSpec{{Name: "m", Tiers: []TierSpec{{Strategy: strategy}}}}
		}
		s.Models[0].Tiers[0].Members = append(s.Models[0].Tiers[0].Members, mem)
	}
	return s
}

func TestWeightedDistribution(t *testing.T) {
	r := mustNew(t, tierSpec(StrategyWeighted, 6, 3, 1))
	const n = 10_000
	first := map[string]int{}
	var p Plan
	for range n {
		if err := r.Plan(&Request{Model: "m", Now: t0}, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Candidates) != 3 {
			t.Fatalf("Plan() = %q, want all three members", order(&p))
		}
		first[p.Candidates[0].Provider]++
	}
	for name, want := range map[string]float64{"a": 0.6, "b": 0.3, "c": 0.1} {
		if got := float64(first[name]) / n; math.Abs(got-want) > 0.02 {
			t.Errorf("share of %s first = %.3f, want %.1f ± 0.02", name, got, want)
		}
	}
}

func TestWeightedDeterministic(t *testing.T) {
	tests := []struct {
		name string
		rnd  []float64
		want string
	}{
		// total 10: x = 0 → a; then remaining b,c total 4: x = 0 → b.
		{"low draws", []float64{0, 0}, "a/m b/m c/m"},
		// x = 9.9 → c, swapped with a: remaining b(3), a(6) total 9:
		// x = 8.9 → a.
		{"high draws", []float64{0.99, 0.99}, "c/m a/m b/m"},
		// x = 6 → b (a covers 0..5); remaining a,c (c swapped to 1) total 7: x = 0 → a.
		{"middle", []float64{0.6, 0}, "b/m a/m c/m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tierSpec(StrategyWeighted, 6, 3, 1)
			s.Rand = seq(tc.rnd...)
			r := mustNew(t, s)
			var p Plan
			if err := r.Plan(&Request{Model: "m", Now: t0}, &p); err != nil {
				t.Fatal(err)
			}
			if got := order(&p); got != tc.want {
				t.Errorf("Plan() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLeastLatency(t *testing.T) {
	r := mustNew(t, tierSpec(StrategyLeastLatency))
	var p Plan
	req := &Request{Model: "m", Now: t0}
	_ = r.Plan(req, &p)
	if got, want := order(&p), "a/m b/m c/m"; got != want {
		t.Errorf("Plan() before any sample = %q, want %q (listed order)", got, want)
	}
	r.Observe("a", "m", Success, 300*time.Millisecond, 0, t0)
	r.Observe("b", "m", Success, 100*time.Millisecond, 0, t0)
	r.Observe("c", "m", Success, 200*time.Millisecond, 0, t0)
	_ = r.Plan(req, &p)
	if got, want := order(&p), "b/m c/m a/m"; got != want {
		t.Errorf("Plan() = %q, want %q", got, want)
	}
	// b slows down: the moving average (alpha 0.3) moves past c's 200ms
	// after a few samples of 500ms.
	for range 3 {
		r.Observe("b", "m", Success, 500*time.Millisecond, 0, t0)
	}
	_ = r.Plan(req, &p)
	if got, want := order(&p), "c/m a/m b/m"; got != want {
		t.Errorf("Plan() after b slowed = %q, want %q", got, want)
	}
	// Failures do not feed the average.
	r.Observe("c", "m", ServerError, time.Hour, 0, t0)
	_ = r.Plan(req, &p)
	if got, want := order(&p), "c/m a/m b/m"; got != want {
		t.Errorf("Plan() after a 5xx = %q, want %q", got, want)
	}
}

func TestLeastBusy(t *testing.T) {
	r := mustNew(t, tierSpec(StrategyLeastBusy))
	var p Plan
	req := &Request{Model: "m", Now: t0}
	for _, b := range []struct{ provider string }{{"a"}, {"a"}, {"b"}} {
		if why := r.Begin(b.provider, "m", 10, t0); why != Admitted {
			t.Fatalf("Begin(%s) = %v, want admitted", b.provider, why)
		}
	}
	_ = r.Plan(req, &p)
	if got, want := order(&p), "c/m b/m a/m"; got != want {
		t.Errorf("Plan() = %q, want %q", got, want)
	}
	r.End("a", "m")
	r.End("a", "m")
	_ = r.Plan(req, &p)
	if got, want := order(&p), "a/m c/m b/m"; got != want {
		t.Errorf("Plan() after End = %q, want %q", got, want)
	}
}

func TestCheapest(t *testing.T) {
	tests := []struct {
		name     string
		est, out int64
		want     string
	}{
		// a: 1+9, b: 4+4, c unknown. Even mix: b (8) < a (10).
		{"unknown mix", 0, 0, "b/m a/m c/m"},
		// 900 in, 100 out: a = 900+900 = 1800, b = 3600+400 = 4000.
		{"input heavy", 1000, 100, "a/m b/m c/m"},
		// 100 in, 900 out: a = 100+8100, b = 400+3600.
		{"output heavy", 1000, 900, "b/m a/m c/m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tierSpec(StrategyCheapest)
			s.Providers[0].Prices["m"] = Price{1, 9}
			s.Providers[1].Prices["m"] = Price{4, 4}
			r := mustNew(t, s)
			var p Plan
			if err := r.Plan(&Request{Model: "m", EstTokens: tc.est, EstOutputTokens: tc.out, Now: t0}, &p); err != nil {
				t.Fatal(err)
			}
			if got := order(&p); got != tc.want {
				t.Errorf("Plan() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStrategyValidate(t *testing.T) {
	tests := []struct {
		strategy string
		members  []MemberSpec
		wantErr  bool
	}{
		{StrategyWeighted, []MemberSpec{{Provider: "a", Weight: 1}}, false},
		{StrategyWeighted, []MemberSpec{{Provider: "a", Weight: 1}, {Provider: "b"}}, true},
		{StrategyWeighted, []MemberSpec{{Provider: "a", Weight: -1}}, true},
		{"", []MemberSpec{{Provider: "a"}}, false},
		{StrategyOrdered, []MemberSpec{{Provider: "a", Weight: 2}}, true},
		{StrategyLeastLatency, []MemberSpec{{Provider: "a", Weight: 2}}, true},
		{StrategyLeastBusy, []MemberSpec{{Provider: "a"}}, false},
		{StrategyCheapest, []MemberSpec{{Provider: "a", Weight: 1}}, true},
	}
	for _, tc := range tests {
		err := strategies[tc.strategy].Validate(tc.members)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q.Validate(%v) = %v, want error %v", tc.strategy, tc.members, err, tc.wantErr)
		}
	}
}
