package contract

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

// Period is the span a statement covers: [From, To).
type Period struct {
	// Name is as given: "2026-11" or "2026".
	Name     string
	From, To time.Time
}

// ParsePeriod parses a calendar month "YYYY-MM" or year "YYYY" (UTC).
func ParsePeriod(s string) (Period, error) {
	if t, err := time.Parse("2006-01", s); err == nil {
		return Period{Name: s, From: t, To: t.AddDate(0, 1, 0)}, nil
	}
	if t, err := time.Parse("2006", s); err == nil {
		return Period{Name: s, From: t, To: t.AddDate(1, 0, 0)}, nil
	}
	return Period{}, fmt.Errorf("period %q: want YYYY-MM or YYYY", s)
}

// Book settles one period: it takes the ledger's records in ledger order
// (Time, then RequestID, then Attempt), from Start to the period's end,
// and produces the Statement. Records before the period only advance the
// to-date figures (commitment burn, revenue share accrual, the minimums
// period in progress). A Book is not safe for concurrent use.
//
// Every figure is exact decimal arithmetic on the records' costs, except
// the schedule and projection of a commitment, which are pro-rata shares
// of its window rounded half-even to the micro-dollar.
//
// Discounts are on list cost and add up: a record's price_terms discount
// (the first price_terms agreement that applies) plus, on the part of its
// cost that a commitment still covers, the commitment's discount, never
// more than the cost itself.
type Book struct {
	set    *Set
	period Period
	asOf   time.Time
	from   int64 // period bounds, Unix nanoseconds
	to     int64
	groups map[groupKey]*group
	states []*state // by agreement, in config order

	byCounterparty map[string]*cpAcc
	chargeback     map[[2]string]*usageAcc
	last           ledger.ID
	lastTime       time.Time
	err            error
}

// groupKey is what an agreement's scope can look at.
type groupKey struct {
	provider, upstream, model, key, team, workload string
}

// group caches, per groupKey, the agreements whose scope matches
// regardless of time.
type group struct {
	terms, commitments, shares, touches []*state
	usage                               *usageAcc // counterparty line
}

// state is one agreement's running figures.
type state struct {
	a *Agreement
	// touched in the period.
	records, requests int64
	cost              pricing.Acc
	// commitment
	burnToDate, burnPeriod, discount pricing.Acc
	minimums                         map[int64]*pricing.Acc // by period start
	// revenue share
	accruedToDate, accruedPeriod, basePeriod pricing.Acc
	capReachedAt                             time.Time
	// price terms
	termsBase, termsDiscount pricing.Acc
	month                    int64
	monthSpend               pricing.Acc
}

// usageAcc sums usage.
type usageAcc struct {
	requests, records                      int64
	input, output, cached, cacheWrite, rsn int64
	list, discounts, share                 pricing.Acc
}

func (u *usageAcc) add(r *ledger.Record, discount pricing.Money) {
	u.records++
	if r.Billable {
		u.requests++
	}
	u.input += r.Usage.InputTokens
	u.output += r.Usage.OutputTokens
	u.cached += r.Usage.CachedTokens
	u.cacheWrite += r.Usage.CacheWriteTokens
	u.rsn += r.Usage.ReasoningTokens
	u.list.Add(r.Cost)
	if discount.Sign() != 0 {
		u.discounts.Add(discount)
	}
}

// cpAcc is one counterparty's usage lines; its totals are their sum.
type cpAcc struct {
	name  string
	lines map[[2]string]*usageAcc // provider, upstream model
}

// NewBook starts the settlement of period under set, as of asOf (the
// instant schedules and projections are computed at; it is clipped to the
// period's end).
func NewBook(set *Set, period Period, asOf time.Time) *Book {
	if asOf.IsZero() || asOf.After(period.To) {
		asOf = period.To
	}
	b := &Book{set: set, period: period, asOf: asOf, from: period.From.UnixNano(), to: period.To.UnixNano(),
		groups: map[groupKey]*group{}, byCounterparty: map[string]*cpAcc{}, chargeback: map[[2]string]*usageAcc{}}
	for _, a := range set.Agreements {
		b.states = append(b.states, &state{a: a, minimums: map[int64]*pricing.Acc{}, month: -1 << 62})
	}
	return b
}

