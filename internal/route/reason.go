package route

import (
	"strings"

	"github.com/multipolar/multipolar/internal/llm"
)

// Caps is a set of capabilities a request needs or a provider offers.
type Caps uint8

// Capabilities.
const (
	// CapTools: function/tool calling.
	CapTools Caps = 1 << iota
	// CapVision: image inputs.
	CapVision
	// CapJSON: structured (JSON object or JSON schema) output.
	CapJSON
)

var capNames = [...]struct {
	c    Caps
	name string
}{{CapTools, "tools"}, {CapVision, "vision"}, {CapJSON, "json"}}

// ParseCap returns the capability named name ("tools", "vision", "json").
func ParseCap(name string) (Caps, bool) {
	for _, n := range capNames {
		if n.name == name {
			return n.c, true
		}
	}
	return 0, false
}

// String lists c's names separated by commas, e.g. "tools,vision".
func (c Caps) String() string {
	var b strings.Builder
	for _, n := range capNames {
		if c&n.c != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(n.name)
		}
	}
	return b.String()
}

// NeedsOf returns the capabilities a canonical request needs: tools when it
// declares tools, vision when any part is an image, json when it asks for
// structured output. It does not allocate.
func NeedsOf(r *llm.Request) Caps {
	var c Caps
	if len(r.Tools) > 0 {
		c |= CapTools
	}
	if r.ResponseFormat != nil && r.ResponseFormat.Type != llm.FormatText {
		c |= CapJSON
	}
	for i := range r.System {
		if r.System[i].Type == llm.PartImage {
			c |= CapVision
		}
	}
	for i := range r.Messages {
		for j := range r.Messages[i].Content {
			if r.Messages[i].Content[j].Type == llm.PartImage {
				c |= CapVision
			}
		}
	}
	return c
}

// Reason says why a provider was passed over. The constants are in the
// order Plan checks them, which is also the order used to name the
// constraint of an *Error.
type Reason uint8

// Reasons.
const (
	// Admitted is not a refusal: Begin returns it when the attempt may go.
	Admitted Reason = iota
	// NotServed: a first-refusal holder does not serve the model (it is in
	// none of the model's tiers and its ProviderSpec.Serves does not match).
	NotServed
	// Unlicensed: a licence of the caller covers the provider and none
	// that does is in its window.
	Unlicensed
	// NotExclusive: an exclusivity in its window reserves the request for
	// other providers.
	NotExclusive
	// ProviderNotAllowed: the workload policy does not list the provider.
	ProviderNotAllowed
	// FamilyNotAllowed: the candidate's model family differs from the client
	// model's and the policy does not allow family fallback.
	FamilyNotAllowed
	// MissingCapability: the provider lacks a capability the request needs
	// or the policy requires.
	MissingCapability
	// RegionNotAllowed: the provider's region is not in the policy's list.
	RegionNotAllowed
	// PriceTooHigh: the blended price exceeds the policy's maximum, or is
	// unknown while the policy sets one.
	PriceTooHigh
	// CapacityExhausted: the provider's provisioned RPM or TPM for the last
	// minute would be exceeded.
	CapacityExhausted
	// CircuitOpen: the provider+model breaker is open, or half-open with its
	// one probe already out.
	CircuitOpen
	// CoolingDown: the provider+model answered 429 with a Retry-After that
	// has not yet passed.
	CoolingDown
	// OutsideWindow: an agreement matching the request is outside its
	// [From, Until) window. Reported by Explain only.
	OutsideWindow
	// ModelNotAllowed: the workload policy does not allow the client model
	// (an *Error only).
	ModelNotAllowed
	// UnknownModel: no model of that name is configured (an *Error only).
	UnknownModel

	numReasons
)

var reasonNames = [numReasons]string{
	"admitted", "not_served", "unlicensed", "not_exclusive", "provider_not_allowed", "family_not_allowed",
	"missing_capability", "region_not_allowed", "price_too_high",
	"capacity_exhausted", "circuit_open", "cooling_down", "outside_window",
	"model_not_allowed", "unknown_model",
}

var constraintNames = [numReasons]string{
	"", "served", "licence", "exclusivity", "provider", "family", "capability", "region", "price",
	"capacity", "circuit", "cooldown", "window", "model", "model",
}

// String returns the reason's snake_case name, as used in metrics labels
// and the route header.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Constraint returns the short name of the constraint behind r ("region",
// "price", "capacity", ...), as in Error.Constraint.
func (r Reason) Constraint() string {
	if r < numReasons {
		return constraintNames[r]
	}
	return "unknown"
}

// Outcome classifies an upstream attempt for Observe. The zero value is
// not an outcome and is ignored. The engine maps its own outcomes: served
// → Success, 401/403 → ServerError; canceled and unsupported attempts say
// nothing about the upstream and should not be observed.
type Outcome uint8

// Outcomes.
const (
	// Success: the upstream answered.
	Success Outcome = iota + 1
	// RateLimited: the upstream answered 429. Neutral for the breaker; a
	// positive retry-after cools the provider+model down.
	RateLimited
	// ServerError: the upstream answered 5xx (or refused our credentials).
	ServerError
	// Timeout: no first byte within the timeout.
	Timeout
	// ConnectError: the upstream could not be reached.
	ConnectError
)

// failure reports whether o counts against the breaker.
func (o Outcome) failure() bool { return o == ServerError || o == Timeout || o == ConnectError }
