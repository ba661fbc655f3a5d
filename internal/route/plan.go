package route

import (
	"strconv"
	"strings"
	"time"
)

// Request is what a routing decision needs to know about a call.
type Request struct {
	// Model is the client-facing model.
	Model string
	// Workload names the caller's workload (from its API key), selecting
	// the policy.
	Workload string
	// Needs are the capabilities the request uses (see NeedsOf).
	Needs Caps
	// EstTokens estimates the call's total tokens (input plus expected
	// output), checked against providers' TPM.
	EstTokens int64
	// Key and Team name the caller's key and team, for agreements scoped
	// to them.
	Key, Team string
	// EstOutputTokens is the part of EstTokens expected as output; 0 means
	// unknown, and prices are then blended 1:1.
	EstOutputTokens int64
	// Now is the decision's instant; zero means time.Now().
	Now time.Time
}

// Candidate is one provider+model to try, in order.
type Candidate struct {
	// Provider names the provider.
	Provider string
	// Model is the provider's name for the model (proxy.Target.Model).
	Model string
	// ProviderIndex is the provider's index in Spec.Providers, so that the
	// caller can find its target without a map lookup.
	ProviderIndex int
	// Tier is the 1-based tier the member came from; 0 for a first-refusal
	// holder offered outside the tiers through ProviderSpec.Serves.
	Tier int
	// FirstRefusal names the agreement when this is its holder's offer.
	FirstRefusal string
}

// Refusal records a provider+model passed over, and why.
type Refusal struct {
	// Provider names the provider.
	Provider string
	// Model is the provider's name for the model; empty for NotServed.
	Model string
	// Tier is as in Candidate.
	Tier int
	// Reason says why.
	Reason Reason
	// Agreement names the first-refusal agreement when the refused
	// provider is its holder.
	Agreement string
	// Restriction names the licence or exclusivity behind an Unlicensed
	// or NotExclusive refusal.
	Restriction string
}

// Plan is the outcome of one decision. Keep one per request or goroutine
// and pass it to Router.Plan again: its slices are reused, so a Plan is not
// safe for concurrent use and its contents are valid until the next call.
type Plan struct {
	// Candidates are the providers to try, in order: first-refusal holders,
	// then each tier's members as its strategy orders them.
	Candidates []Candidate
	// Skipped are the providers passed over, first-refusal holders first.
	Skipped []Refusal
	// Model and Workload echo the request.
	Model, Workload string
	// Policy names the policy applied: the workload, "default", or "" for
	// none.
	Policy string

	holders []*provider
	refs    []ref
	binds   []binding
}

// Reset empties p, keeping its capacity.
func (p *Plan) Reset() {
	p.Candidates, p.Skipped, p.holders, p.refs, p.binds = p.Candidates[:0], p.Skipped[:0], p.holders[:0], p.refs[:0], p.binds[:0]
	p.Model, p.Workload, p.Policy = "", "", ""
}

// Error says why no provider can take a request. The caller renders it:
// UnknownModel as 404, ModelNotAllowed and the policy constraints
// (ProviderNotAllowed, FamilyNotAllowed, RegionNotAllowed, PriceTooHigh,
// MissingCapability from Require) as 403, MissingCapability from the
// request's own needs as 400, and Temporary ones (capacity, breaker,
// cool-down) as 503 or 429.
type Error struct {
	// Model and Workload are the request's.
	Model, Workload string
	// Policy names the policy applied ("" for none).
	Policy string
	// Reason is the constraint that removed the last candidates.
	Reason Reason
	// Constraint is Reason.Constraint(): "region", "price", "model", ...
	Constraint string
	// Allowed lists what the policy allows for Constraint (regions,
	// providers); shared with the Router, do not modify.
	Allowed []string
	// Needs are the capabilities required (request ∪ policy) for
	// MissingCapability.
	Needs Caps
	// MaxPrice is the policy's cap for PriceTooHigh.
	MaxPrice int64
	// Agreement names the licence or exclusivity for Unlicensed and
	// NotExclusive; Date is the licence's end (or start, with Starts) or
	// the exclusivity's end, as written in the config.
	Agreement, Date string
	Starts          bool
}

// Temporary reports whether the request may succeed later unchanged: the
// candidates were refused for capacity, an open breaker or a cool-down.
func (e *Error) Temporary() bool {
	return e.Reason == CapacityExhausted || e.Reason == CircuitOpen || e.Reason == CoolingDown
}

