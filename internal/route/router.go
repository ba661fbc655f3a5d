package route

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Router makes routing decisions for one configuration snapshot. It is
// built by New, immutable afterwards except for its live state (health,
// latency, capacity, counters), and safe for concurrent use.
type Router struct {
	providers   []*provider
	byName      map[string]*provider
	models      map[string]*model
	policies    map[string]*policy
	def         *policy // the "default" policy, or one without constraints
	slots       map[slotKey]*slot
	agreements  []*agreement
	byAgreement map[string]*agreement
	// restrictions and byRestriction are the exclusivity and licence
	// agreements.
	restrictions  []*restriction
	byRestriction map[string]*restriction
	pacer         Pacer
	health        HealthSpec
	rand          func() float64
}

// provider is a compiled ProviderSpec.
type provider struct {
	idx      int
	name     string
	region   string
	caps     Caps
	capacity Capacity
	win      *window
	// families, serves and prices are used while compiling only.
	families map[string]string
	serves   []string
	prices   map[string]Price
}

func (p *provider) limited() bool { return p.capacity.RPM > 0 || p.capacity.TPM > 0 }

// model is a compiled ModelSpec.
type model struct {
	idx    int
	name   string
	family string
}

// member is one provider+model of a compiled route, with the verdict of
// the route's policy on everything that does not depend on the request.
type member struct {
	prov   *provider
	slot   *slot
	model  string // upstream name
	family string
	weight int
	price  Price
	tier   int // 1-based; 0 for a holder offered outside the tiers
	static Reason
}

// tier is a compiled TierSpec.
type tier struct {
	strategy string
	sel      selector
	members  []member
}

// offer is an agreement that covers a route, with the holder's members in
// route order (or the one it serves outside the tiers; none: NotServed).
type offer struct {
	ag  *agreement
	occ []*member
}

// route is a model under a policy.
type route struct {
	allowed bool
	tiers   []tier
	offers  []offer
	// restrictions are the exclusivities and licences whose model globs
	// match the route's model.
	restrictions []*restriction
}

// agreement is a compiled FirstRefusalSpec.
type agreement struct {
	name      string
	holder    *provider
	models    []string
	workloads []string
	keys      []string
	teams     []string
	from      time.Time
	until     time.Time
	stats     *agreementStats
}

// active reports whether a covers workload at now: From ≤ now < Until.
func (a *agreement) active(now time.Time) bool {
	return (a.from.IsZero() || !now.Before(a.from)) && (a.until.IsZero() || now.Before(a.until))
}

func (a *agreement) covers(req *Request) bool {
	return (len(a.workloads) == 0 || MatchAny(a.workloads, req.Workload)) &&
		(len(a.keys) == 0 || slices.Contains(a.keys, req.Key)) &&
		(len(a.teams) == 0 || slices.Contains(a.teams, req.Team))
}

// policy is a compiled PolicySpec with its routes by model index.
type policy struct {
	name           string
	models         []string
	providers      []string
	allowed        []bool // by provider index; nil allows all
	require        Caps
	regions        []string
	maxPrice       int64
	familyFallback bool
	fallback       map[string][]string
	routes         []route
}

// New validates spec and compiles it into a Router.
func New(spec Spec) (*Router, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	r := &Router{
		byName:      map[string]*provider{},
		models:      map[string]*model{},
		policies:    map[string]*policy{},
		slots:       map[slotKey]*slot{},
		byAgreement: map[string]*agreement{},
		health:      spec.Health.withDefaults(),
		rand:        spec.Rand,
		pacer:       spec.Pacer,
	}
	if r.rand == nil {
		r.rand = rand.Float64
	}
	prev := spec.Previous
	for i, ps := range spec.Providers {
		p := &provider{
			idx: i, name: ps.Name, region: ps.Region, capacity: ps.Capacity,
			families: ps.Families, serves: slices.Clone(ps.Serves), prices: ps.Prices,
		}
		for _, c := range ps.Capabilities {
			cp, _ := ParseCap(c)
			p.caps |= cp
		}
		if prev != nil && prev.byName[p.name] != nil {
			p.win = prev.byName[p.name].win
		} else {
			p.win = new(window)
		}
		r.providers = append(r.providers, p)
		r.byName[p.name] = p
	}
	for _, as := range spec.Agreements {
		a := &agreement{
			name: as.Name, holder: r.byName[as.Holder], from: as.From, until: as.Until,
			models: slices.Clone(as.Scope.Models), workloads: slices.Clone(as.Scope.Workloads),
			keys: slices.Clone(as.Scope.Keys), teams: slices.Clone(as.Scope.Teams),
		}
		if prev != nil && prev.byAgreement[a.name] != nil {
			a.stats = prev.byAgreement[a.name].stats
		} else {
			a.stats = new(agreementStats)
		}
		r.agreements = append(r.agreements, a)
		r.byAgreement[a.name] = a
	}
	r.byRestriction = map[string]*restriction{}
	for _, rs := range spec.Restrictions {
		x := r.compileRestriction(rs)
		if x.kind == Exclusive {
			x.allowed = slices.Clone(rs.Providers)
		}
		r.restrictions = append(r.restrictions, x)
		r.byRestriction[x.name] = x
	}
	byModel := map[string]*ModelSpec{}
	models := make([]*model, len(spec.Models))
	for i := range spec.Models {
		ms := &spec.Models[i]
		byModel[ms.Name] = ms
		models[i] = &model{idx: i, name: ms.Name, family: ms.Family}
		r.models[ms.Name] = models[i]
	}
	c := compiler{r: r, byModel: byModel, prev: prev}
	none := &policy{familyFallback: true}
	pols := []*policy{none}
	for _, ps := range spec.Policies {
		p := &policy{
			name: ps.Workload, models: slices.Clone(ps.Models), providers: slices.Clone(ps.Providers),
			regions: slices.Clone(ps.Regions), maxPrice: ps.MaxPricePerMTok,
			familyFallback: ps.AllowFamilyFallback, fallback: ps.Fallback,
		}
		if len(ps.Providers) > 0 {
			p.allowed = make([]bool, len(r.providers))
			for _, name := range ps.Providers {
				p.allowed[r.byName[name].idx] = true
			}
		}
		for _, name := range ps.Require {
			cp, _ := ParseCap(name)
			p.require |= cp
		}
		r.policies[p.name] = p
		pols = append(pols, p)
	}
	r.def = none
	if p := r.policies["default"]; p != nil {
		r.def = p
	}
	for _, p := range pols {
		p.routes = make([]route, len(models))
		for _, m := range models {
			p.routes[m.idx] = c.route(p, m)
		}
	}
	for _, p := range r.providers {
		p.families, p.prices, p.serves = nil, nil, nil // compiled into the routes
	}
	return r, nil
}

