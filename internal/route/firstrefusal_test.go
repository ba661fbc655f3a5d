package route

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestFirstRefusalSimulation drives 10,000 requests at a route whose holder
// fails 30% of its calls with 429 and checks that every plan offers the
// holder first or records why not, and that the counters add up.
func TestFirstRefusalSimulation(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter time.Duration
		// wantRefusals: with a retry-after, the holder cools down and is
		// passed over (CoolingDown) until it ends.
		wantRefusals bool
	}{
		{"429 without retry-after", 0, false},
		{"429 with 250ms retry-after", 250 * time.Millisecond, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustNew(t, fixture())
			rng := rand.New(rand.NewPCG(3, 4))
			const n = 10_000
			var p Plan
			now := t0
			var calls, failed int
			for i := range n {
				now = now.Add(100 * time.Millisecond)
				if err := r.Plan(&Request{Model: "gpt-4o", Now: now, EstTokens: 500}, &p); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				offered := len(p.Candidates) > 0 && p.Candidates[0].Provider == "azure-east" && p.Candidates[0].FirstRefusal == "azure-primary"
				refused := len(p.Skipped) > 0 && p.Skipped[0].Provider == "azure-east" && p.Skipped[0].Agreement == "azure-primary"
				if offered == refused {
					t.Fatalf("request %d: plan %q skipped %q: want the holder first xor refused first", i, order(&p), skipped(&p))
				}
				seen := 0
				for _, c := range p.Candidates {
					if c.Provider == "azure-east" {
						seen++
					}
				}
				if seen > int(boolInt(offered)) {
					t.Fatalf("request %d: holder offered %d times in %q", i, seen, order(&p))
				}
				for _, c := range p.Candidates {
					if why := r.Begin(c.Provider, c.Model, 500, now); why != Admitted {
						continue
					}
					o := Success
					if c.Provider == "azure-east" {
						calls++
						if rng.Float64() < 0.3 {
							o = RateLimited
							failed++
						}
					}
					r.Observe(c.Provider, c.Model, o, 80*time.Millisecond, tc.retryAfter, now)
					r.End(c.Provider, c.Model)
					if o == Success {
						break
					}
				}
			}
			offers := r.FirstRefusalOffers("azure-primary")
			var refusals uint64
			for _, a := range r.Stats().Agreements {
				for _, c := range a.Refusals {
					refusals += c
				}
			}
			if offers+refusals != n {
				t.Errorf("offers %d + refusals %d = %d, want %d", offers, refusals, offers+refusals, n)
			}
			if got := refusals > 0; got != tc.wantRefusals {
				t.Errorf("refusals = %d, want some: %v", refusals, tc.wantRefusals)
			}
			if got := r.FirstRefusalRefusals("azure-primary", CoolingDown); got != refusals {
				t.Errorf("CoolingDown refusals = %d, want all %d", got, refusals)
			}
			if share := float64(failed) / float64(calls); share < 0.27 || share > 0.33 {
				t.Errorf("holder failed %d of %d calls, want about 30%%", failed, calls)
			}
			if uint64(calls) != offers {
				t.Errorf("holder called %d times, offered %d times", calls, offers)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestFirstRefusalCapacity(t *testing.T) {
	tests := []struct {
		name     string
		capacity Capacity
		used     []int64 // tokens of each Begin at t0
		est      int64
	}{
		{"rpm", Capacity{RPM: 3}, []int64{1, 1, 1}, 1},
		{"tpm", Capacity{TPM: 1000}, []int64{900}, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := fixture()
			s.Providers[0].Capacity = tc.capacity
			r := mustNew(t, s)
			for _, tok := range tc.used {
				if why := r.Begin("azure-east", "gpt-4o", tok, t0); why != Admitted {
					t.Fatalf("Begin = %v, want admitted", why)
				}
			}
			if why := r.Begin("azure-east", "gpt-4o", tc.est, t0); why != CapacityExhausted {
				t.Errorf("Begin past capacity = %v, want capacity_exhausted", why)
			}
			var p Plan
			for _, step := range []struct {
				after time.Duration
				want  bool // holder offered first
			}{
				{0, false}, {30 * time.Second, false}, {59 * time.Second, false},
				{60 * time.Second, true}, {10 * time.Minute, true},
			} {
				now := t0.Add(step.after)
				if err := r.Plan(&Request{Model: "gpt-4o", EstTokens: tc.est, Now: now}, &p); err != nil {
					t.Fatal(err)
				}
				first := p.Candidates[0]
				if got := first.Provider == "azure-east"; got != step.want {
					t.Errorf("t0+%v: first candidate %s, want holder %v (skipped %q)", step.after, first.Provider, step.want, skipped(&p))
				}
				if !step.want {
					if first.Tier != 2 {
						t.Errorf("t0+%v: first candidate from tier %d, want spill to tier 2", step.after, first.Tier)
					}
					if got := skipped(&p); got != "azure-east:capacity_exhausted" || p.Skipped[0].Agreement != "azure-primary" {
						t.Errorf("t0+%v: skipped %q (agreement %q), want the holder refused for capacity", step.after, got, p.Skipped[0].Agreement)
					}
				}
			}
			if got := r.FirstRefusalRefusals("azure-primary", CapacityExhausted); got != 3 {
				t.Errorf("capacity refusals = %d, want 3", got)
			}
		})
	}
}

func TestFirstRefusalWindow(t *testing.T) {
	from := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC) // "until 2030-12-31" inclusive
	tests := []struct {
		name        string
		from, until time.Time
		now         time.Time
		want        bool
	}{
		{"before from", from, until, from.Add(-time.Nanosecond), false},
		{"at from", from, until, from, true},
		{"last instant of the last day", from, until, until.Add(-time.Nanosecond), true},
		{"at until", from, until, until, false},
		{"open from", time.Time{}, until, time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"open until", from, time.Time{}, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := fixture()
			s.Agreements[0].Holder = "coreweave" // last tier: the agreement's effect is visible
			s.Agreements[0].From, s.Agreements[0].Until = tc.from, tc.until
			r := mustNew(t, s)
			var p Plan
			if err := r.Plan(&Request{Model: "gpt-4o", Now: tc.now}, &p); err != nil {
				t.Fatal(err)
			}
			first := p.Candidates[0]
			if got := first.Provider == "coreweave" && first.FirstRefusal == "azure-primary"; got != tc.want {
				t.Errorf("Plan(at %v) = %q, want holder first %v", tc.now, order(&p), tc.want)
			}
			if !tc.want && first.Provider != "azure-east" {
				t.Errorf("Plan(at %v) = %q, want the route's own order", tc.now, order(&p))
			}
			if n := r.FirstRefusalOffers("azure-primary"); n != uint64(boolInt(tc.want)) {
				t.Errorf("offers = %d, want %d", n, boolInt(tc.want))
			}
		})
	}
}

