package contract

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

const testConfig = `
providers:
  - {name: cloud-a, type: openai-compatible, base_url: "http://127.0.0.1:1/v1", counterparty: primary-cloud}
  - {name: cloud-a-eu, type: openai-compatible, base_url: "http://127.0.0.1:1/v1", counterparty: primary-cloud}
  - {name: oracle, type: openai-compatible, base_url: "http://127.0.0.1:2/v1"}
  - {name: gpu, type: openai-compatible, base_url: "http://127.0.0.1:3/v1"}
models:
  - {name: gpt-4o, routes: [cloud-a, oracle, gpu]}
teams: [{name: apps}, {name: legacy}]
agreements:
  - name: rev-share-primary
    type: revenue_share
    payer: apps
    payee: primary-cloud
    rate: "20%"
    base: {providers: [cloud-a]}
    cap: "0.50"
    from: 2026-01-01
    until: 2026-11-15
  - name: oracle-commit
    type: commitment
    providers: [oracle]
    amount: "10"
    from: 2026-10-01
    until: 2026-12-31
    discount: "10%"
  - name: oracle-minimums
    type: commitment
    providers: [oracle]
    amount: "12"
    from: 2026-01-01
    until: 2026-12-31
    minimums: {period: monthly, amount: "1"}
  - {name: a-terms, type: price_terms, providers: [cloud-a, cloud-a-eu], discount: "5%"}
  - {name: gpu-tiers, type: price_terms, providers: [gpu], tiers: [{discount: "0%"}, {above: "1", discount: "50%"}]}
  - {name: legacy-licence, type: licence, holder: {team: legacy}, scope: {models: ["gpt-*"]}, until: 2032-12-31}
`

