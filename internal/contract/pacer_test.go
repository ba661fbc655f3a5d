package contract

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/pricing"
)

// ledgerSpend is a SpendFunc over in-memory records that logs each range
// asked for.
type ledgerSpend struct {
	recs  []spendRec
	asked [][2]time.Time
}

type spendRec struct {
	at       time.Time
	provider string
	cost     string
}

func (l *ledgerSpend) spend(_ context.Context, providers []string, from, to time.Time) (pricing.Money, error) {
	l.asked = append(l.asked, [2]time.Time{from, to})
	var acc pricing.Acc
	for _, r := range l.recs {
		if slices.Contains(providers, r.provider) && !r.at.Before(from) && r.at.Before(to) {
			acc.Add(pricing.MustMoney(r.cost))
		}
	}
	return acc.Money(), nil
}

// TestPacerRefresh: burn comes from the ledger, then only the records after
// the last final instant are summed again; Behind follows the schedule;
// BurnDown alerts once when the projection falls short.
func TestPacerRefresh(t *testing.T) {
	s := testSet(t)
	p := s.Pacer()
	oracle := -1
	for i, name := range s.providers {
		if name == "oracle" {
			oracle = i
		}
	}
	// oracle-commit: 10 USD over 2026-10-01 .. 2027-01-01 (92 days).
	l := &ledgerSpend{recs: []spendRec{
		{time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC), "oracle", "1"},
		{time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC), "gpu", "50"},
	}}
	now := time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC) // 46 of 92 days: schedule 5
	if err := p.Refresh(context.Background(), l.spend, now); err != nil {
		t.Fatal(err)
	}
	// oracle-commit is 0.4 behind (1 spent of 5 scheduled, of 10);
	// oracle-minimums 0.5 (nothing yet of November's 1, half the month
	// gone): the provider scores the larger.
	if got := p.Behind(oracle, now.UnixNano()); got < 0.499 || got > 0.501 {
		t.Errorf("Behind = %v, want 0.5", got)
	}
	// Served locally, then found in the ledger: counted once.
	p.Add("oracle", now, pricing.MustMoney("4"))
	if got := p.Behind(oracle, now.UnixNano()); got > 0 {
		t.Errorf("Behind after spending 5 = %v, want ≤ 0", got)
	}
	l.recs = append(l.recs, spendRec{now, "oracle", "4"})
	l.asked = nil
	later := now.Add(time.Hour)
	if err := p.Refresh(context.Background(), l.spend, later); err != nil {
		t.Fatal(err)
	}
	for _, r := range l.asked {
		if r[0].Before(now.Add(-RefreshLag)) {
			t.Errorf("second refresh summed [%v, %v): want nothing before the previous final instant", r[0], r[1])
		}
	}
	var found bool
	for _, b := range p.BurnDown(later) {
		if b.Name == "oracle-commit" {
			found = true
			if b.Spent != 5_000_000 || b.Alert {
				t.Errorf("burn = %+v, want 5 USD spent and no alert", b)
			}
		}
	}
	if !found {
		t.Fatal("no burn for oracle-commit")
	}
	// A month later with nothing spent the projection falls short: one alert.
	dec := time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC)
	if err := p.Refresh(context.Background(), l.spend, dec); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		for _, b := range p.BurnDown(dec) {
			if b.Name == "oracle-commit" && (!b.Alert || b.Changed != want) {
				t.Errorf("BurnDown #%d = %+v, want alert, changed %v", i, b, want)
			}
		}
	}
	// Minimums: the monthly tally follows the period.
	for _, b := range p.BurnDown(dec) {
		if b.Name == "oracle-minimums" && b.Spent != 5_000_000 {
			t.Errorf("oracle-minimums spent %d, want 5 USD", b.Spent)
		}
	}
	if got := p.Behind(oracle, dec.UnixNano()); got <= 0 {
		t.Errorf("Behind in December with nothing spent in it = %v, want > 0 (the monthly minimum)", got)
	}
}
