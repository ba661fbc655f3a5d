package config

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Agreement types.
const (
	AgreementFirstRefusal = "first_refusal"
	AgreementExclusivity  = "exclusivity"
	AgreementCommitment   = "commitment"
	AgreementRevenueShare = "revenue_share"
	AgreementLicence      = "licence"
	AgreementPriceTerms   = "price_terms"
)

// AgreementTypes lists the agreement types, in the order error messages
// name them.
var AgreementTypes = []string{AgreementFirstRefusal, AgreementExclusivity, AgreementCommitment,
	AgreementRevenueShare, AgreementLicence, AgreementPriceTerms}

// Agreement is one deal in the agreements section. Which fields apply
// depends on Type; a field another type uses is an error, so a misplaced
// line is never silently ignored.
type Agreement struct {
	// Name identifies the agreement in usage records, statements, metrics
	// and error messages.
	Name string `yaml:"name"`
	// Type is first_refusal, exclusivity, commitment, revenue_share,
	// licence or price_terms.
	Type string `yaml:"type"`
	// Parties are the names of the parties to the deal, shown in statements.
	// Optional.
	Parties []string `yaml:"parties"`
	// Holder is, for first_refusal, the provider offered every request in
	// scope first; for licence, the team ({team: NAME}, or a bare name) or
	// key ({key: NAME}) the licence is granted to.
	Holder Party `yaml:"holder"`
	// Scope selects the requests the agreement covers (first_refusal,
	// exclusivity, licence, price_terms).
	Scope Scope `yaml:"scope"`
	// From and Until bound the agreement's window. A date without a time
	// means midnight UTC at its start for From and the whole day for Until
	// (until 2030-12-31 covers that day). Either may be omitted, except
	// that a commitment needs both.
	From  Date `yaml:"from"`
	Until Date `yaml:"until"`

	// Providers are, for exclusivity, the only providers that may serve
	// the scope while it holds; for commitment, the counterparty's
	// providers whose spend burns it down; for price_terms, the providers
	// the discount applies to.
	Providers []string `yaml:"providers"`

	// Amount is a commitment's total, in Currency.
	Amount Decimal `yaml:"amount"`
	// Currency is the commitment's currency; the ledger prices in USD, the
	// only value accepted (and the default).
	Currency string `yaml:"currency"`
	// Pacing is the schedule a commitment's spend is measured against:
	// linear (the default: Amount spread evenly over the window) or
	// minimums (Minimums.Amount due in every period).
	Pacing string `yaml:"pacing"`
	// Minimums is the per-period minimum of a commitment paced by minimums.
	Minimums *Minimums `yaml:"minimums"`
	// AlertShortfall is the projected shortfall, as a share of Amount
	// ("10%"), above which the gateway logs a warning and
	// multipolar_commitment_alert turns 1. Default 10%.
	AlertShortfall Rate `yaml:"alert_shortfall"`

	// Discount is, for price_terms, a flat discount on list prices ("15%");
	// for commitment, the discount earned on the spend that burns it down.
	Discount Rate `yaml:"discount"`
	// Tiers are volume-tiered price_terms: each tier's discount applies to
	// the list spend above its Above within a calendar month (UTC), like
	// tax brackets. Exclusive with Discount.
	Tiers []PriceTier `yaml:"tiers"`

	// Payer is the team (a bare name or {team: NAME}) or key ({key: NAME})
	// a revenue share is charged to.
	Payer Party `yaml:"payer"`
	// Payee is who receives a revenue share: a counterparty (see
	// Provider.Counterparty) or any other name.
	Payee string `yaml:"payee"`
	// Rate is a revenue share's rate, "20%" or "0.2".
	Rate Rate `yaml:"rate"`
	// Base selects the records whose cost a revenue share applies to:
	// spend on providers or models, or what keys, teams or workloads were
	// billed. Fields combine with AND; an empty Base is every record.
	Base Scope `yaml:"base"`
	// Cap is a revenue share's total over its whole window, in USD.
	// Optional.
	Cap Decimal `yaml:"cap"`
}

// Scope selects requests. Models and workloads are globs; providers, keys
// and teams are names. Empty fields match everything; fields combine with
// AND.
type Scope struct {
	Providers []string `yaml:"providers"`
	Models    []string `yaml:"models"`
	Workloads []string `yaml:"workloads"`
	Keys      []string `yaml:"keys"`
	Teams     []string `yaml:"teams"`
}