func TestFirstRefusalCoverage(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(*Spec)
		model       string
		workload    string
		wantOrder   string
		wantSkipped string
		wantTier    int
	}{
		{
			name:      "holder moved first from a later tier",
			edit:      func(s *Spec) { s.Agreements[0].Holder = "azure-eu"; s.Rand = seq(0) },
			model:     "gpt-4o",
			wantOrder: "azure-eu/gpt-4o azure-east/gpt-4o openai/gpt-4o coreweave/llama-3-70b",
			wantTier:  2,
		},
		{
			name: "model added later, matched by glob",
			edit: func(s *Spec) {
				s.Models = append(s.Models, ModelSpec{Name: "gpt-4o-2031", Family: "openai", Tiers: []TierSpec{
					{Members: []MemberSpec{{Provider: "openai"}}},
					{Members: []MemberSpec{{Provider: "azure-east"}}},
				}})
			},
			model:     "gpt-4o-2031",
			wantOrder: "azure-east/gpt-4o-2031 openai/gpt-4o-2031",
			wantTier:  2,
		},
		{
			name: "holder not in the model's routes",
			edit: func(s *Spec) {
				s.Models = append(s.Models, ModelSpec{Name: "gpt-4o-2031", Tiers: []TierSpec{{Members: []MemberSpec{{Provider: "openai"}}}}})
			},
			model:       "gpt-4o-2031",
			wantOrder:   "openai/gpt-4o-2031",
			wantSkipped: "azure-east:not_served",
		},
		{
			name: "holder outside the routes but serving the model",
			edit: func(s *Spec) {
				s.Providers[0].Serves = []string{"gpt-4o*"}
				s.Models = append(s.Models, ModelSpec{Name: "gpt-4o-2031", Tiers: []TierSpec{{Members: []MemberSpec{{Provider: "openai"}}}}})
			},
			model:     "gpt-4o-2031",
			wantOrder: "azure-east/gpt-4o-2031 openai/gpt-4o-2031",
			wantTier:  0,
		},
		{
			name:      "model outside the agreement's scope",
			model:     "claude-sonnet",
			wantOrder: "anthropic/claude-sonnet",
		},
		{
			name:      "workload outside the agreement's scope",
			edit:      func(s *Spec) { s.Agreements[0].Scope.Workloads = []string{"batch-*"} },
			model:     "gpt-4o-mini",
			workload:  "chat",
			wantOrder: "openai/gpt-4o-mini",
		},
		{
			name:        "workload inside the agreement's scope",
			edit:        func(s *Spec) { s.Agreements[0].Scope.Workloads = []string{"batch-*"} },
			model:       "gpt-4o-mini",
			workload:    "batch-nightly",
			wantOrder:   "openai/gpt-4o-mini",
			wantSkipped: "azure-east:not_served",
		},
		{
			name: "holder refused by policy, later occurrences removed",
			edit: func(s *Spec) {
				s.Policies = []PolicySpec{{Workload: "eu", Regions: []string{"eu-west-1", "eu-central-1"}}}
			},
			model:       "gpt-4o",
			workload:    "eu",
			wantOrder:   "azure-eu/gpt-4o",
			wantSkipped: "azure-east:region_not_allowed openai:region_not_allowed coreweave:family_not_allowed",
		},
		{
			name: "holder only in a fallback model's tiers does not serve the model",
			edit: func(s *Spec) {
				s.Policies = []PolicySpec{{Workload: "w", AllowFamilyFallback: true, Fallback: map[string][]string{"gpt-4o-mini": {"gpt-4o"}}}}
				s.Rand = seq(0)
			},
			model:       "gpt-4o-mini",
			workload:    "w",
			wantOrder:   "openai/gpt-4o-mini openai/gpt-4o azure-eu/gpt-4o coreweave/llama-3-70b",
			wantSkipped: "azure-east:not_served",
		},
		{
			name: "second agreement for the same holder is not a second offer",
			edit: func(s *Spec) {
				a := s.Agreements[0]
				a.Name = "azure-extra"
				s.Agreements = append(s.Agreements, a)
				s.Rand = seq(0)
			},
			model:     "gpt-4o",
			wantOrder: "azure-east/gpt-4o openai/gpt-4o azure-eu/gpt-4o coreweave/llama-3-70b",
			wantTier:  1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := fixture()
			if tc.edit != nil {
				tc.edit(&s)
			}
			r := mustNew(t, s)
			var p Plan
			if err := r.Plan(&Request{Model: tc.model, Workload: tc.workload, Now: t0}, &p); err != nil {
				t.Fatal(err)
			}
			if got := order(&p); got != tc.wantOrder {
				t.Errorf("Plan() = %q, want %q", got, tc.wantOrder)
			}
			if got := skipped(&p); got != tc.wantSkipped {
				t.Errorf("Skipped = %q, want %q", got, tc.wantSkipped)
			}
			if p.Candidates[0].FirstRefusal != "" && p.Candidates[0].Tier != tc.wantTier {
				t.Errorf("holder's tier = %d, want %d", p.Candidates[0].Tier, tc.wantTier)
			}
		})
	}
}

