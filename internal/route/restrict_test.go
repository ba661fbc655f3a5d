package route

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var day = func(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestExclusivity: before its end only the named providers serve the
// scope, first-refusal holder included; from the end on, every route does.
func TestExclusivity(t *testing.T) {
	s := fixture()
	s.Agreements = nil
	s.Restrictions = []RestrictionSpec{{Name: "openai-only", Kind: Exclusive, Providers: []string{"openai"},
		Scope: Scope{Models: []string{"gpt-4o"}}, Until: day("2030-07-01"), UntilText: "2030-06-30"}}
	r := mustNew(t, s)
	var p Plan
	for _, tc := range []struct {
		now        time.Time
		model      string
		want, skip string
	}{
		{t0, "gpt-4o", "openai/gpt-4o", "azure-east:not_exclusive azure-eu:not_exclusive coreweave:not_exclusive"},
		{day("2030-07-01").Add(-time.Nanosecond), "gpt-4o", "openai/gpt-4o", "azure-east:not_exclusive azure-eu:not_exclusive coreweave:not_exclusive"},
		{day("2030-07-01"), "gpt-4o", "azure-east/gpt-4o openai/gpt-4o azure-eu/gpt-4o coreweave/llama-3-70b", ""},
		{t0, "claude-sonnet", "anthropic/claude-sonnet", ""}, // out of scope
	} {
		s.Rand = seq(0.1) // openai first in the weighted tier
		if err := r.Plan(&Request{Model: tc.model, Now: tc.now}, &p); err != nil {
			t.Fatalf("%v: %v", tc.now, err)
		}
		if got := order(&p); got != tc.want && !(tc.now.Equal(day("2030-07-01")) && strings.HasPrefix(got, "azure-east/gpt-4o")) {
			t.Errorf("%v %s: candidates %q, want %q", tc.now, tc.model, got, tc.want)
		}
		if got := skipped(&p); got != tc.skip {
			t.Errorf("%v %s: skipped %q, want %q", tc.now, tc.model, got, tc.skip)
		}
		for _, sk := range p.Skipped {
			if sk.Reason == NotExclusive && sk.Restriction != "openai-only" {
				t.Errorf("refusal %+v does not name the agreement", sk)
			}
		}
	}
	// The exclusive provider down: a 403 naming the agreement, not a
	// failover to a provider the deal excludes.
	s = fixture()
	s.Agreements = nil
	s.Restrictions = []RestrictionSpec{{Name: "mini-deal", Kind: Exclusive, Providers: []string{"azure-east"},
		Scope: Scope{Models: []string{"gpt-4o-mini"}}, Until: day("2031-01-01"), UntilText: "2030-12-31"}}
	r = mustNew(t, s)
	err := r.Plan(&Request{Model: "gpt-4o-mini", Now: t0}, &p)
	var re *Error
	if !errors.As(err, &re) || re.Reason != NotExclusive || re.Agreement != "mini-deal" {
		t.Fatalf("Plan = %v, want NotExclusive naming mini-deal", err)
	}
	if want := `model "gpt-4o-mini" is exclusive to azure-east under agreement "mini-deal" until 2030-12-31`; !strings.Contains(re.Error(), want) {
		t.Errorf("error %q lacks %q", re.Error(), want)
	}
}

// TestLicence: the holder is admitted inside the window and refused with
// the licence's name and date outside it; others are not governed; a
// renewal in its window lifts a lapsed licence.
func TestLicence(t *testing.T) {
	s := fixture()
	s.Restrictions = []RestrictionSpec{{Name: "legacy-licence", Kind: Licensed, HolderTeam: "legacy",
		Scope: Scope{Models: []string{"gpt-*"}}, From: day("2020-01-01"), Until: day("2033-01-01"),
		FromText: "2020-01-01", UntilText: "2032-12-31"}}
	r := mustNew(t, s)
	var p Plan
	plan := func(team string, now time.Time) error {
		return r.Plan(&Request{Model: "gpt-4o-mini", Team: team, Now: now}, &p)
	}
	if err := plan("legacy", day("2032-12-31").Add(23*time.Hour)); err != nil || order(&p) != "openai/gpt-4o-mini" {
		t.Errorf("inside the window: %v, %q", err, order(&p))
	}
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{day("2033-01-01"), `licence "legacy-licence" for model "gpt-4o-mini" ended on 2032-12-31`},
		{day("2019-12-31"), `licence "legacy-licence" for model "gpt-4o-mini" starts on 2020-01-01`},
	} {
		err := plan("legacy", tc.now)
		var re *Error
		if !errors.As(err, &re) || re.Reason != Unlicensed || re.Error() != tc.want {
			t.Errorf("at %v: %v, want %q", tc.now, err, tc.want)
		}
	}
	if err := plan("search", day("2040-01-01")); err != nil {
		t.Errorf("a team without the licence is not governed by it: %v", err)
	}
	if err := r.Plan(&Request{Model: "claude-sonnet", Team: "legacy", Now: day("2040-01-01")}, &p); err != nil {
		t.Errorf("a model outside the scope is not governed: %v", err)
	}
	// Renewal: a second licence of the same holder in its window.
	s.Restrictions = append(s.Restrictions, RestrictionSpec{Name: "legacy-renewal", Kind: Licensed, HolderTeam: "legacy",
		Scope: Scope{Models: []string{"gpt-*"}}, From: day("2033-01-01"), Until: day("2036-01-01")})
	r = mustNew(t, s)
	if err := plan("legacy", day("2034-01-01")); err != nil {
		t.Errorf("renewed licence: %v", err)
	}
	// A licence that covers one provider bars only that one.
	s.Restrictions = []RestrictionSpec{{Name: "east-only", Kind: Licensed, HolderKey: "k1", Providers: []string{"azure-east"},
		Until: day("2030-01-01"), UntilText: "2029-12-31"}}
	r = mustNew(t, s)
	if err := r.Plan(&Request{Model: "gpt-4o", Key: "k1", Now: t0}, &p); err != nil {
		t.Fatal(err)
	}
	if got := skipped(&p); got != "azure-east:unlicensed" || strings.HasPrefix(order(&p), "azure-east") {
		t.Errorf("candidates %q skipped %q: want azure-east refused as unlicensed", order(&p), got)
	}
}