// Empty reports whether s matches everything.
func (s Scope) Empty() bool {
	return len(s.Providers)+len(s.Models)+len(s.Workloads)+len(s.Keys)+len(s.Teams) == 0
}

// Party is a team or a key (or, for first_refusal's holder, a provider).
// Written as a bare name or as {team: NAME} / {key: NAME}.
type Party struct {
	// Name is a bare name: the provider for first_refusal, the team for
	// licence and revenue_share.
	Name string `yaml:"-"`
	Team string `yaml:"team"`
	Key  string `yaml:"key"`
}

// IsZero reports whether no party was written.
func (p Party) IsZero() bool { return p.Name == "" && p.Team == "" && p.Key == "" }

// String renders p as written: `team "x"`, `key "y"` or the bare name.
func (p Party) String() string {
	switch {
	case p.Key != "":
		return fmt.Sprintf("key %q", p.Key)
	case p.Team != "":
		return fmt.Sprintf("team %q", p.Team)
	}
	return p.Name
}

func (p *Party) decodeNode(dec *decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if s, ok := dec.scalar(n, path, "a name"); ok {
			*p = Party{Name: s}
		}
	case yaml.MappingNode:
		dec.decodeStruct(n, reflect.ValueOf(p).Elem(), path)
	default:
		dec.errorf(n, path, "expected a name or {team: NAME} or {key: NAME}, got %s", kindName(n))
	}
}

// Minimums is a commitment's minimum spend per period.
type Minimums struct {
	// Period is monthly, quarterly or yearly (calendar periods, UTC).
	Period string `yaml:"period"`
	// Amount is due in every period, in the commitment's currency.
	Amount Decimal `yaml:"amount"`
}

// PriceTier is one bracket of volume-tiered price terms.
type PriceTier struct {
	// Above is the month's list spend (USD) from which Discount applies.
	Above Decimal `yaml:"above"`
	// Discount is the bracket's discount ("10%").
	Discount Rate `yaml:"discount"`
}

// Rate is a fraction written as a percentage ("20%") or a decimal ("0.2"),
// kept as an exact decimal string of the fraction ("0.20").
type Rate string

var percentRE = regexp.MustCompile(`^([0-9]+)(\.[0-9]+)?%$`)

func (r *Rate) decodeNode(dec *decoder, n *yaml.Node, path string) {
	s, ok := dec.scalar(n, path, "a rate")
	if !ok {
		return
	}
	s = strings.TrimSpace(s)
	switch m := percentRE.FindStringSubmatch(s); {
	case m != nil:
		*r = Rate(percentToFraction(m[1], strings.TrimPrefix(m[2], ".")))
	case decimalRE.MatchString(s):
		*r = Rate(s)
	default:
		dec.errorf(n, path, "cannot parse %q as a rate (write \"20%%\" or \"0.2\")", s)
	}
}

// percentToFraction moves the decimal point two places left: "12", "5" →
// "0.125".
func percentToFraction(whole, frac string) string {
	for len(whole) < 3 {
		whole = "0" + whole
	}
	int := strings.TrimLeft(whole[:len(whole)-2], "0")
	if int == "" {
		int = "0"
	}
	return int + "." + whole[len(whole)-2:] + frac
}

var (
	_ nodeDecoder = (*Party)(nil)
	_ nodeDecoder = (*Rate)(nil)
)

// UntilTime is the end of an agreement's window as an instant: midnight
// after the day when Until is a bare date.
func (a *Agreement) UntilTime() time.Time { return a.Until.End() }

// End is d as the end of a window: midnight after the day when d is a bare
// date, d itself otherwise.
func (d Date) End() time.Time {
	if d.IsZero() || !d.DateOnly {
		return d.Time
	}
	return d.AddDate(0, 0, 1)
}

// String renders d as written: 2032-12-31, or RFC 3339.
func (d Date) String() string {
	if d.DateOnly {
		return d.Format(time.DateOnly)
	}
	return d.Format(time.RFC3339)
}

// agreementFields says which optional fields each type uses; the rest must
// be empty.
var agreementFields = map[string][]string{
	AgreementFirstRefusal: {"holder", "scope"},
	AgreementExclusivity:  {"providers", "scope"},
	AgreementCommitment:   {"providers", "amount", "currency", "pacing", "minimums", "alert_shortfall", "discount"},
	AgreementRevenueShare: {"payer", "payee", "rate", "base", "cap"},
	AgreementLicence:      {"holder", "scope"},
	AgreementPriceTerms:   {"providers", "scope", "discount", "tiers"},
}