// Error renders e as a message safe to show the client, e.g. `no provider
// for model "m" meets the workload "w" policy: region (allowed eu-west-1,
// eu-central-1)`.
func (e *Error) Error() string {
	switch e.Reason {
	case UnknownModel:
		return "no route for model " + strconv.Quote(e.Model)
	case ModelNotAllowed:
		return "model " + strconv.Quote(e.Model) + " is not allowed for workload " + strconv.Quote(e.Workload)
	case Unlicensed:
		verb := " ended on "
		if e.Starts {
			verb = " starts on "
		}
		return "licence " + strconv.Quote(e.Agreement) + " for model " + strconv.Quote(e.Model) + verb + e.Date
	case NotExclusive:
		return "model " + strconv.Quote(e.Model) + " is exclusive to " + strings.Join(e.Allowed, ", ") +
			" under agreement " + strconv.Quote(e.Agreement) + " until " + e.Date + ", and none of them can serve it"
	}
	var b strings.Builder
	b.WriteString("no provider for model ")
	b.WriteString(strconv.Quote(e.Model))
	if e.Temporary() {
		b.WriteString(" is available: ")
	} else if e.Policy == "" {
		b.WriteString(" meets the request: ")
	} else {
		b.WriteString(" meets the workload ")
		b.WriteString(strconv.Quote(e.Workload))
		b.WriteString(" policy: ")
	}
	b.WriteString(e.Constraint)
	switch e.Reason {
	case RegionNotAllowed, ProviderNotAllowed:
		b.WriteString(" (allowed ")
		b.WriteString(strings.Join(e.Allowed, ", "))
		b.WriteByte(')')
	case MissingCapability:
		b.WriteString(" (requires ")
		b.WriteString(e.Needs.String())
		b.WriteByte(')')
	case PriceTooHigh:
		b.WriteString(" (at most ")
		b.WriteString(strconv.FormatInt(e.MaxPrice, 10))
		b.WriteString(" micro-dollars per million tokens)")
	case CapacityExhausted:
		b.WriteString(" (provisioned throughput used)")
	case CircuitOpen:
		b.WriteString(" (upstream failing)")
	case CoolingDown:
		b.WriteString(" (upstream rate limited)")
	}
	return b.String()
}

// planMode selects the side effects of a decision.
type planMode uint8

const (
	// counted decisions update the first-refusal counters.
	counted planMode = iota
	// explained decisions leave counters alone and report agreements
	// outside their window.
	explained
)

// Plan decides where req goes, filling p (which it resets). It returns an
// *Error when the model is unknown or not allowed, or when every candidate
// was excluded; p then still lists the refusals. With candidates found it
// does not allocate. Safe for concurrent use with distinct Plans.
func (r *Router) Plan(req *Request, p *Plan) error {
	return r.plan(req, p, counted)
}

