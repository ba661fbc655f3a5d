// Package contract turns the agreements section of a configuration into
// what acts on traffic and money: the routing restrictions and commitment
// pacing the router applies per request, the list of agreements each usage
// record names, and the settlement of a period from the ledger.
//
// A Set is compiled once per configuration snapshot; everything a request
// needs from it is precomputed, so the request path does not allocate.
package contract

import (
	"fmt"
	"slices"
	"time"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/pricing"
	"github.com/multipolar/multipolar/internal/route"
)

// Kind is an agreement type.
type Kind uint8

// Agreement kinds, as in config.AgreementTypes.
const (
	FirstRefusal Kind = iota + 1
	Exclusivity
	Commitment
	RevenueShare
	Licence
	PriceTerms
)

var kindNames = map[string]Kind{
	config.AgreementFirstRefusal: FirstRefusal, config.AgreementExclusivity: Exclusivity,
	config.AgreementCommitment: Commitment, config.AgreementRevenueShare: RevenueShare,
	config.AgreementLicence: Licence, config.AgreementPriceTerms: PriceTerms,
}

// String returns the config's name for k.
func (k Kind) String() string {
	for name, v := range kindNames {
		if v == k {
			return name
		}
	}
	return "unknown"
}

// Agreement is one compiled agreement.
type Agreement struct {
	Name    string
	Kind    Kind
	Parties []string
	// From and Until bound the window [From, Until); zero is open.
	From, Until time.Time
	// FromText and UntilText are the bounds as written.
	FromText, UntilText string

	scope scope
	// providers: exclusivity's allowed, commitment's and price terms'
	// counted providers; holder is first refusal's provider.
	providers []string
	holder    config.Party

	// Commitment.
	Amount         pricing.Money
	Minimum        pricing.Money // per period; zero for linear pacing
	MinimumPeriod  string        // monthly, quarterly, yearly
	AlertShortfall pricing.Money // share of Amount
	// Discount is the commitment's earned discount or the flat price
	// terms discount (a fraction).
	Discount pricing.Money
	tiers    []tier

	// Revenue share.
	Payer config.Party
	Payee string
	Rate  pricing.Money
	Cap   pricing.Money
	// HasCap reports whether Cap was written.
	HasCap bool
	base   scope
}

// tier is one price-terms bracket.
type tier struct {
	above    pricing.Money
	discount pricing.Money
}

// scope is a compiled config.Scope. Models match the client model or the
// upstream model.
type scope struct {
	providers, models, workloads, keys, teams []string
}

func compileScope(s config.Scope) scope {
	return scope{providers: s.Providers, models: s.Models, workloads: s.Workloads, keys: s.Keys, teams: s.Teams}
}

// match reports whether a request (or record) with these fields is in s.
func (s *scope) match(provider, model, upstream, workload, key, team string) bool {
	return (len(s.providers) == 0 || slices.Contains(s.providers, provider)) &&
		(len(s.models) == 0 || route.MatchAny(s.models, model) || route.MatchAny(s.models, upstream)) &&
		(len(s.workloads) == 0 || route.MatchAny(s.workloads, workload)) &&
		(len(s.keys) == 0 || slices.Contains(s.keys, key)) &&
		(len(s.teams) == 0 || slices.Contains(s.teams, team))
}

// inWindow reports whether t is in [a.From, a.Until).
func (a *Agreement) inWindow(t time.Time) bool {
	return (a.From.IsZero() || !t.Before(a.From)) && (a.Until.IsZero() || t.Before(a.Until))
}

// Set is the agreements of one configuration, compiled.
type Set struct {
	Agreements []*Agreement
	byName     map[string]*Agreement
	// providers are the config's provider names in order (route indexes).
	providers []string
	// counterparty maps a provider to the company that bills for it.
	counterparty map[string]string
	// touchers are the agreements, in config order, for Touch.
	touchers []*Agreement
	names    internTable
	pacer    *Pacer
}