// setFields lists the type-specific fields a has written.
func (a *Agreement) setFields() []string {
	var out []string
	add := func(name string, set bool) {
		if set {
			out = append(out, name)
		}
	}
	add("holder", !a.Holder.IsZero())
	add("scope", !a.Scope.Empty())
	add("providers", len(a.Providers) > 0)
	add("amount", a.Amount != "")
	add("currency", a.Currency != "")
	add("pacing", a.Pacing != "")
	add("minimums", a.Minimums != nil)
	add("alert_shortfall", a.AlertShortfall != "")
	add("discount", a.Discount != "")
	add("tiers", len(a.Tiers) > 0)
	add("payer", !a.Payer.IsZero())
	add("payee", a.Payee != "")
	add("rate", a.Rate != "")
	add("base", !a.Base.Empty())
	add("cap", a.Cap != "")
	return out
}

// agreements validates the agreements section against the providers,
// teams and keys declared.
func (v *validator) agreements(c *Config, providers map[string]int) {
	names := map[string]int{}
	teams, keys := map[string]bool{}, map[string]bool{}
	for _, t := range c.Teams {
		teams[t.Name] = true
	}
	for _, k := range c.Keys {
		keys[k.Name] = true
	}
	provider := func(p, name string) {
		if _, ok := providers[name]; !ok {
			v.errorf(p, "unknown provider %q", name)
		}
	}
	party := func(p string, pt Party, what string) {
		switch {
		case pt.IsZero():
			v.errorf(p, "required: the %s, a team name, {team: NAME} or {key: NAME}", what)
		case pt.Key != "" && (pt.Team != "" || pt.Name != ""):
			v.errorf(p, "name a team or a key, not both")
		case pt.Key != "":
			// Keys may also be created through the admin API: not checked.
		case pt.Team != "" || pt.Name != "":
			team := pt.Team + pt.Name
			if len(c.Teams) > 0 && !teams[team] {
				v.errorf(p, "unknown team %q", team)
			}
		}
	}
	for i := range c.Agreements {
		a, p := &c.Agreements[i], fmt.Sprintf("agreements[%d]", i)
		switch first, dup := names[a.Name]; {
		case a.Name == "":
			v.errorf(p+".name", "required")
		case dup:
			v.errorf(p+".name", "duplicate agreement name %q (first at agreements[%d])", a.Name, first)
		default:
			names[a.Name] = i
		}
		if !a.From.IsZero() && !a.Until.IsZero() && !a.UntilTime().After(a.From.Time) {
			v.errorf(p+".until", "must be after from")
		}
		if !oneOf(v, p+".type", a.Type, AgreementTypes...) {
			continue
		}
		for _, f := range a.setFields() {
			if !slices.Contains(agreementFields[a.Type], f) {
				v.errorf(p+"."+f, "not used by a %s agreement", a.Type)
			}
		}
		v.scope(p+".scope", a.Scope, providers)
		switch a.Type {
		case AgreementFirstRefusal:
			switch {
			case a.Holder.Name == "":
				v.errorf(p+".holder", "required: the provider offered the requests first")
			default:
				provider(p+".holder", a.Holder.Name)
			}
			if len(a.Scope.Providers) > 0 {
				v.errorf(p+".scope.providers", "not used by a first_refusal agreement (the holder is the provider)")
			}
		case AgreementExclusivity:
			if len(a.Providers) == 0 {
				v.errorf(p+".providers", "required: the providers the scope is exclusive to")
			}
			for j, name := range a.Providers {
				provider(fmt.Sprintf("%s.providers[%d]", p, j), name)
			}
			if a.Until.IsZero() {
				v.errorf(p+".until", "required: the date the exclusivity ends")
			}
			if len(a.Scope.Providers) > 0 {
				v.errorf(p+".scope.providers", "not used by an exclusivity agreement (providers names who may serve)")
			}
		case AgreementLicence:
			party(p+".holder", a.Holder, "holder")
			if a.From.IsZero() && a.Until.IsZero() {
				v.errorf(p+".until", "required: a licence needs from, until or both")
			}
		case AgreementCommitment:
			if len(a.Providers) == 0 {
				v.errorf(p+".providers", "required: the counterparty's providers")
			}
			for j, name := range a.Providers {
				provider(fmt.Sprintf("%s.providers[%d]", p, j), name)
			}
			v.positiveAmount(p+".amount", a.Amount)
			if a.Currency != "" && a.Currency != "USD" {
				v.errorf(p+".currency", "unsupported currency %q: the ledger prices in USD", a.Currency)
			}
			if a.From.IsZero() {
				v.errorf(p+".from", "required: a commitment's window starts on a date")
			}
			if a.Until.IsZero() {
				v.errorf(p+".until", "required: a commitment's window ends on a date")
			}
			pacing := a.Pacing
			if pacing == "" && a.Minimums != nil {
				pacing = "minimums"
			}
			switch pacing {
			case "", "linear":
				if a.Minimums != nil {
					v.errorf(p+".minimums", "used only with pacing: minimums")
				}
			case "minimums":
				if a.Minimums == nil {
					v.errorf(p+".minimums", "required with pacing: minimums: {period: quarterly, amount: \"...\"}")
					break
				}
				oneOf(v, p+".minimums.period", a.Minimums.Period, "monthly", "quarterly", "yearly")
				v.positiveAmount(p+".minimums.amount", a.Minimums.Amount)
			default:
				v.errorf(p+".pacing", "must be linear or minimums, got %q", a.Pacing)
			}
			v.rate(p+".alert_shortfall", a.AlertShortfall)
			v.rate(p+".discount", a.Discount)
		case AgreementRevenueShare:
			party(p+".payer", a.Payer, "payer")
			if a.Payee == "" {
				v.errorf(p+".payee", "required: who receives the share")
			}
			if a.Rate == "" {
				v.errorf(p+".rate", "required, e.g. \"20%%\"")
			}
			v.rate(p+".rate", a.Rate)
			v.scope(p+".base", a.Base, providers)
		case AgreementPriceTerms:
			if len(a.Providers) == 0 {
				v.errorf(p+".providers", "required: the providers whose list prices are discounted")
			}
			for j, name := range a.Providers {
				provider(fmt.Sprintf("%s.providers[%d]", p, j), name)
			}
			if len(a.Scope.Providers) > 0 {
				v.errorf(p+".scope.providers", "not used by price_terms (write providers at the top level)")
			}
			switch {
			case a.Discount == "" && len(a.Tiers) == 0:
				v.errorf(p+".discount", "required: a flat discount or tiers")
			case a.Discount != "" && len(a.Tiers) > 0:
				v.errorf(p+".tiers", "write a flat discount or tiers, not both")
			}
			v.rate(p+".discount", a.Discount)
			prev := ""
			for j, t := range a.Tiers {
				tp := fmt.Sprintf("%s.tiers[%d]", p, j)
				v.rate(tp+".discount", t.Discount)
				if t.Discount == "" {
					v.errorf(tp+".discount", "required")
				}
				above := string(t.Above)
				if above == "" {
					above = "0"
				}
				if j > 0 && compareDecimal(above, prev) <= 0 {
					v.errorf(tp+".above", "must be greater than the previous tier's")
				}
				prev = above
			}
		}
	}
}

