package config

import (
	"fmt"
	"path"
	"slices"
)

// Policy constrains the routing of one workload's requests.
type Policy struct {
	// Workload names the workload ("default" applies to requests whose
	// workload has no policy of its own).
	Workload string `yaml:"workload"`
	// Models are globs of the client models the workload may use; empty
	// means all.
	Models []string `yaml:"models"`
	// Providers the workload may be served by; empty means all.
	Providers []string `yaml:"providers"`
	// Require lists capabilities every candidate must have: tools, vision,
	// json (on top of what the request itself needs).
	Require []string `yaml:"require"`
	// Regions a candidate's provider must be in (data residency); empty
	// means any.
	Regions []string `yaml:"regions"`
	// MaxPricePerMTok caps a candidate's blended price, USD per million
	// tokens.
	MaxPricePerMTok Decimal `yaml:"max_price_per_mtok"`
	// AllowFamilyFallback lets a candidate of another model family serve.
	AllowFamilyFallback bool `yaml:"allow_family_fallback"`
	// Fallback maps a client model to other models to try after its own
	// routes.
	Fallback map[string][]string `yaml:"fallback"`
}

// Routing tunes retries and provider health.
type Routing struct {
	// Retries are extra rounds over a model's candidates after every one
	// failed retryably (429, 5xx, connection errors, timeouts), with
	// exponential backoff and jitter, never sooner than an upstream's
	// Retry-After, within timeouts.request. Default 0: failover across the
	// route is immediate, and the official SDKs already retry on their own,
	// so a gateway that also retried would multiply the waits.
	Retries *int `yaml:"retries"`
	// BackoffBase and BackoffMax shape the backoff. Defaults 250ms and 5s.
	BackoffBase Duration `yaml:"backoff_base"`
	BackoffMax  Duration `yaml:"backoff_max"`
	// Breaker opens a provider and model's circuit.
	Breaker Breaker `yaml:"breaker"`
}

// Breaker configures the circuit breaker per provider and model.
type Breaker struct {
	// ConsecutiveFailures opens the circuit. Default 5.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// ErrorRate (0..1) over Window opens it once MinRequests were seen.
	// Defaults 0.5, 1m, 20.
	ErrorRate   float64  `yaml:"error_rate"`
	Window      Duration `yaml:"window"`
	MinRequests int      `yaml:"min_requests"`
	// Cooldown keeps it open before a half-open probe. Default 30s.
	Cooldown Duration `yaml:"cooldown"`
}

// Capabilities routing knows.
var capabilities = []string{"tools", "vision", "json"}

func (v *validator) routing(c *Config, providers map[string]int) {
	v.agreements(c, providers)
	workloads := map[string]int{}
	for i := range c.Policies {
		pol, p := &c.Policies[i], fmt.Sprintf("policies[%d]", i)
		switch first, dup := workloads[pol.Workload]; {
		case pol.Workload == "":
			v.errorf(p+".workload", "required (\"default\" for requests whose workload has no policy)")
		case dup:
			v.errorf(p+".workload", "duplicate policy for workload %q (first at policies[%d])", pol.Workload, first)
		default:
			workloads[pol.Workload] = i
		}
		v.globs(p+".models", pol.Models)
		for j, name := range pol.Providers {
			if _, ok := providers[name]; !ok {
				v.errorf(fmt.Sprintf("%s.providers[%d]", p, j), "unknown provider %q", name)
			}
		}
		for j, cp := range pol.Require {
			if !slices.Contains(capabilities, cp) {
				v.errorf(fmt.Sprintf("%s.require[%d]", p, j), "unknown capability %q (want tools, vision or json)", cp)
			}
		}
	}
	for i := range c.Providers {
		for j, cp := range c.Providers[i].Capabilities {
			if !slices.Contains(capabilities, cp) {
				v.errorf(fmt.Sprintf("providers[%d].capabilities[%d]", i, j), "unknown capability %q (want tools, vision or json)", cp)
			}
		}
		v.globs(fmt.Sprintf("providers[%d].serves", i), c.Providers[i].Serves)
	}
	r := &c.Routing
	if r.Retries != nil && *r.Retries < 0 {
		v.errorf("routing.retries", "must not be negative")
	}
	if b := r.Breaker; b.ErrorRate < 0 || b.ErrorRate > 1 {
		v.errorf("routing.breaker.error_rate", "must be between 0 and 1")
	}
}

func (v *validator) globs(p string, globs []string) {
	for j, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			v.errorf(fmt.Sprintf("%s[%d]", p, j), "invalid glob %q: %v", g, err)
		}
	}
}

// RetryRounds is routing.retries with its default.
func (r Routing) RetryRounds() int {
	if r.Retries == nil {
		return 0
	}
	return *r.Retries
}

// Targets are the providers a route tier names: a group's members, or the
// tier itself.
func (r Route) Targets() []Route {
	if len(r.Members) > 0 {
		return r.Members
	}
	return []Route{r}
}