func testSet(t testing.TB) *Set {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var nov = Period{Name: "2026-11", From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}

func rec(id string, at time.Time, provider, team, cost string, billable bool) ledger.Record {
	return ledger.Record{RequestID: id, Time: at, Provider: provider, UpstreamModel: "gpt-4o", Model: "gpt-4o",
		Team: team, Key: team + "-key", Workload: "chat", Cost: pricing.MustMoney(cost), Billable: billable,
		Usage: pricing.Usage{InputTokens: 10, OutputTokens: 5}}
}

func settle(t *testing.T, s *Set, p Period, recs []ledger.Record) *Statement {
	t.Helper()
	b := NewBook(s, p, time.Time{})
	for i := range recs {
		b.Add(&recs[i])
	}
	st, err := b.Statement()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func cpOf(t *testing.T, s *Statement, name string) *CounterpartyStatement {
	for i := range s.Counterparties {
		if s.Counterparties[i].Name == name {
			return &s.Counterparties[i]
		}
	}
	t.Fatalf("no counterparty %q", name)
	return nil
}

// TestRevenueShareCapAndEnd: the share accrues 20% until the cap, the
// record that crosses it accrues only what is left, and nothing accrues
// after the end date, whichever comes first.
func TestRevenueShareCapAndEnd(t *testing.T) {
	s := testSet(t)
	at := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	// Before the period: 0.40 accrued on 2.00 of base in October.
	recs := []ledger.Record{rec("o1", time.Date(2026, 10, 3, 0, 0, 0, 0, time.UTC), "cloud-a", "apps", "2", true)}
	recs = append(recs,
		rec("n1", at(2, 0), "cloud-a", "apps", "0.3", true),   // +0.06 → 0.46
		rec("n2", at(3, 0), "cloud-a", "apps", "0.05", false), // not billable: no accrual
		rec("n3", at(4, 0), "cloud-a-eu", "apps", "1", true),  // not in base
		rec("n4", at(5, 0), "cloud-a", "search", "0.5", true), // +0.04 of 0.10: the cap
		rec("n5", at(6, 0), "cloud-a", "apps", "1", true),     // cap reached: 0
	)
	st := settle(t, s, nov, recs)
	rs := cpOf(t, st, "primary-cloud").RevenueShares[0]
	if rs.Name != "rev-share-primary" || rs.AccruedToDate.String() != "0.5" || rs.AccruedPeriod.String() != "0.1" ||
		rs.CapRemaining.String() != "0" || rs.CapReachedAt == nil || !rs.CapReachedAt.Equal(at(5, 0)) || !rs.Ended {
		t.Errorf("revenue share = %+v (cap %v reached %v)", rs, rs.CapRemaining, rs.CapReachedAt)
	}
	// Without the cap being reached, accrual stops at the end date.
	recs = []ledger.Record{
		rec("e1", at(14, 23), "cloud-a", "apps", "1", true), // 0.2
		rec("e2", at(16, 0), "cloud-a", "apps", "1", true),  // after "until: 2026-11-15", which covers that whole day
	}
	st = settle(t, s, nov, recs)
	rs = cpOf(t, st, "primary-cloud").RevenueShares[0]
	if rs.AccruedPeriod.String() != "0.2" || rs.BasePeriod.String() != "1" || rs.CapReachedAt != nil {
		t.Errorf("revenue share at its end = %+v", rs)
	}
	var apps Chargeback
	for _, c := range st.Chargeback {
		if c.Team == "apps" && c.Key == "" {
			apps = c
		}
	}
	if apps.RevenueShare.String() != "0.2" {
		t.Errorf("payer chargeback = %+v, want revenue_share 0.2", apps)
	}
}

// TestCommitmentAndDiscounts: burn, the discount on covered spend only,
// tiered and flat price terms, and minimums per period.
func TestCommitmentAndDiscounts(t *testing.T) {
	s := testSet(t)
	at := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	recs := []ledger.Record{
		rec("c0", time.Date(2026, 10, 10, 0, 0, 0, 0, time.UTC), "oracle", "apps", "8", true),
		rec("c1", at(2), "oracle", "apps", "1.5", true), // 1.5 covered
		rec("c2", at(3), "oracle", "apps", "1", true),   // 0.5 covered, then the commitment is burnt
		rec("g1", at(4), "gpu", "apps", "0.8", true),    // tier 0%
		rec("g2", at(5), "gpu", "apps", "0.4", true),    // 0.2 at 0%, 0.2 at 50%: 0.1
		rec("a1", at(6), "cloud-a", "apps", "2", true),  // 5%: 0.1
	}
	st := settle(t, s, nov, recs)
	or := cpOf(t, st, "oracle")
	var c CommitmentFigures
	for _, x := range or.Commitments {
		if x.Name == "oracle-commit" {
			c = x
		}
	}
	if c.BurnPeriod.String() != "2.5" || c.BurnToDate.String() != "10.5" || c.Remaining.String() != "0" || c.DiscountEarned.String() != "0.2" {
		t.Errorf("commitment = %+v", c)
	}
	// Schedule at the end of November: 10 × 61 days / 92 (the window runs to the end of 2026-12-31).
	if want := pricing.MustMoney("10").MulDiv(61*86400e6, 92*86400e6, 6); !c.Schedule.Equal(want) {
		t.Errorf("schedule = %s, want %s", c.Schedule, want)
	}
	if or.Discounts.String() != "0.2" || or.NetCost.String() != "2.3" {
		t.Errorf("oracle totals = %+v", or.Usage)
	}
	var mins CommitmentFigures
	for _, x := range or.Commitments {
		if x.Name == "oracle-minimums" {
			mins = x
		}
	}
	if len(mins.Minimums) != 1 || mins.Minimums[0].Spent.String() != "2.5" || !mins.Minimums[0].Closed || mins.Minimums[0].Shortfall.String() != "0" {
		t.Errorf("minimums = %+v", mins.Minimums)
	}
	if gpu := cpOf(t, st, "gpu"); gpu.Discounts.String() != "0.1" {
		t.Errorf("gpu discounts = %s, want 0.1", gpu.Discounts)
	}
	if pc := cpOf(t, st, "primary-cloud"); pc.Discounts.String() != "0.1" || pc.PriceTerms[0].Discount.String() != "0.1" {
		t.Errorf("primary discounts = %+v", pc.PriceTerms)
	}
}

// TestStatementReconciles is the property: for random ledgers, every
// total equals the sum over the ledger's records, lines add up to their
// counterparty, chargeback adds up to the billed total, caps hold, and
// the statement is the same bytes on every run.
func TestStatementReconciles(t *testing.T) {
	s := testSet(t)
	providers := []string{"cloud-a", "cloud-a-eu", "oracle", "gpu"}
	teams := []string{"apps", "legacy", "search"}
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var recs []ledger.Record
		tm := time.Date(2026, 9, 20, 0, 0, 0, 0, time.UTC)
		for i := range 300 + rng.IntN(300) {
			tm = tm.Add(time.Duration(rng.IntN(int(4 * time.Hour))))
			if !tm.Before(nov.To) {
				break
			}
			cost := fmt.Sprintf("%d.%06d", rng.IntN(3), rng.IntN(1_000_000))
			recs = append(recs, rec(fmt.Sprintf("r%05d", i), tm, providers[rng.IntN(4)], teams[rng.IntN(3)], cost, rng.IntN(10) > 0))
		}
		st := settle(t, s, nov, recs)
		var all, billed, allDisc pricing.Acc
		var n, nb int64
		for i := range recs {
			if r := &recs[i]; !r.Time.Before(nov.From) {
				all.Add(r.Cost)
				n++
				if r.Billable {
					billed.Add(r.Cost)
					nb++
				}
			}
		}
		if !st.Totals.Usage.ListCost.Equal(all.Money()) || st.Totals.Usage.Records != n || st.Totals.Billed.Requests != nb ||
			!st.Totals.Billed.ListCost.Equal(billed.Money()) {
			t.Fatalf("seed %d: totals %+v; ledger %s over %d records, billed %s over %d", seed, st.Totals, all.Money(), n, billed.Money(), nb)
		}
		var cpList, cpDisc, cbList, cbDisc, cbShare pricing.Acc
		for _, c := range st.Counterparties {
			cpList.Add(c.ListCost)
			cpDisc.Add(c.Discounts)
			var l, d pricing.Acc
			for _, ln := range c.Lines {
				l.Add(ln.ListCost)
				d.Add(ln.Discounts)
			}
			if !l.Money().Equal(c.ListCost) || !d.Money().Equal(c.Discounts) || !c.NetCost.Equal(c.ListCost.Sub(c.Discounts)) {
				t.Fatalf("seed %d: %s lines do not add up", seed, c.Name)
			}
			for _, r := range c.RevenueShares {
				if r.Cap != nil && r.AccruedToDate.Cmp(*r.Cap) > 0 {
					t.Fatalf("seed %d: %s accrued %s over its cap %s", seed, r.Name, r.AccruedToDate, r.Cap)
				}
			}
			allDisc.Add(c.Discounts)
		}
		for _, c := range st.Chargeback {
			cbList.Add(c.ListCost)
			cbDisc.Add(c.Discounts)
			cbShare.Add(c.RevenueShare)
		}
		if !cpList.Money().Equal(st.Totals.Usage.ListCost) || !cpDisc.Money().Equal(st.Totals.Usage.Discounts) ||
			!cbList.Money().Equal(st.Totals.Billed.ListCost) || !cbDisc.Money().Equal(st.Totals.Billed.Discounts) ||
			!cbShare.Money().Equal(st.Totals.RevenueShares) {
			t.Fatalf("seed %d: sections do not reconcile with the totals", seed)
		}
		var a, b bytes.Buffer
		if err := st.Write(&a, FormatJSON); err != nil {
			t.Fatal(err)
		}
		if err := settle(t, s, nov, recs).Write(&b, FormatJSON); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
		for _, f := range []string{FormatCSV, FormatTable} {
			if err := st.Write(&b, f); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestBookRejectsDisorder(t *testing.T) {
	s := testSet(t)
	b := NewBook(s, nov, time.Time{})
	r1 := rec("b", nov.From.Add(time.Hour), "gpu", "apps", "1", true)
	r2 := rec("a", nov.From.Add(time.Hour), "gpu", "apps", "1", true)
	b.Add(&r1)
	b.Add(&r2)
	if _, err := b.Statement(); err == nil {
		t.Error("records out of ledger order were settled")
	}
}

// TestTouchAllocs: naming a record's agreements does not allocate once its
// combination was seen — it runs on every served request.
func TestTouchAllocs(t *testing.T) {
	s := testSet(t)
	r := rec("x", nov.From.Add(time.Hour), "oracle", "legacy", "1", true)
	first := s.Touch(&r)
	if len(first) == 0 {
		t.Fatal("no agreement touches an oracle record of the legacy team")
	}
	if n := testing.AllocsPerRun(1000, func() { _ = s.Touch(&r) }); n != 0 {
		t.Errorf("Touch: %v allocs, want 0", n)
	}
	if got := s.Touch(&r); &got[0] != &first[0] {
		t.Error("Touch did not return the interned slice")
	}
}

// TestScopeGlobsMatchRouting: scopes use routing's globs, where '*' also
// matches the '/' in model names, so settlement and routing agree on
// which requests an agreement covers.
func TestScopeGlobsMatchRouting(t *testing.T) {
	cfg, err := config.Parse([]byte(`
providers:
  - {name: gpu, type: openai-compatible, base_url: "http://127.0.0.1:3/v1"}
models:
  - {name: llama, routes: [{provider: gpu, model: meta-llama/Llama-3.1-70B-Instruct}]}
agreements:
  - {name: llama-terms, type: price_terms, providers: [gpu], scope: {models: ["*Llama-3.1*"]}, discount: "10%"}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rec("g", nov.From, "gpu", "apps", "1", true)
	r.Model, r.UpstreamModel = "llama", "meta-llama/Llama-3.1-70B-Instruct"
	if got := s.Touch(&r); len(got) != 1 || got[0] != "llama-terms" {
		t.Errorf("Touch = %q, want llama-terms (the glob spans the '/')", got)
	}
}
