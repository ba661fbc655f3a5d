package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/pricing"
)

func TestQueryValidate(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		q    Query
		ok   bool
	}{
		{"empty", Query{}, true},
		{"all fields", Query{GroupBy: GroupFields}, true},
		{"unknown", Query{GroupBy: []string{"colour"}}, false},
		{"repeated", Query{GroupBy: []string{"model", "model"}}, false},
		{"inverted", Query{From: now, To: now.Add(-time.Second)}, false},
		{"empty range", Query{From: now, To: now}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.q.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadQuery)) {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestTotal(t *testing.T) {
	rows := []Row{
		{Model: "a", Requests: 1, Records: 2, InputTokens: 3, OutputTokens: 4, CachedTokens: 1, Cost: pricing.MustMoney("0.1"), BillableCost: pricing.MustMoney("0.05")},
		{Model: "b", Requests: 2, Records: 2, InputTokens: 5, OutputTokens: 6, CachedTokens: 2, Cost: pricing.MustMoney("0.2"), BillableCost: pricing.MustMoney("0.2")},
	}
	got := Total(rows)
	if got.Requests != 3 || got.Records != 4 || got.InputTokens != 8 || got.OutputTokens != 10 || got.CachedTokens != 3 ||
		got.Cost.String() != "0.3" || got.BillableCost.String() != "0.25" || got.Model != "" {
		t.Errorf("Total() = %+v", got)
	}
}
