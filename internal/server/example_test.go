package server_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/contract"
	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
	"github.com/multipolar/multipolar/internal/route"
	"github.com/multipolar/multipolar/internal/server"
)

// exampleEnv gives examples/multicloud.yaml's variables distinct values.
func exampleEnv(name string) (string, bool) { return "example-" + strings.ToLower(name), true }

// TestExampleMulticloud loads examples/multicloud.yaml and drives requests
// from each workload through its routing on several dates — before and
// after the exclusivity ends and the licence runs out — then settles a
// month of that traffic.
func TestExampleMulticloud(t *testing.T) {
	cfg, err := config.Load("../../examples/multicloud.yaml", exampleEnv)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := server.NewReplayer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	day := func(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t.Add(12 * time.Hour) }
	type call struct {
		date, key, team, workload, model string
		// want is the first candidate; wantIn lists providers that must
		// (or, prefixed with '-', must not) be among the candidates.
		want   string
		wantIn []string
		// refused is the route reason when the call is refused.
		refused route.Reason
	}
	calls := []call{
		// Exclusive to the primary cloud until 2025-10-28: only its two
		// regions, the first-refusal holder first.
		{date: "2025-06-01", key: "apps-consumer", team: "apps", workload: "consumer", model: "gpt-4.1",
			want: "azure-east", wantIn: []string{"azure-west", "-oracle", "-coreweave", "-bedrock-us"}},
		// After it, the same request may fail over to the other clouds;
		// first refusal still offers it to the primary first.
		{date: "2025-11-01", key: "apps-consumer", team: "apps", workload: "consumer", model: "gpt-4.1",
			want: "azure-east", wantIn: []string{"azure-west", "oracle", "coreweave", "bedrock-us"}},
		// Enterprise work goes to Anthropic models on the primary cloud first.
		{date: "2026-11-10", key: "enterprise-agents", team: "enterprise", workload: "enterprise", model: "claude-sonnet-4-5",
			want: "azure-claude", wantIn: []string{"vertex-claude", "bedrock-us"}},
		// Safety-critical work never leaves the primary and Google Cloud.
		{date: "2026-11-10", key: "safety-review", team: "enterprise", workload: "safety-critical", model: "claude-sonnet-4-5",
			want: "azure-claude", wantIn: []string{"vertex-claude", "-bedrock-us"}},
		// Open-source work runs on the open model; internal only on vLLM.
		{date: "2026-11-10", key: "oss-research", team: "oss-lab", workload: "open-source", model: "llama-3.1-70b",
			want: "vllm", wantIn: []string{"coreweave", "oracle"}},
		{date: "2026-11-10", key: "infra-tools", team: "infra", workload: "internal", model: "llama-3.1-70b",
			want: "vllm", wantIn: []string{"-coreweave", "-oracle"}},
		// The legacy team's licence covers the primary's OpenAI models to
		// the end of 2032; from 2033 the primary is refused to it and the
		// request goes to the cheapest of the next tier (both commitments
		// have ended by then, so none paces it).
		{date: "2032-12-31", key: "legacy-batch", team: "legacy", workload: "general", model: "gpt-4.1",
			want: "azure-east"},
		{date: "2033-01-01", key: "legacy-batch", team: "legacy", workload: "general", model: "gpt-4.1",
			want: "coreweave", wantIn: []string{"oracle", "-azure-east", "-azure-west"}},
		// Workload policies still bind: internal may not use gpt models.
		{date: "2026-11-10", key: "infra-tools", team: "infra", workload: "internal", model: "gpt-4.1", refused: route.ModelNotAllowed},
	}
	var sim ledger.Record
	for _, c := range calls {
		r := ledger.Record{RequestID: c.date + c.key, Time: day(c.date), Key: c.key, Team: c.team, Workload: c.workload,
			Model: c.model, Usage: pricing.Usage{InputTokens: 1000, OutputTokens: 200}, Billable: true}
		err := rp.Replay(&r, &sim)
		var re *route.Error
		if c.refused != 0 {
			if !errors.As(err, &re) || re.Reason != c.refused {
				t.Errorf("%s %s %s: %v, want refused %v", c.date, c.key, c.model, err, c.refused)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s %s: %v", c.date, c.key, c.model, err)
			continue
		}
		var cands []string
		for _, cd := range rp.Plan().Candidates {
			cands = append(cands, cd.Provider)
		}
		if sim.Provider != c.want {
			t.Errorf("%s %s %s: served by %s (candidates %v), want %s", c.date, c.key, c.model, sim.Provider, cands, c.want)
		}
		for _, w := range c.wantIn {
			if absent := strings.HasPrefix(w, "-"); slices.Contains(cands, strings.TrimPrefix(w, "-")) == absent {
				t.Errorf("%s %s %s: candidates %v, want %s", c.date, c.key, c.model, cands, w)
			}
		}
		if sim.Cost.Sign() <= 0 {
			t.Errorf("%s %s %s: unpriced on %s/%s", c.date, c.key, c.model, sim.Provider, sim.UpstreamModel)
		}
	}

	// A month of apps traffic that spills past the primary: the records
	// name the revenue share and the commitments, and the statement
	// accrues 20% of the base to the primary cloud.
	period, _ := contract.ParsePeriod("2026-11")
	book := contract.NewBook(rp.Contracts(), period, period.To)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, prov := range []string{"oracle", "coreweave", "azure-east", "bedrock-us"} {
		r := ledger.Record{RequestID: "nov-" + prov, Time: start.Add(time.Duration(i) * time.Hour), Key: "apps-assistant", Team: "apps",
			Workload: "general", Model: "gpt-4.1", Provider: prov, UpstreamModel: "gpt-4.1", Billable: true,
			Usage: pricing.Usage{InputTokens: 1_000_000, OutputTokens: 100_000}, Cost: pricing.MustMoney("2.8")}
		r.Agreements = rp.Contracts().Touch(&r)
		if prov == "oracle" && !slices.Equal(r.Agreements, []string{"primary-first-refusal", "rev-share-primary", "oracle-5y"}) {
			t.Errorf("oracle record agreements = %q", r.Agreements)
		}
		book.Add(&r)
	}
	st, err := book.Statement()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Counterparties {
		for _, rs := range c.RevenueShares {
			if rs.Name == "rev-share-primary" && (c.Name != "primary-cloud" || rs.AccruedPeriod.String() != "1.68") {
				t.Errorf("revenue share under %s accrued %s, want 20%% of 3×2.8 = 1.68 to primary-cloud", c.Name, rs.AccruedPeriod)
			}
		}
	}
}

// BenchmarkReplay is simulation's own work per record: routing, pricing
// and naming the agreements of a served request under the example
// configuration (the ledger scan aside; see BenchmarkSettleSQLite).
func BenchmarkReplay(b *testing.B) {
	cfg, err := config.Load("../../examples/multicloud.yaml", exampleEnv)
	if err != nil {
		b.Fatal(err)
	}
	rp, err := server.NewReplayer(cfg)
	if err != nil {
		b.Fatal(err)
	}
	keys := []struct{ key, team, workload, model string }{
		{"apps-consumer", "apps", "consumer", "gpt-4.1"}, {"enterprise-agents", "enterprise", "enterprise", "claude-sonnet-4-5"},
		{"oss-research", "oss-lab", "open-source", "llama-3.1-70b"}, {"legacy-batch", "legacy", "general", "gpt-4.1-mini"},
	}
	recs := make([]ledger.Record, 4096)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range recs {
		k := keys[i%len(keys)]
		recs[i] = ledger.Record{RequestID: "r", Time: t0.Add(time.Duration(i) * time.Second), Key: k.key, Team: k.team,
			Workload: k.workload, Model: k.model, Usage: pricing.Usage{InputTokens: 1200, OutputTokens: 300}, Billable: true}
	}
	var sim ledger.Record
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := rp.Replay(&recs[i%len(recs)], &sim); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
