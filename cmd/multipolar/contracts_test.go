package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
	"github.com/multipolar/multipolar/internal/store/sqlite"
)

// exampleEnv are distinct values for examples/multicloud.yaml's variables.
var exampleEnv = []string{"MULTIPOLAR_ADMIN_TOKEN=t", "AZURE_EAST_KEY=k1", "AZURE_WEST_KEY=k2", "AZURE_CLAUDE_KEY=k3",
	"COREWEAVE_KEY=k4", "ORACLE_KEY=k5", "APPS_CONSUMER_KEY=v1", "APPS_ASSISTANT_KEY=v2", "ENTERPRISE_KEY=v3",
	"SAFETY_KEY=v4", "OSS_KEY=v5", "INTERNAL_KEY=v6", "LEGACY_KEY=v7"}

// TestProcessSettleAndSimulate runs `multipolar settle` and `multipolar
// simulate` on a copy of the example configuration whose ledger holds a
// few November records: every format prints, the figures reconcile with
// the records, and a bad period is a usage error.
func TestProcessSettleAndSimulate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src, err := os.ReadFile("../../examples/multicloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "multicloud.yaml")
	if err := os.WriteFile(cfg, src, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(dir, "multicloud.db")})
	if err != nil {
		t.Fatal(err)
	}
	providers := []string{"oracle", "coreweave", "azure-east", "bedrock-us"}
	var recs []ledger.Record
	for i := range 8 {
		p := providers[i%4]
		recs = append(recs, ledger.Record{RequestID: fmt.Sprintf("r%02d", i), Time: time.Date(2026, 11, 2+i, 0, 0, 0, 0, time.UTC),
			Key: "apps-assistant", Team: "apps", Workload: "general", Model: "gpt-4.1", Provider: p, UpstreamModel: "gpt-4.1",
			Usage: pricing.Usage{InputTokens: 1000, OutputTokens: 100}, Cost: pricing.MustMoney("0.0028"), Status: 200, Outcome: "ok", Billable: true, Route: "{}"})
	}
	if err := st.Record(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()

	cli := func(args ...string) (int, string, string) { return runCLI(t, exampleEnv, args...) }
	code, out, errOut := cli("settle", "--config", cfg, "--period", "2026-11", "--format", "json")
	if code != 0 {
		t.Fatalf("settle = %d: %s", code, errOut)
	}
	var stmt struct {
		Totals struct {
			Usage struct {
				Records  int64  `json:"records"`
				ListCost string `json:"list_cost"`
			} `json:"usage"`
			RevenueShares string `json:"revenue_shares"`
		} `json:"totals"`
		Counterparties []struct {
			Name        string `json:"name"`
			Commitments []struct {
				Name       string `json:"name"`
				BurnPeriod string `json:"burn_period"`
			} `json:"commitments"`
		} `json:"counterparties"`
	}
	if err := json.Unmarshal([]byte(out), &stmt); err != nil {
		t.Fatalf("settle json: %v\n%s", err, out)
	}
	// 8 × 0.0028; the revenue share takes 20% of the 6 records on oracle,
	// coreweave and bedrock-us.
	if stmt.Totals.Usage.Records != 8 || stmt.Totals.Usage.ListCost != "0.0224" || stmt.Totals.RevenueShares != "0.00336" {
		t.Errorf("totals = %+v", stmt.Totals)
	}
	burn := map[string]string{}
	for _, c := range stmt.Counterparties {
		for _, m := range c.Commitments {
			burn[m.Name] = m.BurnPeriod
		}
	}
	if burn["oracle-5y"] != "0.0056" || burn["coreweave-2y"] != "0.0056" {
		t.Errorf("commitment burn = %v", burn)
	}
	for _, f := range []string{"csv", "table"} {
		if code, out, errOut := cli("settle", "--config", cfg, "--period", "2026-11", "--format", f); code != 0 || !strings.Contains(out, "oracle-5y") {
			t.Errorf("settle --format %s = %d: %s%s", f, code, out, errOut)
		}
	}
	if code, _, _ := cli("settle", "--config", cfg, "--period", "November"); code != 2 {
		t.Errorf("settle with a bad period exit = %d, want 2", code)
	}

	code, out, errOut = cli("simulate", "--config", cfg, "--period", "2026-11", "--format", "json")
	if code != 0 {
		t.Fatalf("simulate = %d: %s", code, errOut)
	}
	var sim struct{ Replayed, Moved, Refused int64 }
	if err := json.Unmarshal([]byte(out), &sim); err != nil {
		t.Fatal(err)
	}
	// Replayed through the same routes, every request goes to the
	// first-refusal holder: the six that were served elsewhere move.
	if sim.Replayed != 8 || sim.Moved != 6 || sim.Refused != 0 {
		t.Errorf("simulate = %+v, want 8 replayed, 6 moved", sim)
	}
	if code, out, _ := cli("simulate", "--config", cfg, "--period", "2026-11"); code != 0 || !strings.Contains(out, "8 served requests replayed") {
		t.Errorf("simulate table = %d: %s", code, out)
	}
}
