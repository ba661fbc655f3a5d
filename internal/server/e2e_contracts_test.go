package server_test

// End-to-end contracts: exclusivity, licence and commitment pacing acting
// on real requests on an injected clock, the agreements each record names,
// the settlement endpoint reconciled with the usage report, and a replay
// of the recorded month through the same and a changed configuration.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/contract"
	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/server"
	"github.com/multipolar/multipolar/internal/store/sqlite"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

const keyLegacy = "sk-virtual-legacy"

func init() { testEnv["KEY_LEGACY"] = keyLegacy }

// contractsYAML: gpt-4o routes an ordered tier [gpu, oracle], then the
// primary cloud. Until 2026-11-10 gpt-4o is exclusive to primary; oracle
// holds a November commitment of 100 micro-dollars; apps pays primary 20%
// of its spend there; legacy's licence ends 2026-11-20. A request (5
// prompt and 5 completion tokens from the fake) costs 5×1 + 5×2 = 15
// micro-dollars everywhere.
const contractsYAML = `
providers:
  - {name: gpu, type: openai-compatible, base_url: %[1]s/v1}
  - {name: oracle, type: openai-compatible, base_url: %[2]s/v1}
  - {name: primary, type: openai-compatible, base_url: %[3]s/v1, counterparty: primary-cloud}
models:
  - name: gpt-4o
    routes:
      - {members: [gpu, oracle]}
      - primary
prices:
  - {provider: gpu, model: gpt-4o, input: "1", output: "2", from: 2026-01-01}
  - {provider: oracle, model: gpt-4o, input: "1", output: "2", from: 2026-01-01}
  - {provider: primary, model: gpt-4o, input: "1", output: "2", from: 2026-01-01}
teams: [{name: apps}, {name: legacy}]
keys:
  - {name: apps-key, team: apps, key: "${KEY_ALL}"}
  - {name: legacy-key, team: legacy, key: "${KEY_LEGACY}"}
admin: {token: "${ADMIN_TOKEN}"}
agreements:
  - {name: primary-exclusive, type: exclusivity, providers: [primary], scope: {models: ["gpt-*"]}, until: 2026-11-09}
  - {name: oracle-nov, type: commitment, providers: [oracle], amount: "0.0001", from: 2026-11-01, until: 2026-11-30}
  - {name: share, type: revenue_share, payer: apps, payee: primary-cloud, rate: "20%%", base: {providers: [primary]}, from: 2026-01-01, until: 2030-12-31}
  - {name: legacy-licence, type: licence, holder: {team: legacy}, scope: {models: ["gpt-*"]}, from: 2020-01-01, until: 2026-11-20}
%[4]s`

