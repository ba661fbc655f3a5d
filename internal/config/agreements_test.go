package config

import (
	"testing"
	"time"
)

func TestAgreementsParse(t *testing.T) {
	c, err := Parse([]byte(`
providers:
  - {name: cloud-a, type: openai-compatible, base_url: "http://127.0.0.1:1/v1", counterparty: primary-cloud}
  - {name: oracle, type: openai-compatible, base_url: "http://127.0.0.1:2/v1"}
models:
  - {name: gpt-4o, routes: [cloud-a, oracle]}
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
    until: 2030-12-31
  - name: legacy-licence
    type: licence
    holder: {team: legacy}
    scope: {models: ["gpt-*"]}
    from: 2020-01-01
    until: 2032-12-31
  - name: oracle-5y
    type: commitment
    providers: [oracle]
    amount: "300000000000"
    currency: USD
    from: 2025-09-01
    until: 2030-08-31
    pacing: linear
  - name: primary-exclusive
    type: exclusivity
    providers: [cloud-a]
    scope: {models: ["gpt-*"]}
    until: 2025-10-28
  - {name: q, type: commitment, providers: [oracle], amount: "100", from: 2026-01-01, until: 2026-12-31, minimums: {period: quarterly, amount: "20"}, discount: "12.5%"}
  - {name: t, type: price_terms, providers: [cloud-a], tiers: [{discount: "5%"}, {above: "1000", discount: "100%"}]}
`), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Agreements
	if a[0].Payer.Name != "apps" || a[0].Rate != "0.20" || a[0].Cap != "0.50" || a[0].Base.Providers[0] != "cloud-a" {
		t.Errorf("revenue share = %+v", a[0])
	}
	if a[1].Holder.Team != "legacy" || a[1].Holder.String() != `team "legacy"` || a[1].Until.String() != "2032-12-31" {
		t.Errorf("licence = %+v", a[1])
	}
	if got, want := a[1].UntilTime(), time.Date(2033, 1, 1, 0, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("licence until = %v, want %v (the whole last day)", got, want)
	}
	if a[4].Minimums.Period != "quarterly" || a[4].Discount != "0.125" {
		t.Errorf("commitment = %+v", a[4])
	}
	if a[5].Tiers[0].Discount != "0.05" || a[5].Tiers[1].Discount != "1.00" {
		t.Errorf("tiers = %+v", a[5].Tiers)
	}
	if c.Providers[0].Counterparty != "primary-cloud" {
		t.Errorf("counterparty = %q", c.Providers[0].Counterparty)
	}
}

func TestCompareDecimal(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"1", "1.0", 0}, {"0.2", "0.19", 1}, {"10", "9.99", 1}, {"007", "7", 0}, {"0.05", "0.5", -1}} {
		if got := compareDecimal(tc.a, tc.b); got != tc.want {
			t.Errorf("compareDecimal(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
