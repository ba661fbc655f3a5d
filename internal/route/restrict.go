package route

import (
	"slices"
	"time"
)

// RestrictionKind says how a RestrictionSpec acts.
type RestrictionKind uint8

// Restriction kinds.
const (
	// Exclusive: while the window holds, only the named providers may
	// serve the scope; after it the scope opens to every route.
	Exclusive RestrictionKind = iota + 1
	// Licensed: the holder may use the scope only inside the window;
	// outside it the covered providers are refused for the holder.
	Licensed
)

// RestrictionSpec is an exclusivity or licence agreement. Both act on
// every candidate, first-refusal holders included, before any other
// constraint.
type RestrictionSpec struct {
	// Name identifies the agreement in refusals and errors.
	Name string
	// Kind is Exclusive or Licensed.
	Kind RestrictionKind
	// Providers are, for Exclusive, the only providers allowed while the
	// window holds; for Licensed, the providers the licence covers (empty:
	// every provider).
	Providers []string
	// Scope selects the requests covered.
	Scope Scope
	// HolderKey or HolderTeam names whose requests a licence governs.
	HolderKey, HolderTeam string
	// From and Until bound the window [From, Until); zero is open.
	From, Until time.Time
	// FromText and UntilText are the bounds as written in the config, for
	// error messages ("2032-12-31").
	FromText, UntilText string
}

// Pacer scores providers for commitment pacing. Behind returns how far
// behind its schedule the commitments burnt down by the provider (by its
// index in Spec.Providers) are at now (Unix nanoseconds), as a share of
// the commitment: 0 when on pace or when it has none. Among the admitted
// members of one tier, those behind are moved first, furthest behind
// first; the others keep the strategy's order. Behind must be safe for
// concurrent use and must not allocate.
type Pacer interface {
	Behind(provider int, now int64) float64
}

// restriction is a compiled RestrictionSpec.
type restriction struct {
	name                  string
	kind                  RestrictionKind
	providers             []bool // by provider index; nil: every provider
	models, workloads     []string
	keys, teams           []string
	holderKey, holderTeam string
	from, until           time.Time
	fromText, untilText   string
	allowed               []string // Exclusive: the providers named, for errors
}

func (r *Router) compileRestriction(rs RestrictionSpec) *restriction {
	x := &restriction{
		name: rs.Name, kind: rs.Kind, models: slices.Clone(rs.Scope.Models), workloads: slices.Clone(rs.Scope.Workloads),
		keys: slices.Clone(rs.Scope.Keys), teams: slices.Clone(rs.Scope.Teams),
		holderKey: rs.HolderKey, holderTeam: rs.HolderTeam, from: rs.From, until: rs.Until,
		fromText: rs.FromText, untilText: rs.UntilText,
	}
	if len(rs.Providers) > 0 {
		x.providers = make([]bool, len(r.providers))
		for _, name := range rs.Providers {
			x.providers[r.byName[name].idx] = true
		}
	}
	return x
}

func (x *restriction) active(now time.Time) bool {
	return (x.from.IsZero() || !now.Before(x.from)) && (x.until.IsZero() || now.Before(x.until))
}

// applies reports whether x governs req (its model was matched when the
// route was compiled).
func (x *restriction) applies(req *Request) bool {
	if len(x.workloads) > 0 && !MatchAny(x.workloads, req.Workload) {
		return false
	}
	if len(x.keys) > 0 && !slices.Contains(x.keys, req.Key) {
		return false
	}
	if len(x.teams) > 0 && !slices.Contains(x.teams, req.Team) {
		return false
	}
	if x.kind == Licensed {
		return x.holderKey != "" && x.holderKey == req.Key || x.holderTeam != "" && x.holderTeam == req.Team
	}
	return true
}

func (x *restriction) covers(p *provider) bool { return x.providers == nil || x.providers[p.idx] }

// binding is a restriction that governs one request, with whether its
// window holds.
type binding struct {
	x      *restriction
	active bool
}

// bind collects the restrictions of rt that govern req into p.binds.
func (p *Plan) bind(rt *route, req *Request, now time.Time) {
	p.binds = p.binds[:0]
	for _, x := range rt.restrictions {
		if x.applies(req) {
			p.binds = append(p.binds, binding{x: x, active: x.active(now)})
		}
	}
}

// restricted returns the restriction reason that bars m, with the
// agreement's name: Unlicensed when a licence of the holder covers m's
// provider and none that covers it is in its window; NotExclusive when an
// exclusivity in its window does not name m's provider.
func restricted(binds []binding, m *member) (Reason, *restriction) {
	var lapsed *restriction
	licensed := false
	for i := range binds {
		b := &binds[i]
		if b.x.kind != Licensed || !b.x.covers(m.prov) {
			continue
		}
		if b.active {
			licensed = true
			break
		}
		if lapsed == nil {
			lapsed = b.x
		}
	}
	if lapsed != nil && !licensed {
		return Unlicensed, lapsed
	}
	for i := range binds {
		if b := &binds[i]; b.x.kind == Exclusive && b.active && !b.x.covers(m.prov) {
			return NotExclusive, b.x
		}
	}
	return Admitted, nil
}

// pace moves the members behind on a commitment to the front of refs,
// furthest behind first, keeping the order of the rest. It does not
// allocate.
func pace(refs []ref, pacer Pacer, now int64) {
	behind := false
	for i := range refs {
		s := pacer.Behind(refs[i].m.prov.idx, now)
		refs[i].key = int64(s * 1e12)
		behind = behind || refs[i].key > 0
	}
	if !behind {
		return
	}
	for i := 1; i < len(refs); i++ { // stable insertion sort, descending key
		for j := i; j > 0 && refs[j].key > refs[j-1].key; j-- {
			refs[j], refs[j-1] = refs[j-1], refs[j]
		}
	}
}
