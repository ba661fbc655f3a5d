package route

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Explanation is a decision spelled out, for POST /admin/route/explain.
type Explanation struct {
	Model    string `json:"model"`
	Workload string `json:"workload"`
	// Policy names the policy applied: the workload, "default", or "".
	Policy string `json:"policy"`
	// Candidates are in the order they would be tried.
	Candidates []ExplainedCandidate `json:"candidates"`
	// Refusals list every provider passed over, and agreements that match
	// the request but are outside their window.
	Refusals []ExplainedRefusal `json:"refusals"`
	// Error is the message of the decision's *Error, if any.
	Error string `json:"error,omitempty"`
	// Constraint is the *Error's Constraint, if any.
	Constraint string `json:"constraint,omitempty"`
	// Header is the route header value the decision would produce.
	Header string `json:"header"`
}

// ExplainedCandidate is a Candidate with the strategy that placed it.
type ExplainedCandidate struct {
	Provider     string `json:"provider"`
	Model        string `json:"model"`
	Tier         int    `json:"tier"`
	Strategy     string `json:"strategy"`
	FirstRefusal string `json:"first_refusal,omitempty"`
}

// ExplainedRefusal is a Refusal with its reason in words.
type ExplainedRefusal struct {
	Provider  string `json:"provider"`
	Model     string `json:"model,omitempty"`
	Tier      int    `json:"tier"`
	Reason    string `json:"reason"`
	Agreement string `json:"agreement,omitempty"`
	// Restriction names the licence or exclusivity that refused it.
	Restriction string `json:"restriction,omitempty"`
	Text        string `json:"text"`
}

// Explain makes the decision Plan would make for req, without counting it
// in the first-refusal counters, and spells it out. It allocates. A
// weighted tier draws afresh, so its order may differ from the next Plan's.
func (r *Router) Explain(req *Request) Explanation {
	var p Plan
	err := r.plan(req, &p, explained)
	x := Explanation{Model: req.Model, Workload: req.Workload, Policy: p.Policy,
		Candidates: []ExplainedCandidate{}, Refusals: []ExplainedRefusal{}, Header: string(p.AppendHeader(nil))}
	if e := (*Error)(nil); errors.As(err, &e) {
		x.Error, x.Constraint = e.Error(), e.Constraint
	}
	pol := r.policies[req.Workload]
	if pol == nil {
		pol = r.def
	}
	var rt *route
	if m := r.models[req.Model]; m != nil {
		rt = &pol.routes[m.idx]
	}
	for _, c := range p.Candidates {
		ec := ExplainedCandidate{Provider: c.Provider, Model: c.Model, Tier: c.Tier, FirstRefusal: c.FirstRefusal, Strategy: "first_refusal"}
		if c.FirstRefusal == "" && c.Tier > 0 {
			ec.Strategy = rt.tiers[c.Tier-1].strategy
		}
		x.Candidates = append(x.Candidates, ec)
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	for _, s := range p.Skipped {
		x.Refusals = append(x.Refusals, ExplainedRefusal{
			Provider: s.Provider, Model: s.Model, Tier: s.Tier, Reason: s.Reason.String(),
			Agreement: s.Agreement, Restriction: s.Restriction, Text: r.describe(s, req, pol, rt, now),
		})
	}
	return x
}

// describe puts a refusal in words.
func (r *Router) describe(s Refusal, req *Request, pol *policy, rt *route, now time.Time) string {
	prov := r.byName[s.Provider]
	var mem *member
	if rt != nil {
		for _, o := range rt.offers {
			for _, m := range o.occ {
				if m.prov == prov && m.model == s.Model {
					mem = m
				}
			}
		}
		for ti := range rt.tiers {
			for mi := range rt.tiers[ti].members {
				if m := &rt.tiers[ti].members[mi]; m.prov == prov && m.model == s.Model {
					mem = m
				}
			}
		}
	}
	switch s.Reason {
	case NotServed:
		return fmt.Sprintf("holder %s of %s does not serve model %q: it is in none of the model's tiers and its serves list does not match", s.Provider, s.Agreement, req.Model)
	case OutsideWindow:
		a := r.byAgreement[s.Agreement]
		return fmt.Sprintf("agreement %s covers [%s, %s), which does not contain %s", a.name, stamp(a.from, "open"), stamp(a.until, "open"), now.UTC().Format(time.RFC3339))
	case Unlicensed:
		x := r.byRestriction[s.Restriction]
		return fmt.Sprintf("licence %s covers %s only from %s until %s, which does not contain %s", x.name, s.Provider, orOpen(x.fromText), orOpen(x.untilText), now.UTC().Format(time.RFC3339))
	case NotExclusive:
		x := r.byRestriction[s.Restriction]
		return fmt.Sprintf("agreement %s reserves model %q for %s until %s", x.name, req.Model, strings.Join(x.allowed, ", "), x.untilText)
	case ProviderNotAllowed:
		return fmt.Sprintf("provider %s is not among the workload policy's providers (%s)", s.Provider, strings.Join(pol.providers, ", "))
	case FamilyNotAllowed:
		fam := ""
		if mem != nil {
			fam = mem.family
		}
		return fmt.Sprintf("model family %q differs from %q's family %q and the policy does not allow family fallback", fam, req.Model, r.models[req.Model].family)
	case MissingCapability:
		needs := req.Needs | pol.require
		return fmt.Sprintf("provider %s lacks %s (needs %s, offers %s)", s.Provider, (needs &^ prov.caps).String(), needs.String(), prov.caps.String())
	case RegionNotAllowed:
		return fmt.Sprintf("region %q is not among the policy's regions (%s)", prov.region, strings.Join(pol.regions, ", "))
	case PriceTooHigh:
		if mem == nil || !mem.price.known() {
			return fmt.Sprintf("price unknown and the policy caps it at %d micro-dollars per million tokens", pol.maxPrice)
		}
		return fmt.Sprintf("blended price %d exceeds the policy's cap of %d micro-dollars per million tokens", blended(mem.price, req), pol.maxPrice)
	case CapacityExhausted:
		sec := max(now.Unix(), 0)
		return fmt.Sprintf("provisioned capacity used in the last minute: %d of %d requests, %d of %d tokens (0 = unlimited), request estimated at %d tokens",
			sum(&prov.win.req, sec), prov.capacity.RPM, sum(&prov.win.tok, sec), prov.capacity.TPM, req.EstTokens)
	case CircuitOpen:
		if mem != nil {
			if open := mem.slot.openUntil.Load(); now.UnixNano() < open {
				return "circuit open until " + time.Unix(0, open).UTC().Format(time.RFC3339Nano)
			}
		}
		return "circuit half-open with its probe in flight"
	case CoolingDown:
		if mem != nil {
			return "cooling down after a 429 until " + time.Unix(0, mem.slot.coolUntil.Load()).UTC().Format(time.RFC3339Nano)
		}
	}
	return s.Reason.String()
}

func stamp(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339)
}

