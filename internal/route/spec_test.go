package route

import (
	"strings"
	"testing"
	"time"
)

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Spec)
		want string // substring of the error; empty for valid
	}{
		{"fixture", func(*Spec) {}, ""},
		{"provider name", func(s *Spec) { s.Providers[0].Name = "azure east" }, `providers[0].name: "azure east" may hold only`},
		{"duplicate provider", func(s *Spec) { s.Providers[1].Name = "azure-east" }, "providers[1].name: duplicate provider"},
		{"capability", func(s *Spec) { s.Providers[0].Capabilities = []string{"audio"} }, `providers[0].capabilities[0]: unknown capability "audio"`},
		{"negative capacity", func(s *Spec) { s.Providers[0].Capacity.RPM = -1 }, "providers[0].capacity"},
		{"negative price", func(s *Spec) { s.Providers[0].Prices["x"] = Price{-1, 0} }, `providers[0].prices["x"]`},
		{"duplicate model", func(s *Spec) { s.Models[1].Name = "gpt-4o" }, "models[1].name: duplicate model"},
		{"no tiers", func(s *Spec) { s.Models[0].Tiers = nil }, "models[0].tiers: a model needs at least one tier"},
		{"empty tier", func(s *Spec) { s.Models[0].Tiers[0].Members = nil }, "models[0].tiers[0].members"},
		{"strategy", func(s *Spec) { s.Models[0].Tiers[0].Strategy = "random" }, `models[0].tiers[0].strategy: unknown strategy "random"`},
		{"weights", func(s *Spec) { s.Models[0].Tiers[1].Members[0].Weight = 0 }, "models[0].tiers[1]: weighted members need a positive weight"},
		{"member provider", func(s *Spec) { s.Models[0].Tiers[0].Members[0].Provider = "nope" }, `models[0].tiers[0].members[0].provider: unknown provider "nope"`},
		{"member twice", func(s *Spec) {
			s.Models[0].Tiers[2].Members = append(s.Models[0].Tiers[2].Members, MemberSpec{Provider: "azure-east", Model: "gpt-4o"})
		}, "models[0].tiers[2].members[1]: azure-east/gpt-4o is listed twice"},
		{"agreement holder", func(s *Spec) { s.Agreements[0].Holder = "nope" }, `agreements[0].holder: unknown provider "nope"`},
		{"agreement window", func(s *Spec) { s.Agreements[0].Until = s.Agreements[0].From }, "agreements[0].until"},
		{"agreement name", func(s *Spec) { s.Agreements[0].Name = "a;b" }, "agreements[0].name"},
		{"policy workload", func(s *Spec) { s.Policies = []PolicySpec{{}} }, "policies[0].workload: empty"},
		{"policy provider", func(s *Spec) { s.Policies = []PolicySpec{{Workload: "w", Providers: []string{"x"}}} }, `policies[0].providers[0]: unknown provider "x"`},
		{"policy fallback", func(s *Spec) {
			s.Policies = []PolicySpec{{Workload: "w", Fallback: map[string][]string{"gpt-4o": {"gpt-9"}}}}
		}, `policies[0].fallback["gpt-4o"]: unknown model "gpt-9"`},
		{"health", func(s *Spec) { s.Health.Cooldown = -time.Second }, "health"},
		{"several at once", func(s *Spec) { s.Providers[0].Capacity.TPM = -1; s.Models[0].Name = "" }, "models[0].name: empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := fixture()
			tc.edit(&s)
			err := s.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
			if _, nerr := New(s); (nerr == nil) != (err == nil) {
				t.Errorf("New() = %v, Validate() = %v: want the same verdict", nerr, err)
			}
		})
	}
}

// TestReloadKeepsState: a router built with Previous shares health,
// capacity and counters with the one it replaces.
func TestReloadKeepsState(t *testing.T) {
	s := fixture()
	s.Providers[0].Capacity = Capacity{RPM: 1}
	old := mustNew(t, s)
	old.Begin("azure-east", "gpt-4o", 1, t0)
	old.Observe("openai", "gpt-4o", RateLimited, 0, time.Minute, t0)
	var p Plan
	_ = old.Plan(&Request{Model: "gpt-4o", Now: t0}, &p)

	s.Previous = old
	r := mustNew(t, s)
	_ = r.Plan(&Request{Model: "gpt-4o", Now: t0}, &p)
	if got, want := skipped(&p), "azure-east:capacity_exhausted openai:cooling_down"; got != want {
		t.Errorf("Skipped after reload = %q, want %q", got, want)
	}
	if got := r.FirstRefusalRefusals("azure-primary", CapacityExhausted); got != 2 {
		t.Errorf("refusals after reload = %d, want 2 (one before, one after)", got)
	}
}
