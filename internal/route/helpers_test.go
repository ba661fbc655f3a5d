package route

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// t0 is the tests' clock origin, inside the fixture agreement's window.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// fixture returns a fresh Spec: gpt-4o routes azure-east, then openai and
// azure-eu (weighted 3:1), then coreweave's llama; azure-east holds first
// refusal on gpt-4o* for 2030.
func fixture() Spec {
	return Spec{
		Providers: []ProviderSpec{
			{Name: "azure-east", Region: "eastus", Capabilities: []string{"tools", "vision", "json"},
				Prices: map[string]Price{"gpt-4o": {2_500_000, 10_000_000}}},
			{Name: "openai", Region: "us", Capabilities: []string{"tools", "vision", "json"},
				Prices: map[string]Price{"gpt-4o": {2_500_000, 10_000_000}, "gpt-4o-mini": {150_000, 600_000}}},
			{Name: "azure-eu", Region: "eu-west-1", Capabilities: []string{"tools", "vision", "json"},
				Prices: map[string]Price{"gpt-4o": {2_750_000, 11_000_000}}},
			{Name: "coreweave", Region: "eu-central-1", Capabilities: []string{"tools", "json"},
				Families: map[string]string{"llama-3-70b": "llama"},
				Prices:   map[string]Price{"llama-3-70b": {600_000, 600_000}}},
			{Name: "anthropic", Region: "us", Capabilities: []string{"tools", "vision", "json"},
				Prices: map[string]Price{"claude-sonnet": {3_000_000, 15_000_000}}},
		},
		Models: []ModelSpec{
			{Name: "gpt-4o", Family: "openai", Tiers: []TierSpec{
				{Members: []MemberSpec{{Provider: "azure-east"}}},
				{Strategy: StrategyWeighted, Members: []MemberSpec{{Provider: "openai", Weight: 3}, {Provider: "azure-eu", Weight: 1}}},
				{Members: []MemberSpec{{Provider: "coreweave", Model: "llama-3-70b"}}},
			}},
			{Name: "gpt-4o-mini", Family: "openai", Tiers: []TierSpec{{Members: []MemberSpec{{Provider: "openai"}}}}},
			{Name: "claude-sonnet", Family: "anthropic", Tiers: []TierSpec{{Members: []MemberSpec{{Provider: "anthropic"}}}}},
		},
		Agreements: []FirstRefusalSpec{{
			Name: "azure-primary", Holder: "azure-east", Scope: Scope{Models: []string{"gpt-4o*"}},
			From: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		}},
		Rand: rand.New(rand.NewPCG(1, 2)).Float64,
	}
}

func mustNew(t testing.TB, s Spec) *Router {
	t.Helper()
	r, err := New(s)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// order renders a plan's candidates as "provider/model" joined by spaces.
func order(p *Plan) string {
	var b strings.Builder
	for i, c := range p.Candidates {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.Provider + "/" + c.Model)
	}
	return b.String()
}

// skipped renders a plan's refusals as "provider:reason" joined by spaces.
func skipped(p *Plan) string {
	var b strings.Builder
	for i, s := range p.Skipped {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.Provider + ":" + s.Reason.String())
	}
	return b.String()
}

// seq returns a rand source that yields vals in turn, cycling.
func seq(vals ...float64) func() float64 {
	i := 0
	return func() float64 {
		v := vals[i%len(vals)]
		i++
		return v
	}
}