// fakePacer reports a fixed "behind" share per provider index.
type fakePacer struct{ behind [8]atomic.Int64 }

func (f *fakePacer) Behind(provider int, now int64) float64 {
	return float64(f.behind[provider].Load()) / 1000
}

// TestPacing: within a tier, the provider behind on its commitment draws
// the request first; on pace, the tier's strategy decides again. A
// first-refusal holder stays first whatever the pacing.
func TestPacing(t *testing.T) {
	s := fixture()
	pacer := new(fakePacer)
	s.Pacer = pacer
	s.Rand = seq(0.1) // weighted picks openai (weight 3 of 4) first
	r := mustNew(t, s)
	var p Plan
	plan := func() string {
		t.Helper()
		if err := r.Plan(&Request{Model: "gpt-4o", Now: t0}, &p); err != nil {
			t.Fatal(err)
		}
		return order(&p)
	}
	if got, want := plan(), "azure-east/gpt-4o openai/gpt-4o azure-eu/gpt-4o coreweave/llama-3-70b"; got != want {
		t.Fatalf("on pace: %q, want %q", got, want)
	}
	pacer.behind[2].Store(50) // azure-eu 5% behind
	if got, want := plan(), "azure-east/gpt-4o azure-eu/gpt-4o openai/gpt-4o coreweave/llama-3-70b"; got != want {
		t.Errorf("azure-eu behind: %q, want %q", got, want)
	}
	pacer.behind[1].Store(80) // openai further behind
	if got, want := plan(), "azure-east/gpt-4o openai/gpt-4o azure-eu/gpt-4o coreweave/llama-3-70b"; got != want {
		t.Errorf("openai further behind: %q, want %q", got, want)
	}
	pacer.behind[3].Store(900) // coreweave far behind: other tier, not pulled up
	pacer.behind[1].Store(0)
	if got, want := plan(), "azure-east/gpt-4o azure-eu/gpt-4o openai/gpt-4o coreweave/llama-3-70b"; got != want {
		t.Errorf("coreweave behind: %q, want %q (tiers are not crossed; the holder stays first)", got, want)
	}
	pacer.behind[2].Store(0)
	if got, want := plan(), "azure-east/gpt-4o openai/gpt-4o azure-eu/gpt-4o coreweave/llama-3-70b"; got != want {
		t.Errorf("back on pace: %q, want %q", got, want)
	}
}

func TestRestrictionAllocs(t *testing.T) {
	s := benchSpec()
	s.Pacer = new(fakePacer)
	s.Restrictions = []RestrictionSpec{
		{Name: "lic", Kind: Licensed, HolderTeam: "apps", Scope: Scope{Models: []string{"gpt-*"}}, From: day("2020-01-01")},
		{Name: "excl", Kind: Exclusive, Providers: []string{"azure-east", "openai"}, Scope: Scope{Models: []string{"gpt-*"}}, Until: day("2040-01-01")},
	}
	r := mustNew(t, s)
	req := benchReq
	req.Team = "apps"
	var p Plan
	if err := r.Plan(&req, &p); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = r.Plan(&req, &p) }); n != 0 {
		t.Errorf("Plan with restrictions and pacing: %v allocs, want 0", n)
	}
}

// BenchmarkPlanAgreements is BenchmarkPlan's decision with a licence, an
// exclusivity and commitment pacing in play.
func BenchmarkPlanAgreements(b *testing.B) {
	s := benchSpec()
	pacer := new(fakePacer)
	pacer.behind[2].Store(30)
	s.Pacer = pacer
	s.Restrictions = []RestrictionSpec{
		{Name: "lic", Kind: Licensed, HolderTeam: "apps", Scope: Scope{Models: []string{"gpt-*"}}, From: day("2020-01-01")},
		{Name: "excl", Kind: Exclusive, Providers: []string{"azure-east", "openai", "azure-eu"}, Scope: Scope{Models: []string{"gpt-*"}}, Until: day("2040-01-01")},
	}
	r := mustNew(b, s)
	req := benchReq
	req.Team = "apps"
	var p Plan
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Plan(&req, &p)
	}
}
