package redisbudget_test

import (
	"sync"
	"testing"

	"github.com/multipolar/multipolar/internal/budget"
	"github.com/multipolar/multipolar/internal/budget/budgettest"
	"github.com/multipolar/multipolar/internal/budget/redisbudget"
	"github.com/multipolar/multipolar/internal/testutil/redistest"
)

func TestConformance(t *testing.T) {
	redistest.Client(t) // skip early without Redis
	var (
		mu       sync.Mutex
		prefixes = map[*testing.T]string{}
	)
	budgettest.Run(t, func(t *testing.T) budget.Store {
		c := redistest.Client(t) // one client per call: one per replica
		mu.Lock()
		prefix, ok := prefixes[t]
		if !ok {
			prefix = redistest.Prefix(t, c)
			prefixes[t] = prefix
		}
		mu.Unlock()
		s, err := redisbudget.New(redisbudget.Options{Client: c, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
