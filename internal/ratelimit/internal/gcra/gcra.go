// Package gcra is the exact integer arithmetic of the Generic Cell Rate
// Algorithm shared by memlimit and redislimit (whose Lua script mirrors
// Next), and the assembly of a ratelimit.Decision from its results.
//
// Time is in microseconds. A limit of L units per minute has emission
// interval P/L with P = 60,000,000 µs; a cost of c units advances the
// theoretical arrival time (TAT) by c·P/L, kept exactly as whole
// microseconds plus a remainder in [0, L) L-ths of a microsecond. A request
// fits if the new TAT is ≤ now + P, so an idle limit admits a burst of
// exactly L units and then refills continuously at L per minute.
package gcra

import (
	"math/bits"
	"time"

	"github.com/multipolar/multipolar/internal/ratelimit"
)

// Period is one minute in microseconds.
const Period = 60_000_000

// State is a TAT: Whole µs since the Unix epoch plus Rem/L µs, 0 ≤ Rem < L.
type State struct {
	Whole, Rem int64
}

// Cost returns c·Period/l as whole µs and a remainder in [0, l), and whether
// it fits in one period at all (false: no request of this cost can ever pass).
func Cost(c, l int64) (whole, rem int64, ok bool) {
	hi, lo := bits.Mul64(uint64(c), Period)
	if hi >= uint64(l) {
		return 0, 0, false
	}
	q, r := bits.Div64(hi, lo, uint64(l))
	if q > Period || (q == Period && r > 0) {
		return 0, 0, false
	}
	return int64(q), int64(r), true
}

// Rescale adapts a state stored under limit oldL to limit l, rounding the
// remainder up to a whole µs (conservative by < 1 µs).
func Rescale(s State, oldL, l int64) State {
	if oldL != l && s.Rem > 0 {
		return State{s.Whole + 1, 0}
	}
	return s
}

// Next returns the TAT after admitting a cost of (whole, rem) at now under
// limit l, and whether it fits.
func Next(s State, now, whole, rem, l int64) (State, bool) {
	if s.Whole < now {
		s = State{now, 0}
	}
	n := State{s.Whole + whole, s.Rem + rem}
	if n.Rem >= l {
		n.Whole++
		n.Rem -= l
	}
	return n, n.Whole < now+Period || (n.Whole == now+Period && n.Rem == 0)
}

// Refund moves a TAT back by (whole, rem) under limit l, never before now
// (an idle limit cannot bank credit).
func Refund(s State, now, whole, rem, l int64) State {
	n := State{s.Whole - whole, s.Rem - rem}
	if n.Rem < 0 {
		n.Whole--
		n.Rem += l
	}
	if n.Whole < now {
		return State{now, 0}
	}
	return n
}

// Remaining is how many units of limit l fit at now given TAT s:
// floor((now + P − TAT)·l / P).
func Remaining(s State, now, l int64) int64 {
	if s.Whole < now {
		return l
	}
	d := now + Period - s.Whole // ≤ Period
	if d <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(d), uint64(l))
	lo, borrow := bits.Sub64(lo, uint64(s.Rem), 0)
	hi -= borrow
	if int64(hi) < 0 {
		return 0
	}
	q, _ := bits.Div64(hi, lo, Period)
	return int64(q)
}

// Reset is how long until the limit is back to full: TAT − now, rounded up.
func Reset(s State, now int64) time.Duration {
	if s.Whole < now || (s.Whole == now && s.Rem == 0) {
		return 0
	}
	d := s.Whole - now
	if s.Rem > 0 {
		d++
	}
	return time.Duration(d) * time.Microsecond
}

// Wait is how long until a request whose TAT would be n fits: n − P − now,
// rounded up, at least 0.
func Wait(n State, now int64) time.Duration {
	d := n.Whole - Period - now
	if n.Rem > 0 {
		d++
	}
	if d < 0 {
		return 0
	}
	return time.Duration(d) * time.Microsecond
}

// Kind distinguishes the two budgets of a ratelimit.Limit.
type Kind uint8

// Kinds.
const (
	// Requests is the RPM side of a limit.
	Requests Kind = iota
	// Tokens is the TPM side of a limit.
	Tokens
)

// Builder assembles a ratelimit.Decision from per-limit, per-kind results.
// The zero value is ready; it does not allocate.
type Builder struct {
	d       ratelimit.Decision
	haveReq bool
	haveTok bool
}

// Start resets b for a request whose all-or-nothing verdict is allowed.
func (b *Builder) Start(allowed bool) {
	*b = Builder{}
	b.d.Allowed = allowed
}

// TooLarge records that limit name can never admit the request.
func (b *Builder) TooLarge(name string) {
	b.d.Allowed = false
	if !b.d.TooLarge {
		b.d.TooLarge = true
		b.d.Limit = name
		b.d.RetryAfter = 0
	}
}

// Observe records one limit's kind with limit value l: cur is its TAT before
// the request, next its TAT had the request been admitted, fits whether it
// would. After Start(true) next is the stored state; after Start(false) cur is.
func (b *Builder) Observe(name string, k Kind, l int64, cur, next State, fits bool, now int64) {
	s := cur
	if b.d.Allowed {
		s = next
	} else if !b.d.TooLarge {
		if !fits && b.d.Limit == "" {
			b.d.Limit = name
		}
		if w := Wait(next, now); w > b.d.RetryAfter {
			b.d.RetryAfter = w
		}
	}
	q := ratelimit.Quota{Limit: l, Remaining: Remaining(s, now, l), Reset: Reset(s, now)}
	switch k {
	case Requests:
		if !b.haveReq || q.Remaining < b.d.Requests.Remaining {
			b.d.Requests, b.haveReq = q, true
		}
	case Tokens:
		if !b.haveTok || q.Remaining < b.d.Tokens.Remaining {
			b.d.Tokens, b.haveTok = q, true
		}
	}
}

// Decision returns the assembled decision.
func (b *Builder) Decision() ratelimit.Decision { return b.d }
