package route

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestPolicies(t *testing.T) {
	tests := []struct {
		name        string
		policy      PolicySpec
		model       string
		needs       Caps
		wantOrder   string
		wantSkipped string
		wantErr     string // Error(); empty for none
		wantReason  Reason
	}{
		{
			name:        "providers",
			policy:      PolicySpec{Providers: []string{"openai", "azure-east"}, AllowFamilyFallback: true},
			model:       "gpt-4o",
			wantOrder:   "azure-east/gpt-4o openai/gpt-4o",
			wantSkipped: "azure-eu:provider_not_allowed coreweave:provider_not_allowed",
		},
		{
			name:        "providers exclude all",
			policy:      PolicySpec{Providers: []string{"openai"}},
			model:       "claude-sonnet",
			wantSkipped: "anthropic:provider_not_allowed",
			wantErr:     `no provider for model "claude-sonnet" meets the workload "w" policy: provider (allowed openai)`,
			wantReason:  ProviderNotAllowed,
		},
		{
			name:        "family",
			policy:      PolicySpec{},
			model:       "gpt-4o",
			wantOrder:   "azure-east/gpt-4o openai/gpt-4o azure-eu/gpt-4o",
			wantSkipped: "coreweave:family_not_allowed",
		},
		{
			name:      "family fallback allowed",
			policy:    PolicySpec{AllowFamilyFallback: true},
			model:     "gpt-4o",
			wantOrder: "azure-east/gpt-4o openai/gpt-4o azure-eu/gpt-4o coreweave/llama-3-70b",
		},
		{
			name:        "capability needed by the request",
			policy:      PolicySpec{AllowFamilyFallback: true, Providers: []string{"coreweave"}},
			model:       "gpt-4o",
			needs:       CapVision | CapTools,
			wantSkipped: "azure-east:provider_not_allowed openai:provider_not_allowed azure-eu:provider_not_allowed coreweave:missing_capability",
			wantErr:     `no provider for model "gpt-4o" meets the workload "w" policy: capability (requires tools,vision)`,
			wantReason:  MissingCapability,
		},
		{
			name:        "capability required by the policy",
			policy:      PolicySpec{AllowFamilyFallback: true, Require: []string{"vision"}},
			model:       "gpt-4o",
			wantOrder:   "azure-east/gpt-4o openai/gpt-4o azure-eu/gpt-4o",
			wantSkipped: "coreweave:missing_capability",
		},
		{
			name:        "regions",
			policy:      PolicySpec{AllowFamilyFallback: true, Regions: []string{"eu-west-1", "eu-central-1"}},
			model:       "gpt-4o",
			wantOrder:   "azure-eu/gpt-4o coreweave/llama-3-70b",
			wantSkipped: "azure-east:region_not_allowed openai:region_not_allowed",
		},
		{
			name:        "regions exclude all",
			policy:      PolicySpec{Regions: []string{"eu-west-1", "eu-central-1"}},
			model:       "claude-sonnet",
			wantSkipped: "anthropic:region_not_allowed",
			wantErr:     `no provider for model "claude-sonnet" meets the workload "w" policy: region (allowed eu-west-1, eu-central-1)`,
			wantReason:  RegionNotAllowed,
		},
		{
			// Blended 1:1: azure-east and openai 6.25$, azure-eu 6.875$, coreweave 0.6$.
			name:        "price",
			policy:      PolicySpec{AllowFamilyFallback: true, MaxPricePerMTok: 6_500_000},
			model:       "gpt-4o",
			wantOrder:   "azure-east/gpt-4o openai/gpt-4o coreweave/llama-3-70b",
			wantSkipped: "azure-eu:price_too_high",
		},
		{
			name:        "the last constraint to exclude is named",
			policy:      PolicySpec{Regions: []string{"eu-west-1", "eu-central-1"}, MaxPricePerMTok: 1_000_000},
			model:       "gpt-4o",
			wantSkipped: "azure-east:region_not_allowed openai:region_not_allowed azure-eu:price_too_high coreweave:family_not_allowed",
			wantErr:     `no provider for model "gpt-4o" meets the workload "w" policy: price (at most 1000000 micro-dollars per million tokens)`,
			wantReason:  PriceTooHigh,
		},
		{
			name:       "model not allowed",
			policy:     PolicySpec{Models: []string{"gpt-4o-*"}},
			model:      "gpt-4o",
			wantErr:    `model "gpt-4o" is not allowed for workload "w"`,
			wantReason: ModelNotAllowed,
		},
		{
			name:      "model allowed by glob",
			policy:    PolicySpec{Models: []string{"gpt-4o-*"}},
			model:     "gpt-4o-mini",
			wantOrder: "openai/gpt-4o-mini",
		},
		{
			name:       "unknown model",
			model:      "gpt-5",
			wantErr:    `no route for model "gpt-5"`,
			wantReason: UnknownModel,
		},
		{
			name:        "fallback models follow, subject to family",
			policy:      PolicySpec{Fallback: map[string][]string{"gpt-4o-mini": {"claude-sonnet"}}},
			model:       "gpt-4o-mini",
			wantOrder:   "openai/gpt-4o-mini",
			wantSkipped: "anthropic:family_not_allowed",
		},
		{
			name:      "fallback models with family fallback",
			policy:    PolicySpec{AllowFamilyFallback: true, Fallback: map[string][]string{"gpt-4o-mini": {"claude-sonnet", "gpt-4o"}}},
			model:     "gpt-4o-mini",
			wantOrder: "openai/gpt-4o-mini anthropic/claude-sonnet azure-east/gpt-4o openai/gpt-4o azure-eu/gpt-4o coreweave/llama-3-70b",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := fixture()
			s.Agreements = nil
			s.Rand = seq(0)
			tc.policy.Workload = "w"
			s.Policies = []PolicySpec{tc.policy}
			r := mustNew(t, s)
			var p Plan
			err := r.Plan(&Request{Model: tc.model, Workload: "w", Needs: tc.needs, Now: t0}, &p)
			if got := order(&p); got != tc.wantOrder {
				t.Errorf("Plan() = %q, want %q", got, tc.wantOrder)
			}
			if got := skipped(&p); got != tc.wantSkipped {
				t.Errorf("Skipped = %q, want %q", got, tc.wantSkipped)
			}
			var e *Error
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Plan() error = %v, want none", err)
			case tc.wantErr != "" && !errors.As(err, &e):
				t.Errorf("Plan() error = %v, want *Error %q", err, tc.wantErr)
			case tc.wantErr != "":
				if e.Error() != tc.wantErr {
					t.Errorf("Error() = %q, want %q", e.Error(), tc.wantErr)
				}
				if e.Reason != tc.wantReason || e.Constraint != tc.wantReason.Constraint() {
					t.Errorf("Reason, Constraint = %s, %q; want %s, %q", e.Reason, e.Constraint, tc.wantReason, tc.wantReason.Constraint())
				}
				if e.Temporary() {
					t.Errorf("Temporary() = true for a policy refusal")
				}
			}
		})
	}
}

