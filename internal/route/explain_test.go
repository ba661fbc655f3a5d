package route

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAppendHeader(t *testing.T) {
	s := fixture()
	s.Providers[0].Capacity = Capacity{RPM: 1}
	s.Rand = seq(0)
	s.Policies = []PolicySpec{{Workload: "w", Providers: []string{"azure-east", "openai", "coreweave"}}}
	r := mustNew(t, s)
	r.Begin("azure-east", "gpt-4o", 1, t0)
	var p Plan
	if err := r.Plan(&Request{Model: "gpt-4o", Workload: "w", Now: t0}, &p); err != nil {
		t.Fatal(err)
	}
	got := string(p.AppendHeader(nil))
	want := "azure-east=refused:capacity_exhausted(first_refusal:azure-primary);azure-eu=refused:provider_not_allowed;" +
		"coreweave=refused:family_not_allowed;openai=candidate"
	if got != want {
		t.Errorf("AppendHeader() = %q, want %q", got, want)
	}
	got = string(AppendAttempt([]byte(got), "openai", "served"))
	if !strings.HasSuffix(got, ";openai=candidate;openai=served") {
		t.Errorf("AppendAttempt() = %q, want the attempt appended", got)
	}
	if got := string(AppendAttempt(nil, "openai", "served")); got != "openai=served" {
		t.Errorf("AppendAttempt(nil) = %q", got)
	}

	r.Observe("azure-east", "gpt-4o", Success, 0, 0, t0) // nothing to do with the header
	if err := r.Plan(&Request{Model: "gpt-4o", Now: t0.Add(time.Minute)}, &p); err != nil {
		t.Fatal(err)
	}
	if got, want := string(p.AppendHeader([]byte("x"))), "x;azure-east=candidate(first_refusal:azure-primary);openai=candidate;azure-eu=candidate;coreweave=candidate"; got != want {
		t.Errorf("AppendHeader() = %q, want %q", got, want)
	}
}

func TestExplain(t *testing.T) {
	s := fixture()
	s.Rand = seq(0)
	s.Providers[0].Capacity = Capacity{RPM: 1}
	s.Agreements = append(s.Agreements, FirstRefusalSpec{
		Name: "old-deal", Holder: "openai", Until: time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	s.Policies = []PolicySpec{{Workload: "eu", Regions: []string{"eu-west-1", "eu-central-1"}, MaxPricePerMTok: 5_000_000, AllowFamilyFallback: true}}
	r := mustNew(t, s)
	r.Observe("coreweave", "llama-3-70b", RateLimited, 0, time.Minute, t0)

	x := r.Explain(&Request{Model: "gpt-4o", Workload: "eu", Now: t0})
	if x.Policy != "eu" || x.Constraint != "cooldown" || !strings.Contains(x.Error, "cooldown") {
		t.Errorf("Explain() policy %q constraint %q error %q", x.Policy, x.Constraint, x.Error)
	}
	wantReasons := []string{
		"azure-east region_not_allowed azure-primary: region \"eastus\" is not among the policy's regions (eu-west-1, eu-central-1)",
		"openai outside_window old-deal: agreement old-deal covers [open, 2029-01-01T00:00:00Z), which does not contain 2030-06-01T12:00:00Z",
		"openai region_not_allowed : region \"us\" is not among the policy's regions (eu-west-1, eu-central-1)",
		"azure-eu price_too_high : blended price 6875000 exceeds the policy's cap of 5000000 micro-dollars per million tokens",
		"coreweave cooling_down : cooling down after a 429 until 2030-06-01T12:01:00Z",
	}
	var got []string
	for _, rf := range x.Refusals {
		got = append(got, rf.Provider+" "+rf.Reason+" "+rf.Agreement+": "+rf.Text)
	}
	if strings.Join(got, "\n") != strings.Join(wantReasons, "\n") {
		t.Errorf("Explain().Refusals =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantReasons, "\n"))
	}
	if n := r.Stats().Agreements[0]; n.Offers != 0 || len(n.Refusals) != 0 {
		t.Errorf("Explain counted: %+v", n)
	}

	// Without the policy: strategies and first refusal spelled out.
	r.Observe("coreweave", "llama-3-70b", Success, 0, 0, t0)
	x = r.Explain(&Request{Model: "gpt-4o", Now: t0.Add(2 * time.Minute)})
	var cands []string
	for _, c := range x.Candidates {
		cands = append(cands, c.Provider+":"+c.Strategy)
	}
	if got, want := strings.Join(cands, " "), "azure-east:first_refusal openai:weighted azure-eu:weighted coreweave:ordered"; got != want {
		t.Errorf("Explain().Candidates = %q, want %q", got, want)
	}
	if _, err := json.Marshal(x); err != nil {
		t.Errorf("json.Marshal(Explanation) = %v", err)
	}
	if x.Header == "" || x.Error != "" {
		t.Errorf("Explain() header %q error %q", x.Header, x.Error)
	}
}

func TestExplainEveryReason(t *testing.T) {
	// Every refusal has words, not just a code.
	s := fixture()
	s.Providers[0].Serves = nil
	s.Models = append(s.Models, ModelSpec{Name: "gpt-4o-x", Tiers: []TierSpec{{Members: []MemberSpec{{Provider: "openai"}, {Provider: "coreweave", Model: "llama-3-70b"}}}}})
	s.Policies = []PolicySpec{{Workload: "w", Providers: []string{"azure-east", "coreweave"}, Require: []string{"vision"}}}
	r := mustNew(t, s)
	x := r.Explain(&Request{Model: "gpt-4o-x", Workload: "w", Now: t0})
	for _, rf := range x.Refusals {
		if rf.Text == "" || rf.Text == rf.Reason {
			t.Errorf("refusal %+v has no text", rf)
		}
	}
	if len(x.Refusals) != 3 {
		t.Errorf("Explain().Refusals = %+v, want not_served, provider_not_allowed, missing_capability", x.Refusals)
	}
	if x := r.Explain(&Request{Model: "nope", Now: t0}); x.Constraint != "model" || len(x.Candidates) != 0 {
		t.Errorf("Explain(unknown model) = %+v", x)
	}
}
