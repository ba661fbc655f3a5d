// Package redisbudget is a budget.Store in Redis, shared by every gateway
// replica. Each operation is ONE Lua script, so a reservation across a key's
// and a team's budgets is atomic even with many replicas racing.
//
// Layout: each budget window is a hash {prefix}:b:{name}:{window} holding
// the settled and reserved counters (and top-ups for Total budgets) plus one
// field per live hold; a sorted set {prefix}:b:{name}:{window}:exp orders
// holds by expiry, and every Reserve and Spent first subtracts holds whose
// expiry has passed, so a crashed replica's reservations lapse after their
// TTL. A record {prefix}:r:{id} makes Reserve, Settle and Release
// idempotent. Window keys expire WindowRetention after the window resets;
// Total budgets never expire.
//
// Money: counters change only through HINCRBY (exact int64). The refusal
// check compares with Lua doubles, exact for effective limits below 2^53
// micro-dollars (about $9.007 billion, see MaxLimit); larger limits, amounts
// or top-ups are rejected rather than compared inexactly.
//
// Time: expiry uses the callers' injected clock (Request.Now), not Redis's,
// so replicas need synchronised clocks (NTP); key TTLs are relative.
package redisbudget

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multipolar/multipolar/internal/budget"
)

var _ budget.Store = (*Store)(nil)

// MaxLimit is the largest effective limit, amount or actual cost this store
// accepts: 2^53−1 micro-dollars (about $9.007 billion), below which the Lua
// comparison is exact.
const MaxLimit budget.Micros = 1<<53 - 1

// Options configures a Store.
type Options struct {
	// Client runs the scripts: a *redis.Client, or a *redis.ClusterClient
	// (all keys share the {Prefix} hash tag). Required.
	Client redis.Scripter
	// Prefix namespaces the keys; required. Keys look like
	// "{prefix}:b:team:search:1764547200".
	Prefix string
	// WindowRetention is how long a periodic budget's window is kept after it
	// resets, for reports and late settles. Zero means 35 days.
	WindowRetention time.Duration
	// RecordRetention is how long a reservation record is kept after its
	// hold expires (or after it is settled or released), which bounds how late
	// a retried Settle stays idempotent. Zero means 24 hours.
	RecordRetention time.Duration
}

// Store is a budget.Store backed by Redis. It is safe for concurrent use by
// any number of goroutines and processes.
type Store struct {
	c         redis.Scripter
	prefix    string
	winKeep   time.Duration
	recordTTL time.Duration
}

