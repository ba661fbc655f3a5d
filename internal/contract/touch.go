package contract

import (
	"slices"
	"sync"

	"github.com/multipolar/multipolar/internal/ledger"
)

// Touches reports whether a touches r: r is in a's window and
//   - first_refusal: r's request is in scope (its holder was offered it);
//   - exclusivity: r's request is in scope (only the named providers could
//     serve it);
//   - licence: r's key or team holds it and r's request is in scope;
//   - commitment: r's provider burns it down;
//   - revenue_share: r is in its base;
//   - price_terms: r's provider and model are discounted by it.
func (a *Agreement) Touches(r *ledger.Record) bool {
	return a.inWindow(r.Time) && (a.Kind != RevenueShare || r.Billable) && a.matches(r)
}

// matches is Touches without the window and, for a revenue share, without
// the billable test: what depends only on the record's names.
func (a *Agreement) matches(r *ledger.Record) bool {
	switch a.Kind {
	case FirstRefusal, Exclusivity:
		return a.scope.match("", r.Model, r.Model, r.Workload, r.Key, r.Team)
	case Licence:
		held := a.holder.Key != "" && a.holder.Key == r.Key || teamOf(a.holder) != "" && teamOf(a.holder) == r.Team
		return held && a.scope.match(r.Provider, r.Model, r.Model, r.Workload, r.Key, r.Team)
	case Commitment:
		return slices.Contains(a.providers, r.Provider)
	case RevenueShare:
		return a.base.match(r.Provider, r.Model, r.UpstreamModel, r.Workload, r.Key, r.Team)
	case PriceTerms:
		return slices.Contains(a.providers, r.Provider) && a.scope.match(r.Provider, r.Model, r.UpstreamModel, r.Workload, r.Key, r.Team)
	}
	return false
}

// Touch returns the names of the agreements that touch r, in config
// order. The slice is shared and must not be modified; once a combination
// has been seen, Touch does not allocate.
func (s *Set) Touch(r *ledger.Record) []string {
	if len(s.touchers) == 0 {
		return nil
	}
	if len(s.touchers) > 64 {
		var out []string
		for _, a := range s.touchers {
			if a.Touches(r) {
				out = append(out, a.Name)
			}
		}
		return out
	}
	var mask uint64
	for i, a := range s.touchers {
		if a.Touches(r) {
			mask |= 1 << i
		}
	}
	if mask == 0 {
		return nil
	}
	return s.names.get(mask, s.touchers)
}

// internTable maps a set of agreements (a bit mask over Set.touchers) to
// one shared slice of their names.
type internTable struct {
	mu sync.RWMutex
	m  map[uint64][]string
}

func (t *internTable) init() { t.m = map[uint64][]string{} }

func (t *internTable) get(mask uint64, all []*Agreement) []string {
	t.mu.RLock()
	names, ok := t.m[mask]
	t.mu.RUnlock()
	if ok {
		return names
	}
	for i, a := range all {
		if mask&(1<<i) != 0 {
			names = append(names, a.Name)
		}
	}
	t.mu.Lock()
	t.m[mask] = names
	t.mu.Unlock()
	return names
}