func TestContractsEndToEnd(t *testing.T) {
	gpu := newUpstream(t, fakeupstream.Options{})
	oracle := newUpstream(t, fakeupstream.Options{})
	primary := newUpstream(t, fakeupstream.Options{})
	cfg := parseConfig(t, fmt.Sprintf(contractsYAML, gpu.URL, oracle.URL, primary.URL, ""))
	clk := newTestClock(time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC))
	g := serveGateway(t, server.Options{Config: cfg, Now: clk.Now})
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: cfg.Ledger.Path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	// call sends one chat and waits until its record is in the ledger (the
	// commitment's burn is counted before the record is written).
	call := func(key string) (int, string, []string, string) {
		t.Helper()
		resp, body := g.chat(t, key, chatJSON("gpt-4o", ""))
		id := resp.Header.Get("X-Request-Id")
		var recs []string
		eventually(t, "the record of "+id, func() bool {
			rs, err := st.Records(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if r.Billable || r.Outcome == "refused" {
					recs = r.Agreements
					return true
				}
			}
			return false
		})
		prov, _ := served(resp)
		return resp.StatusCode, prov, recs, string(body)
	}

	// Exclusive to primary until the end of 2026-11-09.
	code, prov, ags, body := call(keyAll)
	if code != 200 || prov != "primary" {
		t.Fatalf("during the exclusivity: %d %q %s, want primary", code, prov, body)
	}
	if want := []string{"primary-exclusive", "share"}; !slices.Equal(ags, want) {
		t.Errorf("record agreements = %q, want %q", ags, want)
	}
	clk.Set(time.Date(2026, 11, 9, 23, 59, 0, 0, time.UTC))
	if _, prov, _, _ = call(keyAll); prov != "primary" {
		t.Errorf("on the exclusivity's last day: %q, want primary", prov)
	}

	// From 2026-11-10 the route is open. On the 16th oracle's commitment
	// expects 50 of its 100 micro-dollars: at 15 a request it draws four
	// requests ahead of gpu, then it is on pace and gpu (listed first)
	// serves again.
	clk.Set(time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC))
	var got []string
	for range 6 {
		code, prov, ags, body := call(keyAll)
		if code != 200 {
			t.Fatalf("open route: %d %s", code, body)
		}
		got = append(got, prov)
		if prov == "oracle" && !slices.Contains(ags, "oracle-nov") {
			t.Errorf("oracle record agreements = %q, want oracle-nov", ags)
		}
	}
	if want := "oracle,oracle,oracle,oracle,gpu,gpu"; strings.Join(got, ",") != want {
		t.Errorf("served by %s, want %s (pacing until on schedule)", strings.Join(got, ","), want)
	}

	// legacy's licence: inside on the 20th (oracle, 60 spent of the 66.5
	// expected by 23:00, is behind again and serves it), refused from the
	// 21st.
	clk.Set(time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC))
	if code, _, ags, body := call(keyLegacy); code != 200 || !slices.Contains(ags, "legacy-licence") {
		t.Errorf("inside the licence: %d %q %s", code, ags, body)
	}
	clk.Set(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	code, _, _, body = call(keyLegacy)
	var e struct {
		Error struct{ Message, Code string }
	}
	_ = json.Unmarshal([]byte(body), &e)
	if code != http.StatusForbidden || e.Error.Code != "licence_outside_window" ||
		e.Error.Message != `licence "legacy-licence" for model "gpt-4o" ended on 2026-11-20` {
		t.Errorf("after the licence: %d %s", code, body)
	}

	// The statement reconciles with the usage report, figure by figure.
	resp, sbody := g.do(t, http.MethodGet, "/admin/settlement?period=2026-11", adminToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin/settlement = %d %s", resp.StatusCode, sbody)
	}
	var stmt contract.Statement
	if err := json.Unmarshal(sbody, &stmt); err != nil {
		t.Fatalf("statement: %v\n%s", err, sbody)
	}
	_, total, err := st.Usage(context.Background(), ledgerMonth())
	if err != nil {
		t.Fatal(err)
	}
	if !stmt.Totals.Billed.ListCost.Equal(total.BillableCost) || stmt.Totals.Billed.Requests != total.Requests || total.Requests != 9 {
		t.Errorf("statement billed %s over %d, usage report %s over %d (want 9 requests)",
			stmt.Totals.Billed.ListCost, stmt.Totals.Billed.Requests, total.BillableCost, total.Requests)
	}
	figures := map[string]string{}
	for _, c := range stmt.Counterparties {
		for _, m := range c.Commitments {
			figures[m.Name] = m.BurnPeriod.String()
		}
		for _, r := range c.RevenueShares {
			figures[r.Name] = c.Name + ":" + r.AccruedPeriod.String()
		}
	}
	if figures["oracle-nov"] != "0.000075" || figures["share"] != "primary-cloud:0.000006" {
		t.Errorf("agreement figures = %v, want oracle-nov burn 0.000075 and share 20%% of 2×0.000015 to primary-cloud", figures)
	}
	for _, f := range []string{"csv", "table"} {
		if resp, b := g.do(t, http.MethodGet, "/admin/settlement?period=2026-11&format="+f, adminToken, nil); resp.StatusCode != 200 || !strings.Contains(string(b), "oracle-nov") {
			t.Errorf("format %s: %d %s", f, resp.StatusCode, b)
		}
	}
	if resp, b := g.do(t, http.MethodGet, "/admin/settlement?period=november", adminToken, nil); resp.StatusCode != 400 {
		t.Errorf("bad period: %d %s, want 400", resp.StatusCode, b)
	}

	// Replaying November through the same configuration reproduces it.
	nov, _ := contract.ParsePeriod("2026-11")
	sim, err := server.Simulate(context.Background(), st, cfg, cfg, nov)
	if err != nil {
		t.Fatal(err)
	}
	if sim.Replayed != 9 || sim.Moved != 0 || sim.Refused != 0 {
		t.Errorf("same config: replayed %d moved %d refused %d, want 9 0 0", sim.Replayed, sim.Moved, sim.Refused)
	}
	for _, p := range sim.Providers {
		if !p.ListCostDifference.IsZero() || p.BaselineRequests != p.SimulatedRequests {
			t.Errorf("same config moved cost: %+v", p)
		}
	}
	if !sim.Simulated.Totals.Billed.ListCost.Equal(total.BillableCost) {
		t.Errorf("replayed cost %s, recorded %s", sim.Simulated.Totals.Billed.ListCost, total.BillableCost)
	}

	// A changed configuration: gpu at half price and no oracle commitment.
	// The replay moves oracle's five requests to gpu and halves their cost;
	// the commitment's burn goes to zero.
	changed := strings.Replace(fmt.Sprintf(contractsYAML, gpu.URL, oracle.URL, primary.URL, ""),
		`{provider: gpu, model: gpt-4o, input: "1", output: "2"`, `{provider: gpu, model: gpt-4o, input: "0.5", output: "1"`, 1)
	changed = strings.Replace(changed, `  - {name: oracle-nov, type: commitment, providers: [oracle], amount: "0.0001", from: 2026-11-01, until: 2026-11-30}
`, "", 1)
	other := parseConfig(t, changed)
	sim, err = server.Simulate(context.Background(), st, cfg, other, nov)
	if err != nil {
		t.Fatal(err)
	}
	byProv := map[string]server.ProviderDiff{}
	for _, p := range sim.Providers {
		byProv[p.Provider] = p
	}
	if g, o := byProv["gpu"], byProv["oracle"]; sim.Moved != 5 || g.BaselineRequests != 2 || g.SimulatedRequests != 7 ||
		g.SimulatedListCost.String() != "0.0000525" || o.SimulatedRequests != 0 || o.NetCostDifference.String() != "-0.000075" {
		t.Errorf("changed config: moved %d, gpu %+v, oracle %+v", sim.Moved, g, o)
	}
	for _, a := range sim.Agreements {
		if a.Name == "oracle-nov" && (a.Baseline.String() != "0.000075" || !a.Simulated.IsZero()) {
			t.Errorf("commitment diff = %+v, want burn 0.000075 → 0", a)
		}
	}
	var out strings.Builder
	if err := sim.Write(&out, "table"); err != nil || !strings.Contains(out.String(), "oracle-nov") {
		t.Errorf("table: %v\n%s", err, out.String())
	}
}

// ledgerMonth is November 2026 as a usage query.
func ledgerMonth() ledger.Query {
	return ledger.Query{From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
}