// New returns a Store using opts.
func New(opts Options) (*Store, error) {
	var errs []error
	if opts.Client == nil {
		errs = append(errs, errors.New("client is nil"))
	}
	if opts.Prefix == "" {
		errs = append(errs, errors.New("prefix is empty"))
	}
	if opts.WindowRetention < 0 || opts.RecordRetention < 0 {
		errs = append(errs, errors.New("negative retention"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("redisbudget: %w", err)
	}
	if opts.WindowRetention == 0 {
		opts.WindowRetention = 35 * 24 * time.Hour
	}
	if opts.RecordRetention == 0 {
		opts.RecordRetention = 24 * time.Hour
	}
	return &Store{c: opts.Client, prefix: opts.Prefix, winKeep: opts.WindowRetention, recordTTL: opts.RecordRetention}, nil
}

func (s *Store) windowKey(name string, id int64) string {
	return "{" + s.prefix + "}:b:" + name + ":" + strconv.FormatInt(id, 10)
}

func (s *Store) recordKey(id string) string { return "{" + s.prefix + "}:r:" + id }

// keys returns the record key followed by each budget's window and expiry keys.
func (s *Store) keys(id string, budgets []budget.Budget, windows []int64) []string {
	keys := make([]string, 0, 1+2*len(budgets))
	keys = append(keys, s.recordKey(id))
	for i, b := range budgets {
		w := s.windowKey(b.Name, windows[i])
		keys = append(keys, w, w+":exp")
	}
	return keys
}

// windowTTL returns how long, from now, the key of b's window id should
// live: until WindowRetention after the window resets (at least
// WindowRetention), in ms, or "0" for never (Total). A relative TTL keeps
// key lifetime correct even when the injected clock differs from Redis's.
func (s *Store) windowTTL(b budget.Budget, id int64, now time.Time) string {
	if b.Period == budget.Total {
		return "0"
	}
	_, reset := b.Window(time.Unix(id, 0))
	ttl := reset.Sub(now) + s.winKeep
	if ttl < s.winKeep {
		ttl = s.winKeep
	}
	return strconv.FormatInt(ttl.Milliseconds(), 10)
}

func checkRange(what string, m budget.Micros) error {
	if m > MaxLimit {
		return fmt.Errorf("redisbudget: %s %s beyond %s", what, m, MaxLimit)
	}
	return nil
}

// Reserve implements budget.Store.
func (s *Store) Reserve(ctx context.Context, req budget.Request) (budget.Reservation, error) {
	if err := req.Validate(); err != nil {
		return budget.Reservation{}, err
	}
	if err := checkRange("amount", req.Amount); err != nil {
		return budget.Reservation{}, err
	}
	n := len(req.Budgets)
	windows := make([]int64, n)
	ids := make([]string, n)
	for i, b := range req.Budgets {
		if err := checkRange("limit of "+strconv.Quote(b.Name), b.Limit); err != nil {
			return budget.Reservation{}, err
		}
		windows[i] = b.WindowID(req.Now)
		ids[i] = strconv.FormatInt(windows[i], 10)
	}
	expires := req.Now.Add(req.TTL)
	args := make([]any, 0, 6+4*n)
	args = append(args, req.ID, strconv.FormatInt(int64(req.Amount), 10),
		strconv.FormatInt(req.Now.UnixMilli(), 10), strconv.FormatInt(expires.UnixMilli(), 10),
		strconv.FormatInt((req.TTL+s.recordTTL).Milliseconds(), 10), strings.Join(ids, " "))
	for i, b := range req.Budgets {
		hard := "0"
		if b.Mode == budget.Hard {
			hard = "1"
		}
		args = append(args, strconv.FormatInt(int64(b.Limit), 10), hard, s.windowTTL(b, windows[i], req.Now), b.Name)
	}
	out, err := reserveScript.Run(ctx, s.c, s.keys(req.ID, req.Budgets, windows), args...).StringSlice()
	if err != nil {
		return budget.Reservation{}, fmt.Errorf("redisbudget: reserve %q: %w", req.ID, err)
	}
	res := budget.Reservation{
		ID:      req.ID,
		Amount:  req.Amount,
		Budgets: append([]budget.Budget(nil), req.Budgets...),
		Windows: windows,
		Expires: time.UnixMilli(expires.UnixMilli()),
	}
	switch {
	case len(out) == 2 && out[0] == "ok":
		res.SoftExceeded = splitSoft(out[1])
		return res, nil
	case len(out) == 5 && out[0] == "dup":
		return replay(res, out)
	case len(out) == 5 && out[0] == "exceeded":
		return budget.Reservation{}, exceeded(req, out)
	}
	return budget.Reservation{}, fmt.Errorf("redisbudget: reserve %q: unexpected reply %q", req.ID, out)
}

func splitSoft(so string) []string {
	if so == "" {
		return nil
	}
	return strings.Split(so, "\n")
}

// replay rebuilds the reservation stored by an earlier Reserve with the same ID.
func replay(res budget.Reservation, out []string) (budget.Reservation, error) {
	amount, err1 := strconv.ParseInt(out[1], 10, 64)
	exp, err2 := strconv.ParseInt(out[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return budget.Reservation{}, fmt.Errorf("redisbudget: reserve %q: stored record: %w", res.ID, err)
	}
	res.Amount = budget.Micros(amount)
	res.Expires = time.UnixMilli(exp)
	if w := strings.Fields(out[3]); len(w) == len(res.Windows) {
		for i := range w {
			if res.Windows[i], err1 = strconv.ParseInt(w[i], 10, 64); err1 != nil {
				return budget.Reservation{}, fmt.Errorf("redisbudget: reserve %q: stored windows: %w", res.ID, err1)
			}
		}
	}
	res.SoftExceeded = splitSoft(out[4])
	return res, nil
}

// exceeded builds the *budget.ExceededError from the script's reply
// {"exceeded", index, settled, reserved, topUps}.
func exceeded(req budget.Request, out []string) error {
	var v [4]int64
	for i := range v {
		var err error
		if v[i], err = strconv.ParseInt(out[1+i], 10, 64); err != nil {
			return fmt.Errorf("redisbudget: reserve %q: reply %q: %w", req.ID, out, err)
		}
	}
	if v[0] < 1 || int(v[0]) > len(req.Budgets) {
		return fmt.Errorf("redisbudget: reserve %q: reply %q: bad budget index", req.ID, out)
	}
	b := req.Budgets[v[0]-1]
	_, reset := b.Window(req.Now)
	return &budget.ExceededError{
		Budget: b,
		Limit:  b.Limit + budget.Micros(v[3]),
		Spent:  budget.Micros(v[1] + v[2]),
		Needed: req.Amount,
		Reset:  reset,
	}
}

// Settle implements budget.Store.
func (s *Store) Settle(ctx context.Context, r budget.Reservation, actual budget.Micros) error {
	if actual < 0 {
		return fmt.Errorf("redisbudget: settle %q: negative actual %s", r.ID, actual)
	}
	if err := checkRange("actual", actual); err != nil {
		return err
	}
	if len(r.Budgets) != len(r.Windows) {
		return fmt.Errorf("redisbudget: settle %q: reservation budgets and windows differ in length", r.ID)
	}
	args := make([]any, 0, 3+len(r.Budgets))
	args = append(args, r.ID, strconv.FormatInt(int64(actual), 10), strconv.FormatInt(s.recordTTL.Milliseconds(), 10))
	for i, b := range r.Budgets {
		// Settle takes no clock; the hold's expiry is close enough to now.
		args = append(args, s.windowTTL(b, r.Windows[i], r.Expires))
	}
	if err := settleScript.Run(ctx, s.c, s.keys(r.ID, r.Budgets, r.Windows), args...).Err(); err != nil {
		return fmt.Errorf("redisbudget: settle %q: %w", r.ID, err)
	}
	return nil
}

// Release implements budget.Store.
func (s *Store) Release(ctx context.Context, r budget.Reservation) error {
	if len(r.Budgets) != len(r.Windows) {
		return fmt.Errorf("redisbudget: release %q: reservation budgets and windows differ in length", r.ID)
	}
	err := releaseScript.Run(ctx, s.c, s.keys(r.ID, r.Budgets, r.Windows),
		r.ID, strconv.FormatInt(s.recordTTL.Milliseconds(), 10)).Err()
	if err != nil {
		return fmt.Errorf("redisbudget: release %q: %w", r.ID, err)
	}
	return nil
}

// Spent implements budget.Store.
func (s *Store) Spent(ctx context.Context, b budget.Budget, now time.Time) (settled, reserved budget.Micros, err error) {
	if err := b.Validate(); err != nil {
		return 0, 0, err
	}
	w := s.windowKey(b.Name, b.WindowID(now))
	out, err := spentScript.Run(ctx, s.c, []string{w, w + ":exp"}, strconv.FormatInt(now.UnixMilli(), 10)).StringSlice()
	if err != nil {
		return 0, 0, fmt.Errorf("redisbudget: spent %q: %w", b.Name, err)
	}
	if len(out) != 2 {
		return 0, 0, fmt.Errorf("redisbudget: spent %q: unexpected reply %q", b.Name, out)
	}
	st, err1 := strconv.ParseInt(out[0], 10, 64)
	rs, err2 := strconv.ParseInt(out[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("redisbudget: spent %q: %w", b.Name, err)
	}
	return budget.Micros(st), budget.Micros(rs), nil
}

// TopUp implements budget.Store.
func (s *Store) TopUp(ctx context.Context, b budget.Budget, amount budget.Micros) error {
	if err := b.Validate(); err != nil {
		return err
	}
	if b.Period != budget.Total {
		return fmt.Errorf("redisbudget: top up %q: %w", b.Name, budget.ErrNotTotal)
	}
	if amount <= 0 {
		return fmt.Errorf("redisbudget: top up %q: amount %s is not positive", b.Name, amount)
	}
	if err := checkRange("top-up", amount); err != nil {
		return err
	}
	err := topUpScript.Run(ctx, s.c, []string{s.windowKey(b.Name, 0)},
		strconv.FormatInt(int64(amount), 10), strconv.FormatInt(int64(b.Limit), 10)).Err()
	if err != nil {
		return fmt.Errorf("redisbudget: top up %q: %w", b.Name, err)
	}
	return nil
}
