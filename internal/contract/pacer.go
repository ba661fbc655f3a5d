package contract

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multipolar/multipolar/internal/pricing"
)

// Pacer holds the live burn-down of every commitment and tells the router
// how far behind schedule each provider's commitments are. Burn is kept in
// micro-dollars: pacing is a preference between equally good candidates,
// so a rounding to the micro-dollar cannot matter; the statements that
// settle money are computed exactly from the ledger (see Settle).
//
// Each replica adds its own records as it serves them and reloads the
// ledger's totals on Refresh, which brings in what other replicas spent.
type Pacer struct {
	// mu serialises Refresh and guards the tallies.
	mu         sync.Mutex
	byProvider map[string][]*live
	byIndex    [][]*live // by route provider index
	lives      []*live
}

// live is one commitment's burn state.
type live struct {
	a               *Agreement
	amount, minimum int64 // micro-dollars
	from, until     int64 // Unix nanoseconds
	spent           atomic.Int64
	// periodSpent is the spend in the minimums period starting at
	// periodStart (Unix nanoseconds).
	periodSpent, periodStart atomic.Int64
	alert                    atomic.Bool
	// window and period are the ledger tallies Refresh keeps.
	window, period tally
}

func newPacer(s *Set, prev *Pacer) *Pacer {
	p := &Pacer{byProvider: map[string][]*live{}, byIndex: make([][]*live, len(s.providers))}
	if prev != nil {
		prev.mu.Lock()
		defer prev.mu.Unlock()
	}
	index := map[string]int{}
	for i, name := range s.providers {
		index[name] = i
	}
	for _, a := range s.Agreements {
		if a.Kind != Commitment {
			continue
		}
		l := &live{a: a, from: a.From.UnixNano(), until: a.Until.UnixNano()}
		l.amount, _ = a.Amount.CeilMicros()
		l.minimum, _ = a.Minimum.CeilMicros()
		if prev != nil {
			for _, o := range prev.lives {
				if o.a.Name == a.Name {
					l.spent.Store(o.spent.Load())
					l.periodSpent.Store(o.periodSpent.Load())
					l.periodStart.Store(o.periodStart.Load())
					l.alert.Store(o.alert.Load())
					if o.a.From.Equal(a.From) && slices.Equal(o.a.providers, a.providers) {
						l.window, l.period = o.window, o.period
					}
				}
			}
		}
		p.lives = append(p.lives, l)
		for _, name := range a.providers {
			p.byProvider[name] = append(p.byProvider[name], l)
			if i, ok := index[name]; ok {
				p.byIndex[i] = append(p.byIndex[i], l)
			}
		}
	}
	return p
}

// Active reports whether any commitment exists, so the router can skip
// pacing entirely without one.
func (p *Pacer) Active() bool { return len(p.lives) > 0 }

// Behind implements route.Pacer: the largest share by which a commitment
// of the provider is behind its schedule at now; 0 when on pace.
func (p *Pacer) Behind(provider int, now int64) float64 {
	if provider < 0 || provider >= len(p.byIndex) {
		return 0
	}
	worst := 0.0
	for _, l := range p.byIndex[provider] {
		if b := l.behind(now); b > worst {
			worst = b
		}
	}
	return worst
}

func (l *live) behind(now int64) float64 {
	if now < l.from || now >= l.until || l.amount <= 0 {
		return 0
	}
	if l.minimum > 0 {
		ps, pe := periodBounds(l.a.MinimumPeriod, now)
		spent := int64(0)
		if l.periodStart.Load() == ps {
			spent = l.periodSpent.Load()
		}
		expected := float64(l.minimum) * float64(now-ps) / float64(pe-ps)
		return (expected - float64(spent)) / float64(l.minimum)
	}
	expected := float64(l.amount) * float64(now-l.from) / float64(l.until-l.from)
	return (expected - float64(l.spent.Load())) / float64(l.amount)
}

// periodBounds returns the calendar period (UTC) of the kind named that
// contains now, as Unix nanoseconds. It does not allocate.
func periodBounds(period string, now int64) (int64, int64) {
	t := time.Unix(0, now).UTC()
	y, m := t.Year(), t.Month()
	var start, end time.Time
	switch period {
	case "monthly":
		start = time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		end = start.AddDate(0, 1, 0)
	case "quarterly":
		start = time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, time.UTC)
		end = start.AddDate(0, 3, 0)
	default: // yearly
		start = time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		end = start.AddDate(1, 0, 0)
	}
	return start.UnixNano(), end.UnixNano()
}