func TestPolicySelection(t *testing.T) {
	s := fixture()
	s.Policies = []PolicySpec{
		{Workload: "default", Regions: []string{"us"}},
		{Workload: "eu", Regions: []string{"eu-west-1"}},
	}
	r := mustNew(t, s)
	tests := []struct {
		workload, wantPolicy, wantFirst string
	}{
		{"eu", "eu", "azure-eu"},
		{"chat", "default", "openai"},
		{"", "default", "openai"},
	}
	for _, tc := range tests {
		var p Plan
		if err := r.Plan(&Request{Model: "gpt-4o", Workload: tc.workload, Now: t0}, &p); err != nil {
			t.Fatal(err)
		}
		if p.Policy != tc.wantPolicy || p.Candidates[0].Provider != tc.wantFirst {
			t.Errorf("Plan(workload %q) = policy %q first %s, want %q, %s", tc.workload, p.Policy, p.Candidates[0].Provider, tc.wantPolicy, tc.wantFirst)
		}
	}
	// No policy at all: no constraints.
	s.Policies = nil
	r = mustNew(t, s)
	var p Plan
	if err := r.Plan(&Request{Model: "gpt-4o", Workload: "chat", Now: t0}, &p); err != nil || p.Policy != "" || len(p.Candidates) != 4 {
		t.Errorf("Plan() without policies = %q, policy %q, %v; want 4 candidates", order(&p), p.Policy, err)
	}
}

func TestTemporaryError(t *testing.T) {
	r := mustNew(t, tierSpec(StrategyOrdered))
	for _, name := range []string{"a", "b", "c"} {
		r.Observe(name, "m", RateLimited, 0, time.Minute, t0)
	}
	var p Plan
	err := r.Plan(&Request{Model: "m", Now: t0}, &p)
	var e *Error
	if !errors.As(err, &e) || !e.Temporary() || e.Constraint != "cooldown" {
		t.Fatalf("Plan() = %v, want a temporary cooldown *Error", err)
	}
	if want := `no provider for model "m" is available: cooldown (upstream rate limited)`; e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	if got := []string{p.Skipped[0].Provider, p.Skipped[1].Provider, p.Skipped[2].Provider}; !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Skipped = %v, want a b c", got)
	}
}
