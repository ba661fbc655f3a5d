package route

import (
	"errors"
	"math"
)

// selector orders the eligible members of one tier in place. There is one
// struct per strategy, as in Caddy's selection policies; the Router holds
// one selector per tier, chosen when it is compiled. order must not
// allocate and must be safe for concurrent use.
type selector interface {
	order(refs []ref, req *Request, rnd func() float64)
}

// strategy is a selector that can check a tier's members.
type strategy interface {
	selector
	// Validate reports a problem with members under this strategy.
	Validate(members []MemberSpec) error
}

// strategies are the strategies by TierSpec.Strategy.
var strategies = map[string]strategy{
	"":                   ordered{},
	StrategyOrdered:      ordered{},
	StrategyWeighted:     weighted{},
	StrategyLeastLatency: leastLatency{},
	StrategyLeastBusy:    leastBusy{},
	StrategyCheapest:     cheapest{},
}

// ref is a member during one decision, with its sort key.
type ref struct {
	m   *member
	key int64
}

var errWeightUnused = errors.New("weights apply only to the weighted strategy")

func noWeights(members []MemberSpec) error {
	for _, m := range members {
		if m.Weight != 0 {
			return errWeightUnused
		}
	}
	return nil
}

// ordered keeps the members in the order listed.
type ordered struct{}

func (ordered) order([]ref, *Request, func() float64) {}

// Validate rejects weights, which ordered ignores.
func (ordered) Validate(members []MemberSpec) error { return noWeights(members) }

// weighted draws members at random in proportion to their weights, without
// replacement: the first is the pick, the rest the failover order.
type weighted struct{}

func (weighted) order(refs []ref, _ *Request, rnd func() float64) {
	var total int64
	for i := range refs {
		total += int64(refs[i].m.weight)
	}
	for i := 0; i < len(refs)-1; i++ {
		x := int64(rnd() * float64(total))
		j := i
		for ; j < len(refs)-1; j++ {
			x -= int64(refs[j].m.weight)
			if x < 0 {
				break
			}
		}
		total -= int64(refs[j].m.weight)
		refs[i], refs[j] = refs[j], refs[i]
	}
}

// Validate requires every weight to be positive.
func (weighted) Validate(members []MemberSpec) error {
	for _, m := range members {
		if m.Weight <= 0 {
			return errors.New("weighted members need a positive weight")
		}
	}
	return nil
}

// leastLatency orders by the moving average of time to first byte.
// Members without a sample sort first so that they get one.
type leastLatency struct{}

func (leastLatency) order(refs []ref, _ *Request, _ func() float64) {
	for i := range refs {
		refs[i].key = refs[i].m.slot.ttfb.Load()
	}
	sortRefs(refs)
}

// Validate rejects weights.
func (leastLatency) Validate(members []MemberSpec) error { return noWeights(members) }

// leastBusy orders by attempts in flight.
type leastBusy struct{}

func (leastBusy) order(refs []ref, _ *Request, _ func() float64) {
	for i := range refs {
		refs[i].key = refs[i].m.slot.inflight.Load()
	}
	sortRefs(refs)
}

// Validate rejects weights.
func (leastBusy) Validate(members []MemberSpec) error { return noWeights(members) }

// cheapest orders by the cost of the request's estimated tokens; members of
// unknown price come last.
type cheapest struct{}

func (cheapest) order(refs []ref, req *Request, _ func() float64) {
	in, out := mix(req)
	for i := range refs {
		p := refs[i].m.price
		if !p.known() {
			refs[i].key = math.MaxInt64
			continue
		}
		refs[i].key = in*p.Input + out*p.Output
	}
	sortRefs(refs)
}

// Validate rejects weights.
func (cheapest) Validate(members []MemberSpec) error { return noWeights(members) }

// sortRefs sorts by key, keeping the listed order among equals (insertion
// sort: tiers are short, and sort.Slice would allocate).
func sortRefs(refs []ref) {
	for i := 1; i < len(refs); i++ {
		for j := i; j > 0 && refs[j].key < refs[j-1].key; j-- {
			refs[j], refs[j-1] = refs[j-1], refs[j]
		}
	}
}

// mix returns the request's estimated input and output tokens, or 1:1 when
// the split is unknown.
func mix(req *Request) (in, out int64) {
	if req.EstOutputTokens <= 0 || req.EstTokens <= 0 {
		return 1, 1
	}
	out = min(req.EstOutputTokens, req.EstTokens)
	return req.EstTokens - out, out
}

// blended returns p's price per million tokens at the request's mix.
func blended(p Price, req *Request) int64 {
	in, out := mix(req)
	return (in*p.Input + out*p.Output) / (in + out)
}
