package route

import (
	"errors"
	"fmt"
	"time"
)

// Spec is the routing part of one configuration snapshot. The config layer
// fills it and New compiles it; New copies what it keeps, so the caller may
// reuse Spec afterwards.
type Spec struct {
	// Providers are the upstreams routes may name.
	Providers []ProviderSpec
	// Models are the client-facing models and their tiers.
	Models []ModelSpec
	// Agreements are first-right-of-refusal agreements.
	Agreements []FirstRefusalSpec
	// Restrictions are exclusivity and licence agreements.
	Restrictions []RestrictionSpec
	// Pacer, if set, orders each tier's members by commitment pacing.
	Pacer Pacer
	// Policies constrain routing per workload. A policy whose Workload is
	// "default" applies to workloads that have none of their own.
	Policies []PolicySpec
	// Health tunes the circuit breakers and latency averages.
	Health HealthSpec

	// Rand returns a number in [0, 1) for the weighted strategy. It must be
	// safe for concurrent use; nil means math/rand/v2.Float64. Set by the
	// wiring layer (tests inject a deterministic source), not by config.
	Rand func() float64
	// Previous is the router this one replaces on reload, if any. Health,
	// latency, in-flight and capacity state and first-refusal counters are
	// shared with it by provider, provider+model and agreement name, so a
	// reload does not reset them.
	Previous *Router
}

// ProviderSpec describes one upstream.
type ProviderSpec struct {
	// Name identifies the provider; letters, digits, '.', '_' and '-' only
	// (it appears in the route header).
	Name string
	// Region is where the provider serves from, e.g. "eu-west-1".
	Region string
	// Capabilities are the capabilities it offers: "tools", "vision", "json".
	Capabilities []string
	// Families gives the model family ("openai", "anthropic", "llama") by
	// upstream model name. A model missing here takes the family of the
	// ModelSpec of that name, else of the model whose tier lists it.
	Families map[string]string
	// Serves lists client-model globs this provider serves under the
	// model's own name. It is consulted only for a first-refusal holder
	// that is in none of the model's tiers: a match is offered, no match is
	// a NotServed refusal.
	Serves []string
	// Capacity is the provisioned throughput already paid for; zero fields
	// are unlimited.
	Capacity Capacity
	// Prices gives prices by upstream model, for the cheapest strategy and
	// the policies' price ceilings.
	Prices map[string]Price
}

// Capacity is a provider's provisioned throughput per sliding minute.
type Capacity struct {
	// RPM is requests per minute; 0 is unlimited.
	RPM int64
	// TPM is tokens per minute; 0 is unlimited.
	TPM int64
}

// Price is a model's list price in micro-dollars per million tokens. A zero
// Price (both fields zero) is unknown.
type Price struct {
	// Input is the price of input (prompt) tokens.
	Input int64
	// Output is the price of output (completion) tokens.
	Output int64
}

func (p Price) known() bool { return p.Input > 0 || p.Output > 0 }

// ModelSpec is a client-facing model.
type ModelSpec struct {
	// Name is the model name clients send.
	Name string
	// Family is the model's family, for policies without family fallback.
	Family string
	// Tiers are tried in order; every member of a tier comes before the
	// next tier.
	Tiers []TierSpec
}

// Strategy names for TierSpec.Strategy.
const (
	// StrategyOrdered keeps the members in the order listed ("" also means
	// ordered).
	StrategyOrdered = "ordered"
	// StrategyWeighted draws members at random in proportion to Weight,
	// without replacement.
	StrategyWeighted = "weighted"
	// StrategyLeastLatency orders by the moving average of time to first
	// byte; members never measured come first, so they get measured.
	StrategyLeastLatency = "least-latency"
	// StrategyLeastBusy orders by attempts in flight (Begin minus End).
	StrategyLeastBusy = "least-busy"
	// StrategyCheapest orders by the price of the request's estimated
	// tokens; unknown prices come last.
	StrategyCheapest = "cheapest"
)

// TierSpec is one tier of a model's route.
type TierSpec struct {
	// Strategy orders the members: "" or "ordered", "weighted",
	// "least-latency", "least-busy", "cheapest". Ties keep the listed order.
	Strategy string
	// Members are the provider+model pairs of the tier.
	Members []MemberSpec
}

// MemberSpec is one provider+model of a tier.
type MemberSpec struct {
	// Provider names a ProviderSpec.
	Provider string
	// Model is the provider's name for the model; empty means the client
	// model's name.
	Model string
	// Weight is the member's share under the weighted strategy (> 0); it
	// must be zero under the others.
	Weight int
}

