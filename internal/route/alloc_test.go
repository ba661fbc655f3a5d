package route

import (
	"testing"
	"time"
)

// benchSpec is a model with three tiers (ordered, weighted, least-latency),
// a first-refusal agreement on it and a workload policy with every kind of
// constraint.
func benchSpec() Spec {
	s := fixture()
	s.Providers = append(s.Providers, ProviderSpec{Name: "together", Region: "eu-central-1", Capabilities: []string{"tools", "json"},
		Families: map[string]string{"llama-3-70b": "llama"}, Prices: map[string]Price{"llama-3-70b": {800_000, 800_000}}})
	s.Models[0].Tiers[2] = TierSpec{Strategy: StrategyLeastLatency, Members: []MemberSpec{
		{Provider: "coreweave", Model: "llama-3-70b"}, {Provider: "together", Model: "llama-3-70b"},
	}}
	s.Providers[0].Capacity = Capacity{RPM: 1_000_000, TPM: 1_000_000_000}
	s.Policies = []PolicySpec{{
		Workload: "chat", Models: []string{"gpt-4o*"}, Providers: []string{"azure-east", "openai", "azure-eu", "coreweave", "together"},
		Require: []string{"tools"}, Regions: []string{"eastus", "us", "eu-west-1", "eu-central-1"},
		MaxPricePerMTok: 10_000_000, AllowFamilyFallback: true,
	}}
	return s
}

var benchReq = Request{Model: "gpt-4o", Workload: "chat", Needs: CapTools, EstTokens: 1200, EstOutputTokens: 200, Now: t0}

func TestPlanAllocs(t *testing.T) {
	r := mustNew(t, benchSpec())
	r.Observe("coreweave", "llama-3-70b", Success, 90*time.Millisecond, 0, t0)
	r.Observe("together", "llama-3-70b", Success, 60*time.Millisecond, 0, t0)
	var p Plan
	req := benchReq
	if err := r.Plan(&req, &p); err != nil {
		t.Fatal(err)
	}
	if got, want := order(&p), "azure-east/gpt-4o openai/gpt-4o azure-eu/gpt-4o together/llama-3-70b coreweave/llama-3-70b"; got != want && got != "azure-east/gpt-4o azure-eu/gpt-4o openai/gpt-4o together/llama-3-70b coreweave/llama-3-70b" {
		t.Fatalf("Plan() = %q, want %q (either weighted order)", got, want)
	}
	hdr := make([]byte, 0, 512)
	tests := []struct {
		name string
		f    func()
	}{
		{"Plan", func() { _ = r.Plan(&req, &p) }},
		{"Plan+AppendHeader", func() { _ = r.Plan(&req, &p); hdr = p.AppendHeader(hdr[:0]) }},
		{"Begin+Observe+End", func() {
			r.Begin("openai", "gpt-4o", 1200, t0)
			r.Observe("openai", "gpt-4o", Success, 80*time.Millisecond, 0, t0)
			r.End("openai", "gpt-4o")
		}},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", tc.name, n)
		}
	}
}

func BenchmarkPlan(b *testing.B) {
	r := mustNew(b, benchSpec())
	var p Plan
	req := benchReq
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Plan(&req, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlanParallel(b *testing.B) {
	s := benchSpec()
	s.Rand = nil // the default source is safe for concurrent use
	r := mustNew(b, s)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var p Plan
		req := benchReq
		for pb.Next() {
			if err := r.Plan(&req, &p); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkBeginObserveEnd(b *testing.B) {
	r := mustNew(b, benchSpec())
	b.ReportAllocs()
	for b.Loop() {
		r.Begin("azure-east", "gpt-4o", 1200, t0)
		r.Observe("azure-east", "gpt-4o", Success, 80*time.Millisecond, 0, t0)
		r.End("azure-east", "gpt-4o")
	}
}