// Start is the first instant whose records the book needs: the period's
// start, or earlier for commitments and revenue shares whose window began
// before it (their to-date figures), and for a minimums period that began
// before it.
func (b *Book) Start() time.Time {
	start := b.period.From
	for _, a := range b.set.Agreements {
		if a.Kind != Commitment && a.Kind != RevenueShare {
			continue
		}
		if !a.From.IsZero() && a.From.After(b.period.To) {
			continue
		}
		s := a.From // to-date figures start with the window (minimums periods inside it)
		if s.IsZero() {
			return time.Time{} // an open start: the whole ledger
		}
		if s.Before(start) {
			start = s
		}
	}
	return start
}

// End is the period's end: the book needs no record from it on.
func (b *Book) End() time.Time { return b.period.To }

func (b *Book) group(r *ledger.Record) *group {
	k := groupKey{r.Provider, r.UpstreamModel, r.Model, r.Key, r.Team, r.Workload}
	if g := b.groups[k]; g != nil {
		return g
	}
	g := &group{}
	for _, st := range b.states {
		a := st.a
		switch a.Kind {
		case PriceTerms:
			if slices.Contains(a.providers, r.Provider) && a.scope.match(r.Provider, r.Model, r.UpstreamModel, r.Workload, r.Key, r.Team) {
				g.terms = append(g.terms, st)
			}
		case Commitment:
			if slices.Contains(a.providers, r.Provider) {
				g.commitments = append(g.commitments, st)
			}
		case RevenueShare:
			if a.base.match(r.Provider, r.Model, r.UpstreamModel, r.Workload, r.Key, r.Team) {
				g.shares = append(g.shares, st)
			}
		}
		if a.matches(r) {
			g.touches = append(g.touches, st)
		}
	}
	cpName := b.set.Counterparty(r.Provider)
	cp := b.byCounterparty[cpName]
	if cp == nil {
		cp = &cpAcc{name: cpName, lines: map[[2]string]*usageAcc{}}
		b.byCounterparty[cpName] = cp
	}
	lk := [2]string{r.Provider, r.UpstreamModel}
	if cp.lines[lk] == nil {
		cp.lines[lk] = &usageAcc{}
	}
	g.usage = cp.lines[lk]
	b.groups[k] = g
	return g
}

// Add settles one record. Records must come in ledger order; one out of
// order, or outside [Start, End), makes Statement fail.
func (b *Book) Add(r *ledger.Record) {
	if b.err != nil {
		return
	}
	if id := r.ID(); !b.lastTime.IsZero() && (r.Time.Before(b.lastTime) ||
		r.Time.Equal(b.lastTime) && (id.RequestID < b.last.RequestID || id.RequestID == b.last.RequestID && id.Attempt <= b.last.Attempt)) {
		b.err = fmt.Errorf("record %q/%d out of ledger order", r.RequestID, r.Attempt)
		return
	}
	b.last, b.lastTime = r.ID(), r.Time
	t := r.Time.UnixNano()
	if t >= b.to {
		b.err = fmt.Errorf("record %q/%d at %s is after the period", r.RequestID, r.Attempt, r.Time.Format(time.RFC3339Nano))
		return
	}
	g := b.group(r)
	in := t >= b.from
	var discount pricing.Money
	if in {
		for _, st := range g.terms {
			if st.a.inWindow(r.Time) {
				discount = st.termsFor(r, t)
				break
			}
		}
	}
	for _, st := range g.commitments {
		if !st.a.inWindow(r.Time) {
			continue
		}
		// covered is the part of the cost the commitment still had room
		// for: all of it, none, or (on the record that fills it) the rest.
		var covered pricing.Money
		burnt := st.burnToDate.Cmp(st.a.Amount) >= 0
		st.burnToDate.Add(r.Cost)
		switch {
		case burnt:
		case st.burnToDate.Cmp(st.a.Amount) <= 0:
			covered = r.Cost
		default:
			covered = r.Cost.Sub(st.burnToDate.Money().Sub(st.a.Amount))
		}
		if st.a.Minimum.Sign() > 0 {
			ps, _ := periodBounds(st.a.MinimumPeriod, t)
			acc := st.minimums[ps]
			if acc == nil {
				acc = new(pricing.Acc)
				st.minimums[ps] = acc
			}
			acc.Add(r.Cost)
		}
		if in {
			st.burnPeriod.Add(r.Cost)
			if st.a.Discount.Sign() > 0 && covered.Sign() > 0 {
				d := pricing.Min(st.a.Discount.Mul(covered), r.Cost.Sub(discount))
				st.discount.Add(d)
				discount = discount.Add(d)
			}
		}
	}
	if r.Billable {
		for _, st := range g.shares {
			if !st.a.inWindow(r.Time) {
				continue
			}
			accrual := st.a.Rate.Mul(r.Cost)
			st.accruedToDate.Add(accrual)
			if st.a.HasCap && st.accruedToDate.Cmp(st.a.Cap) >= 0 {
				// Past the cap: this record accrues only what was left.
				over := st.accruedToDate.Money().Sub(st.a.Cap)
				accrual = pricing.Max(accrual.Sub(over), pricing.Money{})
				st.accruedToDate = pricing.Acc{}
				st.accruedToDate.Add(st.a.Cap)
				if st.capReachedAt.IsZero() {
					st.capReachedAt = r.Time
				}
			}
			if in {
				st.accruedPeriod.Add(accrual)
				st.basePeriod.Add(r.Cost)
				b.payer(st.a).share.Add(accrual)
			}
		}
	}
	if !in {
		return
	}
	for _, st := range g.touches {
		if st.a.inWindow(r.Time) && (st.a.Kind != RevenueShare || r.Billable) {
			st.records++
			if r.Billable {
				st.requests++
			}
			st.cost.Add(r.Cost)
		}
	}
	g.usage.add(r, discount)
	if r.Billable {
		k := [2]string{r.Team, r.Key}
		u := b.chargeback[k]
		if u == nil {
			u = &usageAcc{}
			b.chargeback[k] = u
		}
		u.add(r, discount)
	}
}