// Compile builds the Set of a validated configuration. prev, the Set it
// replaces on reload (or nil), hands over the live commitment burn so a
// reload does not forget spend between two ledger refreshes.
func Compile(cfg *config.Config, prev *Set) (*Set, error) {
	s := &Set{byName: map[string]*Agreement{}, counterparty: map[string]string{}}
	for _, p := range cfg.Providers {
		s.providers = append(s.providers, p.Name)
		s.counterparty[p.Name] = p.Name
		if p.Counterparty != "" {
			s.counterparty[p.Name] = p.Counterparty
		}
	}
	for i := range cfg.Agreements {
		ca := &cfg.Agreements[i]
		a, err := compile(ca)
		if err != nil {
			return nil, fmt.Errorf("agreement %s: %w", ca.Name, err)
		}
		s.Agreements = append(s.Agreements, a)
		s.byName[a.Name] = a
		s.touchers = append(s.touchers, a)
	}
	s.names.init()
	var prevPacer *Pacer
	if prev != nil {
		prevPacer = prev.pacer
	}
	s.pacer = newPacer(s, prevPacer)
	return s, nil
}

func compile(ca *config.Agreement) (*Agreement, error) {
	a := &Agreement{
		Name: ca.Name, Kind: kindNames[ca.Type], Parties: ca.Parties,
		From: ca.From.Time, Until: ca.UntilTime(), scope: compileScope(ca.Scope),
		providers: ca.Providers, holder: ca.Holder, Payer: ca.Payer, Payee: ca.Payee, base: compileScope(ca.Base),
	}
	if !ca.From.IsZero() {
		a.FromText = ca.From.String()
	}
	if !ca.Until.IsZero() {
		a.UntilText = ca.Until.String()
	}
	money := func(d string, def string) (pricing.Money, error) {
		if d == "" {
			d = def
		}
		return pricing.ParseMoney(d)
	}
	var err error
	for _, f := range []struct {
		dst      *pricing.Money
		src, def string
	}{
		{&a.Amount, string(ca.Amount), "0"},
		{&a.AlertShortfall, string(ca.AlertShortfall), "0.10"},
		{&a.Discount, string(ca.Discount), "0"},
		{&a.Rate, string(ca.Rate), "0"},
		{&a.Cap, string(ca.Cap), "0"},
	} {
		if *f.dst, err = money(f.src, f.def); err != nil {
			return nil, err
		}
	}
	a.HasCap = ca.Cap != ""
	if ca.Minimums != nil {
		a.MinimumPeriod = ca.Minimums.Period
		if a.Minimum, err = money(string(ca.Minimums.Amount), "0"); err != nil {
			return nil, err
		}
	}
	for _, t := range ca.Tiers {
		var x tier
		if x.above, err = money(string(t.Above), "0"); err != nil {
			return nil, err
		}
		if x.discount, err = money(string(t.Discount), "0"); err != nil {
			return nil, err
		}
		a.tiers = append(a.tiers, x)
	}
	return a, nil
}

// Agreement returns the agreement named name, or nil.
func (s *Set) Agreement(name string) *Agreement { return s.byName[name] }

// Counterparty returns the company that bills for provider.
func (s *Set) Counterparty(provider string) string {
	if c, ok := s.counterparty[provider]; ok {
		return c
	}
	return provider
}

// Pacer returns the live commitment state, which the router consults.
func (s *Set) Pacer() *Pacer { return s.pacer }

// Restrictions returns the exclusivity and licence agreements for the
// router.
func (s *Set) Restrictions() []route.RestrictionSpec {
	var out []route.RestrictionSpec
	for _, a := range s.Agreements {
		rs := route.RestrictionSpec{Name: a.Name, From: a.From, Until: a.Until, FromText: a.FromText, UntilText: a.UntilText,
			Scope: route.Scope{Models: a.scope.models, Workloads: a.scope.workloads, Keys: a.scope.keys, Teams: a.scope.teams}}
		switch a.Kind {
		case Exclusivity:
			rs.Kind, rs.Providers = route.Exclusive, a.providers
		case Licence:
			rs.Kind, rs.Providers = route.Licensed, a.scope.providers
			rs.HolderKey, rs.HolderTeam = a.holder.Key, a.holder.Team+a.holder.Name
		default:
			continue
		}
		out = append(out, rs)
	}
	return out
}

// teamOf is the team a party names, written bare or as {team: NAME}.
func teamOf(p config.Party) string { return p.Team + p.Name }