// FirstRefusalSpec is a first-right-of-refusal agreement: in its window,
// every matching request is offered to Holder before anyone else.
type FirstRefusalSpec struct {
	// Name identifies the agreement in metrics, Explain and the header.
	Name string
	// Holder names the provider holding the right.
	Holder string
	// Scope selects the requests covered.
	Scope Scope
	// From is the first instant covered; zero is open.
	From time.Time
	// Until is the first instant NOT covered (the window is [From, Until));
	// zero is open. The config layer turns a date "until 2030-12-31" into
	// 2031-01-01T00:00:00Z so that the whole day is covered.
	Until time.Time
}

// Scope selects requests by client model, workload, key and team; the
// fields combine with AND.
type Scope struct {
	// Models are client-model globs ('*', '?'); empty matches every model,
	// including models added to the config later.
	Models []string
	// Workloads are workload globs; empty matches every workload.
	Workloads []string
	// Keys and Teams are key and team names; empty matches all.
	Keys, Teams []string
}

// PolicySpec constrains the routing of one workload.
type PolicySpec struct {
	// Workload is the workload the policy governs; "default" governs every
	// workload without a policy of its own.
	Workload string
	// Models are the client-model globs allowed; empty allows all.
	Models []string
	// Providers are the providers allowed; empty allows all. It filters
	// only: the route's own order is kept.
	Providers []string
	// Require are capabilities every candidate must have, on top of those
	// the request needs.
	Require []string
	// Regions are the provider regions allowed; empty allows all.
	Regions []string
	// MaxPricePerMTok caps the blended price in micro-dollars per million
	// tokens (the request's input/output mix, 1:1 when unknown); 0 is no
	// cap. A candidate of unknown price is refused when a cap is set.
	MaxPricePerMTok int64
	// AllowFamilyFallback lets candidates of another model family serve.
	AllowFamilyFallback bool
	// Fallback maps a client model to further models whose tiers follow
	// its own, in order.
	Fallback map[string][]string
}

// HealthSpec tunes the per provider+model circuit breaker. Zero fields take
// the defaults.
type HealthSpec struct {
	// ConsecutiveFailures opens the breaker; default 5.
	ConsecutiveFailures int
	// ErrorRate opens the breaker when the failure share over Window
	// exceeds it, given MinRequests; default 0.5.
	ErrorRate float64
	// MinRequests is the least number of outcomes in Window for ErrorRate
	// to apply; default 20.
	MinRequests int
	// Window is the sliding window of the error rate; default 1m.
	Window time.Duration
	// Cooldown is how long an open breaker stays open before one probe;
	// default 30s.
	Cooldown time.Duration
	// LatencyAlpha is the weight of a new sample in the time-to-first-byte
	// moving average; default 0.3.
	LatencyAlpha float64
}

func (h HealthSpec) withDefaults() HealthSpec {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&h.ConsecutiveFailures, 5)
	def(&h.MinRequests, 20)
	if h.ErrorRate == 0 {
		h.ErrorRate = 0.5
	}
	if h.Window == 0 {
		h.Window = time.Minute
	}
	if h.Cooldown == 0 {
		h.Cooldown = 30 * time.Second
	}
	if h.LatencyAlpha == 0 {
		h.LatencyAlpha = 0.3
	}
	return h
}