// payer returns the chargeback line a revenue share is charged to.
func (b *Book) payer(a *Agreement) *usageAcc {
	k := [2]string{teamOf(a.Payer), a.Payer.Key}
	u := b.chargeback[k]
	if u == nil {
		u = &usageAcc{}
		b.chargeback[k] = u
	}
	return u
}

// termsFor returns the price-terms discount of a record at t: the flat
// rate, or the month's brackets the record's cost falls in.
func (st *state) termsFor(r *ledger.Record, t int64) pricing.Money {
	st.termsBase.Add(r.Cost)
	var d pricing.Money
	if len(st.a.tiers) == 0 {
		d = st.a.Discount.Mul(r.Cost)
	} else {
		if m, _ := periodBounds("monthly", t); m != st.month {
			st.month, st.monthSpend = m, pricing.Acc{}
		}
		// Commonly the record stays inside one bracket: its rate applies
		// to the whole cost, found with comparisons alone.
		from := st.bracket(0) // the bracket the month's spend is in
		st.monthSpend.Add(r.Cost)
		to := st.bracket(1) // the bracket its last part falls in
		if from == to {
			if from >= 0 {
				d = st.a.tiers[from].discount.Mul(r.Cost)
			}
			st.termsDiscount.Add(d)
			return d
		}
		hi := st.monthSpend.Money()
		lo := hi.Sub(r.Cost)
		for i, tr := range st.a.tiers {
			top := hi
			if i+1 < len(st.a.tiers) {
				top = pricing.Min(hi, st.a.tiers[i+1].above)
			}
			bottom := pricing.Max(lo, tr.above)
			if span := top.Sub(bottom); span.Sign() > 0 {
				d = d.Add(tr.discount.Mul(span))
			}
		}
	}
	st.termsDiscount.Add(d)
	return d
}

// bracket returns the last tier whose threshold the month's spend has
// reached (edge 0: spend ≥ above) or passed (edge 1: spend > above), or
// -1 for none.
func (st *state) bracket(edge int) int {
	i := -1
	for j := range st.a.tiers {
		if st.monthSpend.Cmp(st.a.tiers[j].above) < edge {
			break
		}
		i = j
	}
	return i
}

