package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/multipolar/multipolar/internal/contract"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/pricing"
	"github.com/multipolar/multipolar/internal/proxy"
	"github.com/multipolar/multipolar/internal/ratelimit"
	"github.com/multipolar/multipolar/internal/route"
)

// buildRouter compiles the configuration's routing: tiers, first-refusal
// agreements, workload policies, provider regions, capabilities, capacity
// and prices (in force now, for the cheapest strategy and price caps).
// prev, the router being replaced, hands over health and counters.
func buildRouter(cfg *config.Config, catalog *pricing.Catalog, contracts *contract.Set, prev *route.Router) (*route.Router, error) {
	return buildRouterWith(cfg, catalog, contracts, prev, nil)
}

// buildRouterWith is buildRouter with the weighted strategy's random
// source (nil: math/rand/v2), which replays fix.
func buildRouterWith(cfg *config.Config, catalog *pricing.Catalog, contracts *contract.Set, prev *route.Router, rnd func() float64) (*route.Router, error) {
	// With limits in Redis, provider capacity is counted there, shared by
	// every replica (see routeGate); the router's own per-process count
	// would let each replica spend the whole capacity.
	shared := cfg.Limits.Driver == "redis"
	now := time.Now()
	spec := route.Spec{Previous: prev, Rand: rnd, Restrictions: contracts.Restrictions(), Health: route.HealthSpec{
		ConsecutiveFailures: cfg.Routing.Breaker.ConsecutiveFailures,
		ErrorRate:           cfg.Routing.Breaker.ErrorRate,
		MinRequests:         cfg.Routing.Breaker.MinRequests,
		Window:              cfg.Routing.Breaker.Window.D(),
		Cooldown:            cfg.Routing.Breaker.Cooldown.D(),
	}}
	index := make(map[string]int, len(cfg.Providers))
	for i := range cfg.Providers {
		p := &cfg.Providers[i]
		caps := p.Capabilities
		if len(caps) == 0 {
			caps = []string{"tools", "vision", "json"} // omitted means all
		}
		ps := route.ProviderSpec{Name: p.Name, Region: p.Region, Capabilities: caps, Serves: p.Serves,
			Families: map[string]string{}, Prices: map[string]route.Price{}}
		if !shared {
			ps.Capacity = route.Capacity{RPM: p.Capacity.RPM, TPM: p.Capacity.TPM}
		}
		index[p.Name] = i
		spec.Providers = append(spec.Providers, ps)
	}
	// One pass over every tier member: the model's tiers, and each
	// provider's families and prices (in force now) by upstream model.
	for i := range cfg.Models {
		m := &cfg.Models[i]
		ms := route.ModelSpec{Name: m.Name, Family: m.Family}
		for _, r := range m.Routes {
			tier := route.TierSpec{Strategy: r.Strategy}
			for _, mr := range r.Targets() {
				tier.Members = append(tier.Members, route.MemberSpec{Provider: mr.Provider, Model: mr.Model, Weight: mr.Weight})
				ps := &spec.Providers[index[mr.Provider]]
				um := mr.Model
				if um == "" {
					um = m.Name
				}
				if mr.Family != "" {
					ps.Families[um] = mr.Family
				}
				if p, ok := lookupPrice(catalog, mr.Provider, um, m.Name, now); ok {
					in, _ := ceilMicros(p.Input)
					out, _ := ceilMicros(p.Output)
					ps.Prices[um] = route.Price{Input: in, Output: out}
				}
			}
			ms.Tiers = append(ms.Tiers, tier)
		}
		spec.Models = append(spec.Models, ms)
	}
	for _, a := range cfg.Agreements {
		if a.Type != "first_refusal" {
			continue
		}
		spec.Agreements = append(spec.Agreements, route.FirstRefusalSpec{Name: a.Name, Holder: a.Holder.Name,
			Scope: route.Scope{Models: a.Scope.Models, Workloads: a.Scope.Workloads, Keys: a.Scope.Keys, Teams: a.Scope.Teams}, From: a.From.Time, Until: a.UntilTime()})
	}
	if contracts.Pacer().Active() {
		spec.Pacer = contracts.Pacer()
	}
	for _, p := range cfg.Policies {
		ps := route.PolicySpec{Workload: p.Workload, Models: p.Models, Providers: p.Providers, Require: p.Require,
			Regions: p.Regions, AllowFamilyFallback: p.AllowFamilyFallback, Fallback: p.Fallback}
		if p.MaxPricePerMTok != "" {
			m, err := pricing.ParseMoney(string(p.MaxPricePerMTok))
			if err != nil {
				return nil, fmt.Errorf("policy %s: %w", p.Workload, err)
			}
			ps.MaxPricePerMTok, _ = ceilMicros(m)
		}
		spec.Policies = append(spec.Policies, ps)
	}
	return route.New(spec)
}

