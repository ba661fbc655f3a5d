package membudget_test

import (
	"sync"
	"testing"

	"github.com/multipolar/multipolar/internal/budget"
	"github.com/multipolar/multipolar/internal/budget/budgettest"
	"github.com/multipolar/multipolar/internal/budget/membudget"
)

func TestConformance(t *testing.T) {
	var (
		mu     sync.Mutex
		stores = map[*testing.T]*membudget.Store{}
	)
	budgettest.Run(t, func(t *testing.T) budget.Store {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := stores[t]; ok {
			return s // replicas of one in-process store share it
		}
		s, err := membudget.New(membudget.Options{})
		if err != nil {
			t.Fatal(err)
		}
		stores[t] = s
		return s
	})
}