// Add counts a record's cost against the commitments of provider in whose
// window at falls. It does not allocate.
func (p *Pacer) Add(provider string, at time.Time, cost pricing.Money) {
	lives := p.byProvider[provider]
	if len(lives) == 0 || cost.Sign() <= 0 {
		return
	}
	micros, _ := cost.CeilMicros()
	now := at.UnixNano()
	for _, l := range lives {
		if now < l.from || now >= l.until {
			continue
		}
		l.spent.Add(micros)
		if l.minimum > 0 {
			ps, _ := periodBounds(l.a.MinimumPeriod, now)
			for {
				cur := l.periodStart.Load()
				if cur == ps {
					l.periodSpent.Add(micros)
					break
				}
				if cur > ps {
					break // a record from a period already closed
				}
				if l.periodStart.CompareAndSwap(cur, ps) {
					l.periodSpent.Store(micros)
					break
				}
			}
		}
	}
}

// SpendFunc returns the exact cost the ledger holds for records of the
// providers in [from, to).
type SpendFunc func(ctx context.Context, providers []string, from, to time.Time) (pricing.Money, error)

// RefreshLag is how far behind now the ledger's totals are taken as final.
// Each Refresh sums only the records from the previous final instant on,
// so a refresh costs a few minutes of records however long the commitment
// has run; a record committed more than RefreshLag after its time (none
// is, short of a ledger outage) is missed by the pacer, never by the
// statements, which read the ledger whole.
const RefreshLag = 5 * time.Minute

// tally is the ledger's spend over [from, now), in micro-dollars: the part
// before settledTo summed once, the rest summed again on each refresh.
type tally struct {
	from, settledTo time.Time
	settled         int64
}

func (t *tally) total(ctx context.Context, spend SpendFunc, providers []string, to time.Time) (int64, error) {
	if t.settledTo.IsZero() {
		t.settledTo = t.from
	}
	if final := to.Add(-RefreshLag); final.After(t.settledTo) {
		m, err := spend(ctx, providers, t.settledTo, final)
		if err != nil {
			return 0, err
		}
		micros, _ := m.CeilMicros()
		t.settled += micros
		t.settledTo = final
	}
	if !to.After(t.settledTo) {
		return t.settled, nil
	}
	m, err := spend(ctx, providers, t.settledTo, to)
	if err != nil {
		return 0, err
	}
	micros, _ := m.CeilMicros()
	return t.settled + micros, nil
}

// Refresh reloads every commitment's burn from the ledger through spend,
// as of now.
func (p *Pacer) Refresh(ctx context.Context, spend SpendFunc, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lives {
		to := now
		if a := l.a; !a.Until.IsZero() && a.Until.Before(to) {
			to = a.Until
		}
		if !to.After(l.a.From) {
			continue
		}
		if l.window.from.IsZero() {
			l.window.from = l.a.From
		}
		total, err := l.window.total(ctx, spend, l.a.providers, to)
		if err != nil {
			return err
		}
		l.spent.Store(total)
		if l.minimum > 0 {
			ps, _ := periodBounds(l.a.MinimumPeriod, now.UnixNano())
			start := time.Unix(0, ps).UTC()
			if start.Before(l.a.From) {
				start = l.a.From
			}
			if !l.period.from.Equal(start) {
				l.period = tally{from: start}
			}
			inPeriod, err := l.period.total(ctx, spend, l.a.providers, to)
			if err != nil {
				return err
			}
			l.periodStart.Store(ps)
			l.periodSpent.Store(inPeriod)
		}
	}
	return nil
}

// Burn is a commitment's burn-down as of an instant, in micro-dollars
// (for metrics and alerts; statements carry the exact figures).
type Burn struct {
	Name string
	// Amount is the commitment; Spent the burn to date; Schedule what the
	// linear schedule expects by now.
	Amount, Spent, Schedule int64
	// ProjectedShortfall is Amount minus the spend projected at the end at
	// the rate so far (0 when on course).
	ProjectedShortfall int64
	// Alert reports that ProjectedShortfall exceeds the alert threshold;
	// Changed that it did not at the previous BurnDown.
	Alert, Changed bool
}

// BurnDown reports every commitment in its window at now.
func (p *Pacer) BurnDown(now time.Time) []Burn {
	var out []Burn
	n := now.UnixNano()
	for _, l := range p.lives {
		if n < l.from || n >= l.until {
			continue
		}
		b := Burn{Name: l.a.Name, Amount: l.amount, Spent: l.spent.Load()}
		frac := float64(n-l.from) / float64(l.until-l.from)
		b.Schedule = int64(float64(l.amount) * frac)
		if frac > 0 {
			projected := float64(b.Spent) / frac
			b.ProjectedShortfall = max(0, l.amount-int64(projected))
		}
		threshold := l.a.AlertShortfall.Float() * float64(l.amount)
		b.Alert = float64(b.ProjectedShortfall) > threshold
		b.Changed = l.alert.Swap(b.Alert) != b.Alert
		out = append(out, b)
	}
	return out
}
