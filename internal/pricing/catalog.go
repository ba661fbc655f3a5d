package pricing

import (
	"slices"
	"time"
)

// AnyProvider is the provider name of a provider-agnostic entry. It applies
// to a model when no entry for the asked provider is in force.
const AnyProvider = "*"

// Entry is one dated price of a model at a provider.
type Entry struct {
	Provider string
	Model    string
	Price    Price
}

type modelKey struct{ provider, model string }

// Catalog maps (provider, model) to prices sorted by Price.From. A Catalog
// is immutable once built: it is safe for concurrent use, and With returns
// a new Catalog rather than changing the receiver. The zero value and nil
// are empty catalogs.
type Catalog struct {
	prices map[modelKey][]Price
}

// NewCatalog builds a catalog from entries. When two entries share a
// provider, model and From, the later one wins.
func NewCatalog(entries []Entry) *Catalog {
	return (*Catalog)(nil).With(entries)
}

// Lookup returns the price of model at provider in force at at: the one
// with the latest From not after at. If provider has no price for the
// model in force at at, the provider-agnostic entry (AnyProvider) is
// consulted. Lookup does not allocate.
func (c *Catalog) Lookup(provider, model string, at time.Time) (Price, bool) {
	if c == nil {
		return Price{}, false
	}
	if p, ok := inForce(c.prices[modelKey{provider, model}], at); ok {
		return p, true
	}
	if provider == AnyProvider {
		return Price{}, false
	}
	return inForce(c.prices[modelKey{AnyProvider, model}], at)
}

// inForce binary-searches prices (sorted by From) for the last From <= at.
// It is written out rather than using sort.Search so that no closure is
// built on the lookup path.
func inForce(prices []Price, at time.Time) (Price, bool) {
	lo, hi := 0, len(prices) // invariant: prices[:lo] start <= at, prices[hi:] start > at
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if prices[mid].From.After(at) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo == 0 {
		return Price{}, false
	}
	return prices[lo-1], true
}

// With returns a new catalog holding c's entries overridden and extended
// by entries: an entry with the same provider, model and From as an
// existing one replaces it; any other entry is added. c is not modified.
func (c *Catalog) With(entries []Entry) *Catalog {
	n := &Catalog{prices: make(map[modelKey][]Price)}
	if c != nil {
		for k, ps := range c.prices {
			n.prices[k] = ps // shared until written; copied below before any change
		}
	}
	touched := make(map[modelKey]bool)
	for _, e := range entries {
		k := modelKey{e.Provider, e.Model}
		ps := n.prices[k]
		if !touched[k] {
			ps = slices.Clone(ps)
			touched[k] = true
		}
		i, found := slices.BinarySearchFunc(ps, e.Price.From, func(p Price, t time.Time) int {
			return p.From.Compare(t)
		})
		if found {
			ps[i] = e.Price
		} else {
			ps = slices.Insert(ps, i, e.Price)
		}
		n.prices[k] = ps
	}
	return n
}

// Entries returns every entry of c, sorted by provider, model and From.
func (c *Catalog) Entries() []Entry {
	if c == nil {
		return nil
	}
	var out []Entry
	for k, ps := range c.prices {
		for _, p := range ps {
			out = append(out, Entry{Provider: k.provider, Model: k.model, Price: p})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Provider != b.Provider {
			if a.Provider < b.Provider {
				return -1
			}
			return 1
		}
		if a.Model != b.Model {
			if a.Model < b.Model {
				return -1
			}
			return 1
		}
		return a.Price.From.Compare(b.Price.From)
	})
	return out
}