func (r *Router) plan(req *Request, p *Plan, mode planMode) error {
	p.Reset()
	p.Model, p.Workload = req.Model, req.Workload
	pol := r.policies[req.Workload]
	if pol == nil {
		pol = r.def
	}
	p.Policy = pol.name
	m := r.models[req.Model]
	if m == nil {
		return &Error{Model: req.Model, Workload: req.Workload, Policy: pol.name, Reason: UnknownModel, Constraint: UnknownModel.Constraint()}
	}
	rt := &pol.routes[m.idx]
	if !rt.allowed {
		return &Error{Model: req.Model, Workload: req.Workload, Policy: pol.name, Reason: ModelNotAllowed, Constraint: ModelNotAllowed.Constraint(), Allowed: pol.models}
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	if len(rt.restrictions) > 0 {
		p.bind(rt, req, now)
	}
	c := check{req: req, needs: req.Needs | pol.require, maxPrice: pol.maxPrice, now: now.UnixNano(), sec: now.Unix(), binds: p.binds}

	for i := range rt.offers {
		o := &rt.offers[i]
		if !o.ag.covers(req) {
			continue
		}
		if !o.ag.active(now) {
			if mode == explained {
				p.Skipped = append(p.Skipped, Refusal{Provider: o.ag.holder.name, Reason: OutsideWindow, Agreement: o.ag.name})
			}
			continue
		}
		if p.isHolder(o.ag.holder) {
			continue // an earlier agreement already made this holder its offer
		}
		p.holders = append(p.holders, o.ag.holder)
		if len(o.occ) == 0 {
			p.Skipped = append(p.Skipped, Refusal{Provider: o.ag.holder.name, Reason: NotServed, Agreement: o.ag.name})
			if mode == counted {
				o.ag.stats.refusals[NotServed].Add(1)
			}
			continue
		}
		var refused *member
		var why Reason
		var restriction string
		for _, mem := range o.occ {
			w := c.of(mem)
			if w == Admitted {
				p.Candidates = append(p.Candidates, candidate(mem, o.ag.name))
				refused = nil
				break
			}
			if refused == nil {
				refused, why, restriction = mem, w, c.agreement(w)
			}
		}
		switch {
		case refused != nil:
			p.Skipped = append(p.Skipped, Refusal{Provider: refused.prov.name, Model: refused.model, Tier: refused.tier, Reason: why, Agreement: o.ag.name, Restriction: restriction})
			if mode == counted {
				o.ag.stats.refusals[why].Add(1)
			}
		case mode == counted:
			o.ag.stats.offers.Add(1)
		}
	}

	for ti := range rt.tiers {
		t := &rt.tiers[ti]
		p.refs = p.refs[:0]
		for mi := range t.members {
			mem := &t.members[mi]
			if p.isHolder(mem.prov) {
				continue
			}
			if w := c.of(mem); w != Admitted {
				p.Skipped = append(p.Skipped, Refusal{Provider: mem.prov.name, Model: mem.model, Tier: mem.tier, Reason: w, Restriction: c.agreement(w)})
				continue
			}
			p.refs = append(p.refs, ref{m: mem})
		}
		if len(p.refs) > 1 {
			t.sel.order(p.refs, req, r.rand)
			if r.pacer != nil {
				pace(p.refs, r.pacer, c.now)
			}
		}
		for i := range p.refs {
			p.Candidates = append(p.Candidates, candidate(p.refs[i].m, ""))
		}
	}
	if len(p.Candidates) > 0 {
		return nil
	}
	return r.failure(p, pol, c.needs, now)
}

func candidate(m *member, agreement string) Candidate {
	return Candidate{Provider: m.prov.name, Model: m.model, ProviderIndex: m.prov.idx, Tier: m.tier, FirstRefusal: agreement}
}

func (p *Plan) isHolder(prov *provider) bool {
	for _, h := range p.holders {
		if h == prov {
			return true
		}
	}
	return false
}

// failure names the constraint that removed the last candidates: each
// refusal carries the first constraint its member failed, in check order,
// so applying the constraints one after another empties the list at the
// latest of them.
func (r *Router) failure(p *Plan, pol *policy, needs Caps, now time.Time) error {
	e := &Error{Model: p.Model, Workload: p.Workload, Policy: pol.name, Reason: NotServed}
	for _, s := range p.Skipped {
		if s.Reason > e.Reason && s.Reason < OutsideWindow {
			e.Reason = s.Reason
		}
	}
	e.Constraint = e.Reason.Constraint()
	switch e.Reason {
	case RegionNotAllowed:
		e.Allowed = pol.regions
	case ProviderNotAllowed:
		e.Allowed = pol.providers
	case MissingCapability:
		e.Needs = needs
	case PriceTooHigh:
		e.MaxPrice = pol.maxPrice
	case Unlicensed, NotExclusive:
		for _, s := range p.Skipped {
			if s.Reason == e.Reason {
				e.Agreement = s.Restriction
				break
			}
		}
		if x := r.byRestriction[e.Agreement]; x != nil {
			switch {
			case e.Reason == NotExclusive:
				e.Allowed, e.Date = x.allowed, x.untilText
			case !x.from.IsZero() && now.Before(x.from):
				e.Date, e.Starts = x.fromText, true
			default:
				e.Date = x.untilText
			}
		}
	}
	return e
}

// check evaluates the constraints for one request.
type check struct {
	req      *Request
	needs    Caps
	maxPrice int64
	now, sec int64
	binds    []binding
	// barred is the restriction behind the last Unlicensed or NotExclusive
	// verdict.
	barred *restriction
}

// agreement names the restriction behind verdict w, if any.
func (c *check) agreement(w Reason) string {
	if (w == Unlicensed || w == NotExclusive) && c.barred != nil {
		return c.barred.name
	}
	return ""
}

// of returns the first constraint m fails, in Reason order, or Admitted.
func (c *check) of(m *member) Reason {
	if len(c.binds) > 0 {
		if w, x := restricted(c.binds, m); w != Admitted {
			c.barred = x
			return w
		}
	}
	if m.static != Admitted && m.static < MissingCapability {
		return m.static
	}
	if c.needs&^m.prov.caps != 0 {
		return MissingCapability
	}
	if m.static != Admitted {
		return m.static
	}
	if c.maxPrice > 0 && blended(m.price, c.req) > c.maxPrice {
		return PriceTooHigh
	}
	if m.prov.limited() && !m.prov.win.fits(c.sec, max(c.req.EstTokens, 0), m.prov.capacity) {
		return CapacityExhausted
	}
	return m.slot.state(c.now)
}