// Validate reports every problem in s, joined, each prefixed with its field
// path (e.g. "models[2].tiers[0].members[1].provider").
func (s *Spec) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	providers := map[string]bool{}
	for i, p := range s.Providers {
		at := fmt.Sprintf("providers[%d]", i)
		checkName(bad, at+".name", p.Name)
		if providers[p.Name] {
			bad("%s.name: duplicate provider %q", at, p.Name)
		}
		providers[p.Name] = true
		for j, c := range p.Capabilities {
			if _, ok := ParseCap(c); !ok {
				bad("%s.capabilities[%d]: unknown capability %q (want tools, vision or json)", at, j, c)
			}
		}
		if p.Capacity.RPM < 0 || p.Capacity.TPM < 0 {
			bad("%s.capacity: must not be negative", at)
		}
		for m, pr := range p.Prices {
			if pr.Input < 0 || pr.Output < 0 {
				bad("%s.prices[%q]: must not be negative", at, m)
			}
		}
	}
	models := map[string]bool{}
	for i, m := range s.Models {
		at := fmt.Sprintf("models[%d]", i)
		if m.Name == "" {
			bad("%s.name: empty", at)
		}
		if models[m.Name] {
			bad("%s.name: duplicate model %q", at, m.Name)
		}
		models[m.Name] = true
		if len(m.Tiers) == 0 {
			bad("%s.tiers: a model needs at least one tier", at)
		}
		seen := map[[2]string]bool{}
		for j, t := range m.Tiers {
			tat := fmt.Sprintf("%s.tiers[%d]", at, j)
			if len(t.Members) == 0 {
				bad("%s.members: a tier needs at least one member", tat)
			}
			if st, ok := strategies[t.Strategy]; !ok {
				bad("%s.strategy: unknown strategy %q (want ordered, weighted, least-latency, least-busy or cheapest)", tat, t.Strategy)
			} else if err := st.Validate(t.Members); err != nil {
				bad("%s: %w", tat, err)
			}
			for k, mem := range t.Members {
				if !providers[mem.Provider] {
					bad("%s.members[%d].provider: unknown provider %q", tat, k, mem.Provider)
				}
				key := [2]string{mem.Provider, upstream(mem.Model, m.Name)}
				if seen[key] {
					bad("%s.members[%d]: %s/%s is listed twice for model %q", tat, k, key[0], key[1], m.Name)
				}
				seen[key] = true
			}
		}
	}
	agreements := map[string]bool{}
	for i, a := range s.Agreements {
		at := fmt.Sprintf("agreements[%d]", i)
		checkName(bad, at+".name", a.Name)
		if agreements[a.Name] {
			bad("%s.name: duplicate agreement %q", at, a.Name)
		}
		agreements[a.Name] = true
		if !providers[a.Holder] {
			bad("%s.holder: unknown provider %q", at, a.Holder)
		}
		if !a.From.IsZero() && !a.Until.IsZero() && !a.Until.After(a.From) {
			bad("%s.until: %s is not after from %s", at, a.Until.Format(time.RFC3339), a.From.Format(time.RFC3339))
		}
	}
	for i, x := range s.Restrictions {
		at := fmt.Sprintf("restrictions[%d]", i)
		checkName(bad, at+".name", x.Name)
		if agreements[x.Name] {
			bad("%s.name: duplicate agreement %q", at, x.Name)
		}
		agreements[x.Name] = true
		if x.Kind != Exclusive && x.Kind != Licensed {
			bad("%s.kind: unknown kind %d", at, x.Kind)
		}
		if x.Kind == Exclusive && len(x.Providers) == 0 {
			bad("%s.providers: an exclusivity names the providers allowed", at)
		}
		if x.Kind == Licensed && x.HolderKey == "" && x.HolderTeam == "" {
			bad("%s: a licence names its holder", at)
		}
		for j, name := range x.Providers {
			if !providers[name] {
				bad("%s.providers[%d]: unknown provider %q", at, j, name)
			}
		}
		if !x.From.IsZero() && !x.Until.IsZero() && !x.Until.After(x.From) {
			bad("%s.until: %s is not after from %s", at, x.Until.Format(time.RFC3339), x.From.Format(time.RFC3339))
		}
	}
	workloads := map[string]bool{}
	for i, p := range s.Policies {
		at := fmt.Sprintf("policies[%d]", i)
		if p.Workload == "" {
			bad("%s.workload: empty", at)
		}
		if workloads[p.Workload] {
			bad("%s.workload: duplicate policy for workload %q", at, p.Workload)
		}
		workloads[p.Workload] = true
		for j, name := range p.Providers {
			if !providers[name] {
				bad("%s.providers[%d]: unknown provider %q", at, j, name)
			}
		}
		for j, c := range p.Require {
			if _, ok := ParseCap(c); !ok {
				bad("%s.require[%d]: unknown capability %q", at, j, c)
			}
		}
		if p.MaxPricePerMTok < 0 {
			bad("%s.max_price_per_mtok: must not be negative", at)
		}
		for from, tos := range p.Fallback {
			if !models[from] {
				bad("%s.fallback[%q]: unknown model", at, from)
			}
			for _, to := range tos {
				if !models[to] {
					bad("%s.fallback[%q]: unknown model %q", at, from, to)
				}
			}
		}
	}
	h := s.Health
	if h.ConsecutiveFailures < 0 || h.MinRequests < 0 || h.Window < 0 || h.Cooldown < 0 {
		bad("health: values must not be negative")
	}
	if h.ErrorRate < 0 || h.ErrorRate > 1 || h.LatencyAlpha < 0 || h.LatencyAlpha > 1 {
		bad("health: error_rate and latency_alpha must be within [0, 1]")
	}
	return errors.Join(errs...)
}

// checkName requires a non-empty name safe to put in a header value.
func checkName(bad func(string, ...any), at, name string) {
	if name == "" {
		bad("%s: empty", at)
		return
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			bad("%s: %q may hold only letters, digits, '.', '_' and '-'", at, name)
			return
		}
	}
}

// upstream returns the upstream model name of a member.
func upstream(model, client string) string {
	if model == "" {
		return client
	}
	return model
}