// Statement is the settlement of one period. Every list is sorted, so the
// same ledger always gives the same statement.
type Statement struct {
	Period   string    `json:"period"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	AsOf     time.Time `json:"as_of"`
	Currency string    `json:"currency"`
	// Counterparties are the companies billing for providers, and payees
	// of revenue shares, by name.
	Counterparties []CounterpartyStatement `json:"counterparties"`
	// Chargeback is what each team and key was billed: its served
	// requests' list cost, the discounts on them, the net, and the revenue
	// shares it pays.
	Chargeback []Chargeback `json:"chargeback"`
	// Agreements count the records each agreement touched in the period.
	Agreements []AgreementUsage `json:"agreements"`
	// Totals: Usage covers every record (failed attempts too, which
	// upstreams charge for); Billed only the served requests.
	Totals Totals `json:"totals"`
}

// Usage is token and money totals.
type Usage struct {
	Requests         int64         `json:"requests"`
	Records          int64         `json:"records"`
	InputTokens      int64         `json:"input_tokens"`
	OutputTokens     int64         `json:"output_tokens"`
	CachedTokens     int64         `json:"cached_tokens"`
	CacheWriteTokens int64         `json:"cache_write_tokens"`
	ReasoningTokens  int64         `json:"reasoning_tokens"`
	ListCost         pricing.Money `json:"list_cost"`
	Discounts        pricing.Money `json:"discounts"`
	NetCost          pricing.Money `json:"net_cost"`
}

// merge adds o's figures to u.
func (u *usageAcc) merge(o *usageAcc) {
	u.requests += o.requests
	u.records += o.records
	u.input += o.input
	u.output += o.output
	u.cached += o.cached
	u.cacheWrite += o.cacheWrite
	u.rsn += o.rsn
	u.list.Add(o.list.Money())
	u.discounts.Add(o.discounts.Money())
	u.share.Add(o.share.Money())
}

func (u *usageAcc) usage() Usage {
	list, disc := u.list.Money(), u.discounts.Money()
	return Usage{Requests: u.requests, Records: u.records, InputTokens: u.input, OutputTokens: u.output,
		CachedTokens: u.cached, CacheWriteTokens: u.cacheWrite, ReasoningTokens: u.rsn,
		ListCost: list, Discounts: disc, NetCost: list.Sub(disc)}
}

// CounterpartyStatement is one counterparty's part of a statement.
type CounterpartyStatement struct {
	Name      string   `json:"name"`
	Providers []string `json:"providers"`
	Usage
	Lines         []UsageLine           `json:"lines"`
	PriceTerms    []PriceTermsFigures   `json:"price_terms"`
	Commitments   []CommitmentFigures   `json:"commitments"`
	RevenueShares []RevenueShareFigures `json:"revenue_shares"`
}

// UsageLine is one provider and upstream model.
type UsageLine struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Usage
}

// PriceTermsFigures is one price_terms agreement in the period.
type PriceTermsFigures struct {
	Name     string        `json:"name"`
	ListCost pricing.Money `json:"list_cost"`
	Discount pricing.Money `json:"discount"`
}

// CommitmentFigures is one commitment's burn-down.
type CommitmentFigures struct {
	Name     string        `json:"name"`
	Amount   pricing.Money `json:"amount"`
	Currency string        `json:"currency"`
	From     string        `json:"from"`
	Until    string        `json:"until"`
	// BurnPeriod is the list cost counted in the period; BurnToDate from
	// the window's start to AsOf.
	BurnPeriod pricing.Money `json:"burn_period"`
	BurnToDate pricing.Money `json:"burn_to_date"`
	// Remaining is Amount minus BurnToDate, at least 0.
	Remaining pricing.Money `json:"remaining"`
	// Schedule is what linear pacing expects burnt by AsOf; Variance is
	// BurnToDate minus Schedule (negative: behind).
	Schedule pricing.Money `json:"schedule"`
	Variance pricing.Money `json:"variance"`
	// ProjectedAtEnd extrapolates the burn rate so far to the window's
	// end; ProjectedShortfall is what it leaves of Amount unspent.
	ProjectedAtEnd     pricing.Money `json:"projected_at_end"`
	ProjectedShortfall pricing.Money `json:"projected_shortfall"`
	// Alert reports ProjectedShortfall above the alert threshold.
	Alert bool `json:"alert"`
	// DiscountEarned is the commitment's discount on the period's covered
	// spend.
	DiscountEarned pricing.Money `json:"discount_earned"`
	// Minimums are the minimums periods overlapping the statement's.
	Minimums []MinimumFigures `json:"minimums,omitempty"`
}

// MinimumFigures is one minimums period of a commitment.
type MinimumFigures struct {
	From    time.Time     `json:"from"`
	To      time.Time     `json:"to"`
	Minimum pricing.Money `json:"minimum"`
	Spent   pricing.Money `json:"spent"`
	// Shortfall is Minimum minus Spent (at least 0) once the period has
	// ended by AsOf; Closed says whether it has.
	Shortfall pricing.Money `json:"shortfall"`
	Closed    bool          `json:"closed"`
}

// RevenueShareFigures is one revenue share's accrual.
type RevenueShareFigures struct {
	Name  string        `json:"name"`
	Payer string        `json:"payer"`
	Payee string        `json:"payee"`
	Rate  pricing.Money `json:"rate"`
	// Cap is empty when the share has none.
	Cap   *pricing.Money `json:"cap"`
	From  string         `json:"from"`
	Until string         `json:"until"`
	// BasePeriod is the list cost of the period's records in the base;
	// AccruedPeriod what accrued on it; AccruedToDate since the window's
	// start.
	BasePeriod    pricing.Money  `json:"base_period"`
	AccruedPeriod pricing.Money  `json:"accrued_period"`
	AccruedToDate pricing.Money  `json:"accrued_to_date"`
	CapRemaining  *pricing.Money `json:"cap_remaining"`
	// CapReachedAt is when the cap was reached, if it was.
	CapReachedAt *time.Time `json:"cap_reached_at"`
	// Ended reports that the window ended by AsOf.
	Ended bool `json:"ended"`
}

// Chargeback is one team and key.
type Chargeback struct {
	Team string `json:"team"`
	Key  string `json:"key"`
	Usage
	// RevenueShare is what the team or key pays as a revenue share payer.
	RevenueShare pricing.Money `json:"revenue_share"`
}

// AgreementUsage counts what one agreement touched in the period.
type AgreementUsage struct {
	Name     string        `json:"name"`
	Type     string        `json:"type"`
	Records  int64         `json:"records"`
	Requests int64         `json:"requests"`
	ListCost pricing.Money `json:"list_cost"`
}

// Totals sums the statement.
type Totals struct {
	Usage  Usage `json:"usage"`
	Billed Usage `json:"billed"`
	// RevenueShares is what accrued to every revenue share in the period.
	RevenueShares pricing.Money `json:"revenue_shares"`
}

// Statement returns the settled period.
func (b *Book) Statement() (*Statement, error) {
	if b.err != nil {
		return nil, b.err
	}
	s := &Statement{Period: b.period.Name, From: b.period.From, To: b.period.To, AsOf: b.asOf, Currency: "USD",
		Counterparties: []CounterpartyStatement{}, Chargeback: []Chargeback{}, Agreements: []AgreementUsage{}}
	cps := map[string]*CounterpartyStatement{}
	cp := func(name string) *CounterpartyStatement {
		if c := cps[name]; c != nil {
			return c
		}
		c := &CounterpartyStatement{Name: name, Providers: []string{}, Lines: []UsageLine{}, PriceTerms: []PriceTermsFigures{},
			Commitments: []CommitmentFigures{}, RevenueShares: []RevenueShareFigures{}}
		c.Usage = (&usageAcc{}).usage()
		cps[name] = c
		return c
	}
	for _, p := range b.set.providers {
		c := cp(b.set.Counterparty(p))
		c.Providers = append(c.Providers, p)
	}
	var all usageAcc // every record: the counterparties summed
	for name, acc := range b.byCounterparty {
		c := cp(name)
		var total usageAcc
		for _, u := range acc.lines {
			total.merge(u)
		}
		c.Usage = total.usage()
		all.merge(&total)
		for k, u := range acc.lines {
			c.Lines = append(c.Lines, UsageLine{Provider: k[0], Model: k[1], Usage: u.usage()})
		}
		slices.SortFunc(c.Lines, func(x, y UsageLine) int {
			return strings.Compare(x.Provider+"\x00"+x.Model, y.Provider+"\x00"+y.Model)
		})
	}
	for _, st := range b.states {
		a := st.a
		switch a.Kind {
		case PriceTerms:
			f := PriceTermsFigures{Name: a.Name, ListCost: st.termsBase.Money(), Discount: st.termsDiscount.Money()}
			for _, name := range b.counterpartiesOf(a.providers) {
				c := cp(name)
				c.PriceTerms = append(c.PriceTerms, f)
			}
		case Commitment:
			f := b.commitment(st)
			for _, name := range b.counterpartiesOf(a.providers) {
				c := cp(name)
				c.Commitments = append(c.Commitments, f)
			}
		case RevenueShare:
			f := b.revenueShare(st)
			c := cp(a.Payee)
			c.RevenueShares = append(c.RevenueShares, f)
		}
		s.Agreements = append(s.Agreements, AgreementUsage{Name: a.Name, Type: a.Kind.String(),
			Records: st.records, Requests: st.requests, ListCost: st.cost.Money()})
	}
	for _, c := range cps {
		s.Counterparties = append(s.Counterparties, *c)
	}
	slices.SortFunc(s.Counterparties, func(x, y CounterpartyStatement) int { return strings.Compare(x.Name, y.Name) })
	for k, u := range b.chargeback {
		s.Chargeback = append(s.Chargeback, Chargeback{Team: k[0], Key: k[1], Usage: u.usage(), RevenueShare: u.share.Money()})
	}
	slices.SortFunc(s.Chargeback, func(x, y Chargeback) int {
		return strings.Compare(x.Team+"\x00"+x.Key, y.Team+"\x00"+y.Key)
	})
	var billed usageAcc
	for _, u := range b.chargeback {
		billed.merge(u)
	}
	s.Totals = Totals{Usage: all.usage(), Billed: billed.usage(), RevenueShares: billed.share.Money()}
	return s, nil
}

// counterpartiesOf returns the distinct counterparties of providers, in
// order.
func (b *Book) counterpartiesOf(providers []string) []string {
	var out []string
	for _, p := range providers {
		if c := b.set.Counterparty(p); !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// microPlaces is the precision of schedules and projections.
const microPlaces = 6

func (b *Book) commitment(st *state) CommitmentFigures {
	a := st.a
	burn := st.burnToDate.Money()
	f := CommitmentFigures{Name: a.Name, Amount: a.Amount, Currency: "USD", From: a.FromText, Until: a.UntilText,
		BurnPeriod: st.burnPeriod.Money(), BurnToDate: burn, DiscountEarned: st.discount.Money(),
		Remaining: pricing.Max(a.Amount.Sub(burn), pricing.Money{})}
	total := a.Until.Sub(a.From).Microseconds()
	at := b.asOf
	if at.After(a.Until) {
		at = a.Until
	}
	elapsed := max(at.Sub(a.From).Microseconds(), 0)
	f.Schedule = a.Amount.MulDiv(elapsed, total, microPlaces)
	f.Variance = burn.Sub(f.Schedule)
	if elapsed > 0 {
		f.ProjectedAtEnd = burn.MulDiv(total, elapsed, microPlaces)
	}
	f.ProjectedShortfall = pricing.Max(a.Amount.Sub(f.ProjectedAtEnd), pricing.Money{})
	f.Alert = elapsed > 0 && f.ProjectedShortfall.Cmp(a.AlertShortfall.Mul(a.Amount)) > 0
	if a.Minimum.Sign() > 0 {
		ps, _ := periodBounds(a.MinimumPeriod, b.period.From.UnixNano())
		for ps < b.to {
			_, pe := periodBounds(a.MinimumPeriod, ps)
			if ps >= a.Until.UnixNano() {
				break
			}
			if pe > a.From.UnixNano() {
				m := MinimumFigures{From: time.Unix(0, ps).UTC(), To: time.Unix(0, pe).UTC(), Minimum: a.Minimum}
				if acc := st.minimums[ps]; acc != nil {
					m.Spent = acc.Money()
				}
				m.Closed = pe <= b.asOf.UnixNano()
				if m.Closed {
					m.Shortfall = pricing.Max(a.Minimum.Sub(m.Spent), pricing.Money{})
				}
				f.Minimums = append(f.Minimums, m)
			}
			ps = pe
		}
	}
	return f
}

func (b *Book) revenueShare(st *state) RevenueShareFigures {
	a := st.a
	payer := teamOf(a.Payer)
	if a.Payer.Key != "" {
		payer = "key:" + a.Payer.Key
	}
	f := RevenueShareFigures{Name: a.Name, Payer: payer, Payee: a.Payee, Rate: a.Rate, From: a.FromText, Until: a.UntilText,
		BasePeriod: st.basePeriod.Money(), AccruedPeriod: st.accruedPeriod.Money(), AccruedToDate: st.accruedToDate.Money(),
		Ended: !a.Until.IsZero() && !b.asOf.Before(a.Until)}
	if a.HasCap {
		c := a.Cap
		left := pricing.Max(a.Cap.Sub(f.AccruedToDate), pricing.Money{})
		f.Cap, f.CapRemaining = &c, &left
	}
	if !st.capReachedAt.IsZero() {
		t := st.capReachedAt
		f.CapReachedAt = &t
	}
	return f
}

// Settle reads the records period needs from sc and settles them under
// set, as of asOf (see NewBook).
func Settle(ctx context.Context, set *Set, sc ledger.Scanner, period Period, asOf time.Time) (*Statement, error) {
	b := NewBook(set, period, asOf)
	err := sc.Scan(ctx, ledger.ScanFilter{From: b.Start(), To: b.End()}, func(r *ledger.Record) error {
		b.Add(r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("settle %s: %w", period.Name, err)
	}
	return b.Statement()
}