// TestFirstRefusalBestOccurrence: a holder listed twice (two upstream
// models) is offered through the first occurrence that can take the call.
func TestFirstRefusalBestOccurrence(t *testing.T) {
	s := fixture()
	s.Models[0].Tiers[2].Members = append(s.Models[0].Tiers[2].Members, MemberSpec{Provider: "azure-east", Model: "gpt-4o-backup"})
	r := mustNew(t, s)
	r.Observe("azure-east", "gpt-4o", RateLimited, 0, 10*time.Second, t0)
	var p Plan
	if err := r.Plan(&Request{Model: "gpt-4o", Now: t0.Add(time.Second)}, &p); err != nil {
		t.Fatal(err)
	}
	if c := p.Candidates[0]; c.Provider != "azure-east" || c.Model != "gpt-4o-backup" || c.FirstRefusal != "azure-primary" || c.Tier != 3 {
		t.Errorf("first candidate = %+v, want the holder's backup model from tier 3", c)
	}
	if len(p.Skipped) != 0 || len(p.Candidates) != 4 {
		t.Errorf("Plan() = %q skipped %q, want 4 candidates, none skipped", order(&p), skipped(&p))
	}
	if r.FirstRefusalOffers("azure-primary") != 1 {
		t.Errorf("offers = %d, want 1", r.FirstRefusalOffers("azure-primary"))
	}
}