// AppendHeader appends the plan to dst as a route header value
// (x-multipolar-route) and returns the extended buffer. The format is
//
//	header = entry *( ";" entry )
//	entry  = provider "=" state [ "(first_refusal:" agreement ")" ]
//	state  = "refused:" reason / "candidate" / outcome
//
// Refusals come first (first-refusal holders first), then the candidates
// in order, e.g.
//
//	azure-east=refused:capacity_exhausted(first_refusal:azure-primary);coreweave=candidate
//
// The caller then appends one entry per attempt with AppendAttempt. Names
// are validated to be header-safe; it does not allocate when dst has room.
func (p *Plan) AppendHeader(dst []byte) []byte {
	for _, s := range p.Skipped {
		if s.Reason == OutsideWindow {
			continue // Explain's alone: not a decision about this call
		}
		dst = appendEntry(dst, s.Provider, "refused:")
		dst = append(dst, s.Reason.String()...)
		dst = appendAgreement(dst, s.Agreement)
		switch s.Reason {
		case Unlicensed:
			dst = appendLabel(dst, "licence:", s.Restriction)
		case NotExclusive:
			dst = appendLabel(dst, "exclusivity:", s.Restriction)
		}
	}
	for _, c := range p.Candidates {
		dst = appendEntry(dst, c.Provider, "candidate")
		dst = appendAgreement(dst, c.FirstRefusal)
	}
	return dst
}

// AppendAttempt appends one attempt's entry, provider "=" outcome (the
// engine's outcome name: "served", "rate_limited", ...), to a header value
// built by AppendHeader.
func AppendAttempt(dst []byte, provider, outcome string) []byte {
	return appendEntry(dst, provider, outcome)
}

func appendEntry(dst []byte, provider, state string) []byte {
	if len(dst) > 0 {
		dst = append(dst, ';')
	}
	dst = append(dst, provider...)
	dst = append(dst, '=')
	return append(dst, state...)
}

func appendAgreement(dst []byte, name string) []byte { return appendLabel(dst, "first_refusal:", name) }

// appendLabel appends "(kind:name)" when name is set.
func appendLabel(dst []byte, kind, name string) []byte {
	if name == "" {
		return dst
	}
	dst = append(dst, '(')
	dst = append(dst, kind...)
	dst = append(dst, name...)
	return append(dst, ')')
}

func orOpen(s string) string {
	if s == "" {
		return "(open)"
	}
	return s
}
