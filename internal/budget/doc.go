// Package budget defines spend budgets and the Store contract that reserves
// money against them before a request runs and settles the actual cost after.
//
// # Money
//
// Amounts are [Micros]: int64 micro-dollars (1e-6 USD), exact and free of
// floating point. The int64 range is ±$9,223,372,036,854.775807 (about $9.2
// trillion). Callers convert prices to Micros rounding UP to the next
// micro-dollar, both for the maximum amount reserved and for the actual amount
// settled, so that hard limits stay conservative: rounding can only make the
// gateway refuse slightly earlier, never overspend.
//
// # Reservations
//
// A request first calls [Store.Reserve] with the most it can cost. Reserve is
// all-or-nothing across every budget in the request (for example the API
// key's budget and its team's budget): for each Hard budget,
// settled + reserved + amount must stay ≤ limit, otherwise nothing is
// reserved anywhere and an [*ExceededError] names the budget that refused.
// Soft budgets are always charged; the [Reservation] lists the soft budgets
// that went over so the caller can alert.
//
// When the request finishes, [Store.Settle] replaces the hold by the actual
// cost, or [Store.Release] drops it (the request never reached a provider).
// Both are idempotent per reservation. The actual cost may exceed the
// reservation (a provider overran max_tokens, say): Settle records it anyway,
// because the spend happened and the ledger must be exact. The invariant
// "settled ≤ limit" for Hard budgets therefore rests on the caller reserving
// the true maximum a request can cost.
//
// A reservation that is neither settled nor released within its TTL expires
// and its hold is returned to the budget, so a crashed gateway replica cannot
// lock a budget forever. A Settle that arrives after expiry still records the
// spend.
//
// Implementations: budget/membudget (one process) and budget/redisbudget
// (shared by gateway replicas). budget/budgettest is the conformance suite
// both pass.
package budget