// compiler builds routes.
type compiler struct {
	r       *Router
	byModel map[string]*ModelSpec
	prev    *Router
}

// route compiles model m under policy p: m's tiers, then the tiers of p's
// fallback models (a provider+model already listed is not repeated), then
// the agreements whose model globs match m, each with the holder's members
// among m's own tiers or, failing those, the one its Serves globs give.
func (c *compiler) route(p *policy, m *model) route {
	rt := route{allowed: len(p.models) == 0 || MatchAny(p.models, m.name)}
	seen := map[slotKey]bool{}
	add := func(ms *ModelSpec) {
		for _, ts := range ms.Tiers {
			t := tier{strategy: ts.Strategy, sel: strategies[ts.Strategy]}
			if t.strategy == "" {
				t.strategy = StrategyOrdered
			}
			for _, mem := range ts.Members {
				up := upstream(mem.Model, ms.Name)
				if k := (slotKey{mem.Provider, up}); !seen[k] {
					seen[k] = true
					t.members = append(t.members, c.member(p, m, c.r.byName[mem.Provider], up, ms.Family, mem.Weight, len(rt.tiers)+1))
				}
			}
			if len(t.members) > 0 {
				rt.tiers = append(rt.tiers, t)
			}
		}
	}
	add(c.byModel[m.name])
	for _, x := range c.r.restrictions {
		if len(x.models) == 0 || MatchAny(x.models, m.name) {
			rt.restrictions = append(rt.restrictions, x)
		}
	}
	own := len(rt.tiers)
	for _, fb := range p.fallback[m.name] {
		add(c.byModel[fb])
	}
	for _, a := range c.r.agreements {
		if len(a.models) > 0 && !MatchAny(a.models, m.name) {
			continue
		}
		o := offer{ag: a}
		// The holder's offer is of the model itself: its occurrences in
		// the fallback models' tiers are not offers (but are removed).
		for ti := range rt.tiers[:own] {
			for mi := range rt.tiers[ti].members {
				if mem := &rt.tiers[ti].members[mi]; mem.prov == a.holder {
					o.occ = append(o.occ, mem)
				}
			}
		}
		if len(o.occ) == 0 && MatchAny(a.holder.serves, m.name) {
			mem := c.member(p, m, a.holder, m.name, m.family, 0, 0)
			o.occ = []*member{&mem}
		}
		rt.offers = append(rt.offers, o)
	}
	return rt
}

// member compiles one provider+model of model m's route under policy p;
// owner is the family of the model whose tier lists it.
func (c *compiler) member(p *policy, m *model, prov *provider, up, owner string, weight, tierNo int) member {
	mem := member{prov: prov, model: up, weight: weight, price: prov.prices[up], tier: tierNo, slot: c.slot(prov.name, up)}
	switch f, ok := prov.families[up]; {
	case ok:
		mem.family = f
	case c.byModel[up] != nil && c.byModel[up].Family != "":
		mem.family = c.byModel[up].Family
	default:
		mem.family = owner
	}
	switch {
	case p.allowed != nil && !p.allowed[prov.idx]:
		mem.static = ProviderNotAllowed
	case !p.familyFallback && mem.family != "" && m.family != "" && mem.family != m.family:
		mem.static = FamilyNotAllowed
	case p.require&^prov.caps != 0:
		mem.static = MissingCapability
	case len(p.regions) > 0 && !slices.Contains(p.regions, prov.region):
		mem.static = RegionNotAllowed
	case p.maxPrice > 0 && !mem.price.known():
		mem.static = PriceTooHigh
	}
	return mem
}

// slot returns the live state of provider+model, shared with the previous
// router when it had one.
func (c *compiler) slot(provider, model string) *slot {
	k := slotKey{provider, model}
	if s := c.r.slots[k]; s != nil {
		return s
	}
	s := new(slot)
	if c.prev != nil && c.prev.slots[k] != nil {
		s = c.prev.slots[k]
	}
	c.r.slots[k] = s
	return s
}
