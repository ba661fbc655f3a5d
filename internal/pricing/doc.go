// Package pricing holds the gateway's price catalog and its money type.
//
// Money is an exact decimal (github.com/cockroachdb/apd/v3 underneath):
// every price, cost and sum is computed without rounding, and money is
// written as a decimal string, in JSON and YAML alike, never as a float.
//
// A Catalog maps (provider, model) to a list of dated prices; Lookup
// returns the price in force at a given instant without allocating. The
// built-in catalog (catalog.yaml, embedded) carries list prices with the
// date and pages they were taken from; configuration extends or overrides
// it with Catalog.With.
//
// Cost turns a Usage and a Price into Money. Prices are in USD per one
// million tokens, so the cost of n tokens at price p is n*p/10^6, which a
// decimal represents exactly.
package pricing