// retryPolicy is the engine's retry rounds from routing's settings.
func retryPolicy(r config.Routing) proxy.Retry {
	base, maxWait := r.BackoffBase.D(), r.BackoffMax.D()
	if base <= 0 {
		base = 250 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	return proxy.Retry{Rounds: r.RetryRounds(), Backoff: func(n int, retryAfter time.Duration) time.Duration {
		return route.Backoff(n-1, retryAfter, base, maxWait, rand.Float64)
	}}
}

// routing is one request's routing state, pooled: the plan, the targets
// built from it and the gate the engine consults per attempt.
type routing struct {
	plan    route.Plan
	targets []proxy.Target
	header  []byte
	gate    routeGate
}

var routingPool = sync.Pool{New: func() any { return new(routing) }}

// routeGate admits each attempt through the router (capacity, breakers,
// cool-down) and reports its outcome back (health, latency, first-refusal
// refusals at call time).
type routeGate struct {
	router *route.Router
	plan   *route.Plan
	tokens int64
	m      routeMetrics
	now    func() time.Time
	// capacity holds each provider's shared capacity limit (by provider
	// index), checked in limiter; nil when capacity is counted in-process.
	capacity [][]ratelimit.Limit
	limiter  ratelimit.Limiter
}

// routeMetrics counts a first-refusal holder passed over at call time.
type routeMetrics interface {
	FirstRefusalCallRefusal(agreement, reason string)
}

func (g *routeGate) Begin(ctx context.Context, i int, t *proxy.Target) string {
	r := g.router.Begin(t.Name, t.Model, g.tokens, g.now())
	if r == route.Admitted && g.capacity != nil {
		if lim := g.capacity[g.plan.Candidates[i].ProviderIndex]; lim != nil {
			d, err := g.limiter.Allow(ctx, ratelimit.Request{Limits: lim, Tokens: g.tokens, Now: g.now()})
			if err == nil && !d.Allowed {
				g.router.End(t.Name, t.Model) // taken back: never sent
				r = route.CapacityExhausted
			}
		}
	}
	if r == route.Admitted {
		return ""
	}
	if a := g.plan.Candidates[i].FirstRefusal; a != "" {
		g.m.FirstRefusalCallRefusal(a, r.String())
	}
	return r.String()
}

func (g *routeGate) End(i int, t *proxy.Target, a *proxy.Attempt) {
	g.router.End(t.Name, t.Model)
	var o route.Outcome
	switch a.Outcome {
	case proxy.Served:
		o = route.Success
	case proxy.RateLimited:
		o = route.RateLimited
	case proxy.ServerError, proxy.AuthRejected:
		o = route.ServerError
	case proxy.Timeout:
		o = route.Timeout
	case proxy.ConnectError:
		o = route.ConnectError
	default:
		return // canceled or unsupported: nothing about the upstream
	}
	ra, _ := strconv.Atoi(a.RetryAfter)
	g.router.Observe(t.Name, t.Model, o, a.Duration, time.Duration(ra)*time.Second, g.now())
	if ag := g.plan.Candidates[i].FirstRefusal; ag != "" && o != route.Success {
		g.m.FirstRefusalCallRefusal(ag, a.Outcome.String())
	}
}

// needsOf guesses, without decoding, the capabilities a raw request uses.
// A key written as "tools" can only be a JSON key or that exact string: in
// message text its quotes would be escaped.
func needsOf(body []byte) route.Caps {
	var c route.Caps
	if bytes.Contains(body, []byte(`"tools"`)) {
		c |= route.CapTools
	}
	if bytes.Contains(body, []byte(`"image_url"`)) || bytes.Contains(body, []byte(`"type":"image"`)) || bytes.Contains(body, []byte(`"type": "image"`)) {
		c |= route.CapVision
	}
	if bytes.Contains(body, []byte(`"json_schema"`)) || bytes.Contains(body, []byte(`"json_object"`)) {
		c |= route.CapJSON
	}
	return c
}

// plan routes one request: it fills rt with the ordered targets and the
// gate, or returns the client's error when no provider may take it.
func (s *Server) plan(snap *snapshot, m *modelEntry, raw *llm.RawRequest, workload string, key *keyEntry, rt *routing) *apierr.Error {
	req := s.routeRequest(m, raw, workload)
	req.Key, req.Team = key.name, key.team
	if snap.capsMatter {
		req.Needs = needsOf(raw.Body)
	}
	err := snap.router.Plan(&req, &rt.plan)
	var re *route.Error
	if errors.As(err, &re) {
		return routeError(re)
	}
	if err != nil {
		return apierr.Wrap(apierr.Internal, err, "routing failed")
	}
	rt.targets = rt.targets[:0]
	for _, c := range rt.plan.Candidates {
		t := snap.providerTargets[c.ProviderIndex]
		t.Model = c.Model
		rt.targets = append(rt.targets, t)
	}
	rt.header = rt.plan.AppendHeader(rt.header[:0])
	rt.gate = routeGate{router: snap.router, plan: &rt.plan, tokens: req.EstTokens, m: s.metrics, now: s.now,
		capacity: snap.sharedCapacity, limiter: s.limits.limiter}
	return nil
}

// routeRequest is what routing needs to know of a request: model,
// workload, and its token estimate (a quarter of its body, plus its output
// bound) for capacity and prices. m is nil for a model the configuration
// does not have.
func (s *Server) routeRequest(m *modelEntry, raw *llm.RawRequest, workload string) route.Request {
	return route.Request{Model: raw.Model, Workload: workload,
		EstTokens: estimateTokens(raw, m), EstOutputTokens: outputBound(raw, m), Now: s.now()}
}

// routeError renders a routing refusal with the status its route.Error
// documents.
func routeError(re *route.Error) *apierr.Error {
	switch {
	case re.Reason == route.UnknownModel:
		return apierr.New(apierr.NotFound, "%s", re.Error()).WithParam("model")
	case re.Temporary():
		return apierr.New(apierr.UpstreamUnavailable, "%s", re.Error()).WithCode("no_capacity")
	case re.Reason == route.MissingCapability && re.Policy == "":
		return apierr.New(apierr.BadRequest, "%s", re.Error()).WithCode("unsupported_feature")
	case re.Reason == route.Unlicensed:
		return apierr.New(apierr.Forbidden, "%s", re.Error()).WithCode("licence_outside_window")
	case re.Reason == route.NotExclusive:
		return apierr.New(apierr.Forbidden, "%s", re.Error()).WithCode("exclusive_agreement")
	}
	return apierr.New(apierr.Forbidden, "%s", re.Error()).WithCode("policy_" + re.Constraint)
}

// handleExplain answers POST /admin/route/explain: the request body and
// headers a client would send, and the ordered candidates with every
// refusal and its reason, without calling any upstream.
func (s *Server) handleExplain(w http.ResponseWriter, r *http.Request) {
	snap := s.snap.Load()
	body, e := readBody(w, r, snap.maxBody)
	if e == nil {
		var raw llm.RawRequest
		if raw, _, e = sniffForExplain(body); e == nil {
			req := s.routeRequest(snap.models[raw.Model], &raw, r.Header.Get(workloadHeader))
			req.Key, req.Team = r.Header.Get(explainKeyHeader), r.Header.Get(explainTeamHeader)
			req.Needs = needsOf(body) // spelled out even where no provider lacks a capability
			x := snap.router.Explain(&req)
			b, _ := json.Marshal(x)
			w.Header()["Content-Type"] = headerJSON
			_, _ = w.Write(append(b, '\n'))
			return
		}
	}
	writeAdminJSON(w, e.Kind.Status(), map[string]any{"error": map[string]string{"message": e.Message}})
}

// sniffForExplain reads the model from an OpenAI- or Anthropic-shaped body.
func sniffForExplain(body []byte) (llm.RawRequest, proxy.Ingress, *apierr.Error) {
	raw, enc, err := sniffOpenAI(llm.OpChat, body)
	if err != nil {
		return raw, nil, apierr.From(err)
	}
	return raw, enc, nil
}
