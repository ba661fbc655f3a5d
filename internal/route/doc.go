// Package route decides, per request, which providers to offer a call to and
// in what order, according to the organisation's agreements.
//
// A Router is compiled once per configuration snapshot by New from a Spec:
// every route (model × workload policy), every glob, every static policy
// verdict and every health slot is resolved there, so that Router.Plan does
// no heap work. The caller keeps one Plan per request (or per goroutine) and
// hands it back on each decision; its slices are reused.
//
// A decision runs in this order:
//
//  1. The workload's policy is looked up (Request.Workload, else the policy
//     named "default", else no constraints). A client model the policy does
//     not allow is an *Error with Reason ModelNotAllowed.
//  2. Each first-right-of-refusal agreement in its window whose scope matches
//     the model and workload offers the call to its holder first, whatever
//     the route's order, and removes the holder from the rest of the route.
//     A holder that cannot take the call is recorded in Plan.Skipped with
//     the reason and the agreement's name.
//  3. The model's tiers follow in order (then the policy's fallback models'
//     tiers); within a tier the tier's strategy orders the members that pass
//     every constraint; the others are recorded in Plan.Skipped.
//
// Constraints are checked in the order of the Reason constants: provider
// allowed, model family, capabilities, region, price, provisioned capacity,
// circuit breaker, 429 cool-down. When nothing is left, Plan returns an
// *Error naming the constraint that removed the last candidates.
//
// The engine reports back through Begin (before an attempt: reserves
// capacity, counts it in flight, claims a half-open probe), End (after it)
// and Observe (its outcome: feeds latency, the breaker and cool-downs).
// All of these are safe for concurrent use and allocation-free.
package route