// scope checks a scope's globs and provider names.
func (v *validator) scope(p string, s Scope, providers map[string]int) {
	v.globs(p+".models", s.Models)
	v.globs(p+".workloads", s.Workloads)
	for j, name := range s.Providers {
		if _, ok := providers[name]; !ok {
			v.errorf(fmt.Sprintf("%s.providers[%d]", p, j), "unknown provider %q", name)
		}
	}
}

// rate checks that a rate is at most 100%.
func (v *validator) rate(p string, r Rate) {
	if r != "" && compareDecimal(string(r), "1") > 0 {
		v.errorf(p, "must be at most 100%%")
	}
}

// positiveAmount checks that a required amount is written and above zero.
func (v *validator) positiveAmount(p string, d Decimal) {
	switch {
	case d == "":
		v.errorf(p, "required")
	case compareDecimal(string(d), "0") <= 0:
		v.errorf(p, "must be more than 0")
	}
}

// compareDecimal compares two non-negative decimal strings (as Decimal
// and Rate hold them) exactly.
func compareDecimal(a, b string) int {
	ai, af, _ := strings.Cut(a, ".")
	bi, bf, _ := strings.Cut(b, ".")
	ai, bi = strings.TrimLeft(ai, "0"), strings.TrimLeft(bi, "0")
	if len(ai) != len(bi) {
		if len(ai) < len(bi) {
			return -1
		}
		return 1
	}
	for len(af) < len(bf) {
		af += "0"
	}
	for len(bf) < len(af) {
		bf += "0"
	}
	return strings.Compare(ai+af, bi+bf)
}
