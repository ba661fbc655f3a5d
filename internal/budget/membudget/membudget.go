// Package membudget is an in-process budget.Store: one mutex over maps keyed
// by budget name and window start. It suits a single gateway replica and
// tests; use budget/redisbudget when several replicas share budgets.
//
// Time comes only from the callers (budget.Request.Now and the now passed to
// Spent): expired holds are swept lazily when their window is next touched.
// Settled and released reservation records are kept in two generations of
// RecordRetention each and forgotten a generation at a time, without
// touching each record again; old windows and records never finished are
// purged by a scan every few thousand operations, so purging costs
// amortized O(1) per operation.
package membudget

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/multipolar/multipolar/internal/budget"
)

var _ budget.Store = (*Store)(nil)

// Options configures a Store.
type Options struct {
	// Retention is how long windows are kept after they reset, and how long
	// the record of a reservation never settled nor released is kept after
	// its hold expires, so late Settle and Release calls stay idempotent.
	// Zero means 7 days.
	Retention time.Duration
	// RecordRetention is how long, at least, a reservation record is kept
	// after it is settled or released: how late a repeated Reserve, Settle
	// or Release of it stays idempotent. Records are forgotten in
	// generations, so one may be kept up to twice as long. Zero means
	// Retention. Every request leaves such a record, so the store holds
	// up to 2 × RecordRetention × request rate of them; a caller that
	// settles each reservation once, in process, can keep it short.
	RecordRetention time.Duration
}

// Store is an in-memory budget.Store. It is safe for concurrent use.
type Store struct {
	retention, recordRetention time.Duration

	mu      sync.Mutex
	windows map[winKey]*window
	held    map[string]*record // reservations neither settled nor released
	// done holds the settled and released records in two generations:
	// done[0] those finished since doneStart, done[1] those finished in
	// the RecordRetention before. Once the latest observed time is
	// RecordRetention past doneStart, done[1] is dropped whole and
	// done[0] takes its place. Forgetting records one by one, each a
	// second after it was last touched, cost a few cache misses per
	// request under load.
	done      [2]map[string]*record
	doneStart time.Time
	topUps    map[string]budget.Micros
	latest    time.Time // latest time observed, drives purging
	ops       int       // operations since the last scan
}

type winKey struct {
	name  string
	start int64
}

type window struct {
	settled, reserved budget.Micros
	holds             map[string]hold
	nextExpiry        time.Time // earliest hold expiry, or zero
	purgeAt           time.Time // zero: never (Total)
}

type hold struct {
	amount  budget.Micros
	expires time.Time
}

type state uint8

const (
	held state = iota
	settled
	released
)

type record struct {
	res   budget.Reservation
	state state
	// forgetAt is when a record never finished is purged: its hold's
	// expiry plus Retention.
	forgetAt time.Time
	// Storage for res.Budgets and res.Windows when they are short. The
	// caller's copy of res shares it; a Reservation is passed back
	// unchanged, never modified.
	budgets [inlineBudgets]budget.Budget
	windows [inlineBudgets]int64
}

// inlineBudgets is how many budgets a record holds without allocating.
const inlineBudgets = 2

// purgeEvery is how many operations pass between scans for old windows
// and for records never finished; a scan waits for at least as many
// operations as there are held records, so its cost per operation is
// bounded.
const purgeEvery = 4096

// New returns an empty Store.
func New(opts Options) (*Store, error) {
	if opts.Retention < 0 || opts.RecordRetention < 0 {
		return nil, fmt.Errorf("membudget: negative retention %v, %v", opts.Retention, opts.RecordRetention)
	}
	if opts.Retention == 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.RecordRetention == 0 {
		opts.RecordRetention = opts.Retention
	}
	return &Store{
		retention:       opts.Retention,
		recordRetention: opts.RecordRetention,
		windows:         make(map[winKey]*window),
		held:            make(map[string]*record),
		done:            [2]map[string]*record{make(map[string]*record), make(map[string]*record)},
		topUps:          make(map[string]budget.Micros),
	}, nil
}

// Reserve implements budget.Store.
func (s *Store) Reserve(ctx context.Context, req budget.Request) (budget.Reservation, error) {
	if err := ctx.Err(); err != nil {
		return budget.Reservation{}, err
	}
	if err := req.Validate(); err != nil {
		return budget.Reservation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observe(req.Now)
	if rec := s.record(req.ID); rec != nil {
		return rec.res, nil
	}
	// A record and its reservation's slices are one allocation for up to
	// inlineBudgets budgets (a key's and its team's).
	rec := &record{state: held}
	ids, budgets := rec.windows[:0], rec.budgets[:0]
	if n := len(req.Budgets); n > inlineBudgets {
		ids, budgets = make([]int64, 0, n), make([]budget.Budget, 0, n)
	}
	var winsBuf [inlineBudgets]*window
	var limitsBuf [inlineBudgets]budget.Micros
	wins, limits := winsBuf[:0], limitsBuf[:0]
	for _, b := range req.Budgets {
		id := b.WindowID(req.Now)
		w := s.window(b, id, req.Now)
		s.sweep(w, req.Now)
		limit := s.limit(b)
		if b.Mode == budget.Hard && !budget.Fits(w.settled, w.reserved, req.Amount, limit) {
			_, reset := b.Window(req.Now)
			return budget.Reservation{}, &budget.ExceededError{
				Budget: b, Limit: limit, Spent: w.settled + w.reserved, Needed: req.Amount, Reset: reset,
			}
		}
		ids, wins, limits = append(ids, id), append(wins, w), append(limits, limit)
	}
	budgets = append(budgets, req.Budgets...)
	res := budget.Reservation{
		ID:      req.ID,
		Amount:  req.Amount,
		Budgets: budgets[:len(budgets):len(budgets)],
		Windows: ids[:len(ids):len(ids)],
		Expires: req.Now.Add(req.TTL),
	}
	for i, w := range wins {
		w.reserved += req.Amount
		w.holds[req.ID] = hold{amount: req.Amount, expires: res.Expires}
		if w.nextExpiry.IsZero() || res.Expires.Before(w.nextExpiry) {
			w.nextExpiry = res.Expires
		}
		if b := req.Budgets[i]; b.Mode == budget.Soft && !budget.Fits(w.settled, w.reserved, 0, limits[i]) {
			res.SoftExceeded = append(res.SoftExceeded, b.Name)
		}
	}
	rec.res, rec.forgetAt = res, res.Expires.Add(s.retention)
	s.held[req.ID] = rec
	return res, nil
}

// Settle implements budget.Store.
func (s *Store) Settle(ctx context.Context, r budget.Reservation, actual budget.Micros) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if actual < 0 {
		return fmt.Errorf("membudget: settle %q: negative actual %s", r.ID, actual)
	}
	if len(r.Budgets) != len(r.Windows) {
		return errors.New("membudget: settle: reservation budgets and windows differ in length")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.record(r.ID)
	if rec != nil && rec.state == settled {
		return nil
	}
	for i, b := range r.Budgets {
		w := s.window(b, r.Windows[i], time.Time{})
		s.dropHold(w, r.ID)
		w.settled = budget.AddSat(w.settled, actual)
	}
	s.finish(rec, r, settled)
	return nil
}

// Release implements budget.Store.
func (s *Store) Release(ctx context.Context, r budget.Reservation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(r.Budgets) != len(r.Windows) {
		return errors.New("membudget: release: reservation budgets and windows differ in length")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.record(r.ID)
	if rec != nil && rec.state != held {
		return nil
	}
	for i, b := range r.Budgets {
		if w := s.windows[winKey{b.Name, r.Windows[i]}]; w != nil {
			s.dropHold(w, r.ID)
		}
	}
	s.finish(rec, r, released)
	return nil
}

// record returns id's record, or nil. Callers hold s.mu.
func (s *Store) record(id string) *record {
	if rec := s.held[id]; rec != nil {
		return rec
	}
	if rec := s.done[0][id]; rec != nil {
		return rec
	}
	return s.done[1][id]
}

// finish marks r's record (nil: none yet) settled or released, moving it
// to the current generation of finished records. Callers hold s.mu.
func (s *Store) finish(rec *record, r budget.Reservation, st state) {
	if rec == nil {
		rec = &record{res: r}
	} else if rec.state == held {
		delete(s.held, r.ID)
	}
	if rec.state == held {
		s.done[0][r.ID] = rec
	}
	rec.state = st
}

// rotate forgets the older generation of finished records once the
// latest observed time is RecordRetention past the newer one's start.
// A record finished at the latest time t is therefore kept until at
// least t + RecordRetention. Callers hold s.mu.
func (s *Store) rotate() {
	if s.doneStart.IsZero() {
		s.doneStart = s.latest
		return
	}
	end := s.doneStart.Add(s.recordRetention)
	if s.latest.Before(end) {
		return
	}
	old := s.done[1]
	clear(old)
	s.done[0], s.done[1] = old, s.done[0]
	s.doneStart = end
	if !s.latest.Before(end.Add(s.recordRetention)) { // a whole generation passed unseen
		clear(s.done[1])
		s.doneStart = s.latest
	}
}

// Spent implements budget.Store.
func (s *Store) Spent(ctx context.Context, b budget.Budget, now time.Time) (settled, reserved budget.Micros, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if err := b.Validate(); err != nil {
		return 0, 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.windows[winKey{b.Name, b.WindowID(now)}]
	if w == nil {
		return 0, 0, nil
	}
	s.sweep(w, now)
	return w.settled, w.reserved, nil
}

// TopUp implements budget.Store.
func (s *Store) TopUp(ctx context.Context, b budget.Budget, amount budget.Micros) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.Validate(); err != nil {
		return err
	}
	if b.Period != budget.Total {
		return fmt.Errorf("membudget: top up %q: %w", b.Name, budget.ErrNotTotal)
	}
	if amount <= 0 {
		return fmt.Errorf("membudget: top up %q: amount %s is not positive", b.Name, amount)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.topUps[b.Name] = budget.AddSat(s.topUps[b.Name], amount)
	return nil
}

// limit returns b's effective limit. Callers hold s.mu.
func (s *Store) limit(b budget.Budget) budget.Micros {
	if b.Period != budget.Total {
		return b.Limit
	}
	return budget.AddSat(b.Limit, s.topUps[b.Name])
}

// window returns the window for b and id, creating it. now dates its purge
// time; a zero now (from Settle) keeps it for the retention after the
// latest observed time. Callers hold s.mu.
func (s *Store) window(b budget.Budget, id int64, now time.Time) *window {
	k := winKey{b.Name, id}
	if w := s.windows[k]; w != nil {
		return w
	}
	w := &window{holds: make(map[string]hold)}
	if b.Period != budget.Total {
		if now.IsZero() {
			now = s.latest
		}
		_, reset := b.Window(now)
		w.purgeAt = reset.Add(s.retention)
	}
	s.windows[k] = w
	return w
}

// sweep returns expired holds in w to the budget. Callers hold s.mu.
func (s *Store) sweep(w *window, now time.Time) {
	if w.nextExpiry.IsZero() || now.Before(w.nextExpiry) {
		return
	}
	w.nextExpiry = time.Time{}
	for id, h := range w.holds {
		if !now.Before(h.expires) {
			w.reserved -= h.amount
			delete(w.holds, id)
			continue
		}
		if w.nextExpiry.IsZero() || h.expires.Before(w.nextExpiry) {
			w.nextExpiry = h.expires
		}
	}
}

// dropHold removes id's hold from w, if still there. Callers hold s.mu.
func (s *Store) dropHold(w *window, id string) {
	if h, ok := w.holds[id]; ok {
		w.reserved -= h.amount
		delete(w.holds, id)
	}
}

// observe advances the purge clock and purges periodically. Callers hold s.mu.
func (s *Store) observe(now time.Time) {
	if now.After(s.latest) {
		s.latest = now
	}
	s.rotate()
	s.ops++
	if s.ops < max(purgeEvery, len(s.held)) {
		return
	}
	s.ops = 0
	for k, w := range s.windows {
		if !w.purgeAt.IsZero() && s.latest.After(w.purgeAt) {
			delete(s.windows, k)
		}
	}
	for id, r := range s.held {
		if s.latest.After(r.forgetAt) {
			delete(s.held, id)
		}
	}
}
