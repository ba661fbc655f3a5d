package route

import (
	"sync"
	"sync/atomic"
	"time"
)

// slotKey names a provider+model.
type slotKey struct{ provider, model string }

// breakerBuckets divides the error-rate window.
const breakerBuckets = 10

// slot is the live state of one provider+model: the latency average,
// attempts in flight, the 429 cool-down and the circuit breaker. Plan reads
// only the atomics; Observe updates the breaker's counts under mu.
type slot struct {
	// ttfb is the moving average of time to first byte, in nanoseconds;
	// 0 until the first sample.
	ttfb atomic.Int64
	// inflight counts attempts between Begin and End.
	inflight atomic.Int64
	// coolUntil is the Unix-nanosecond instant a 429 cool-down ends.
	coolUntil atomic.Int64
	// openUntil is 0 while the breaker is closed, else the instant it turns
	// half-open. It stays set while half-open.
	openUntil atomic.Int64
	// probeUntil is when the claim of the half-open probe lapses (a probe
	// whose outcome is never observed must not block recovery forever).
	probeUntil atomic.Int64

	mu          sync.Mutex
	consecutive int
	buckets     [breakerBuckets]struct {
		id            int64 // bucket number since the epoch
		total, failed int
	}
}

// state returns why the slot cannot take a call at now, or Admitted.
func (s *slot) state(now int64) Reason {
	if open := s.openUntil.Load(); open != 0 && (now < open || now < s.probeUntil.Load()) {
		return CircuitOpen
	}
	if now < s.coolUntil.Load() {
		return CoolingDown
	}
	return Admitted
}

// claimProbe takes the half-open probe if the breaker is half-open; it
// reports false when another attempt holds it.
func (s *slot) claimProbe(now int64, hold time.Duration) bool {
	open := s.openUntil.Load()
	if open == 0 {
		return true
	}
	for {
		p := s.probeUntil.Load()
		if now < p {
			return false
		}
		if s.probeUntil.CompareAndSwap(p, now+int64(hold)) {
			return true
		}
	}
}

// observe feeds one outcome into the latency average and the breaker.
func (s *slot) observe(h *HealthSpec, o Outcome, ttfb, retryAfter time.Duration, now int64) {
	if o == RateLimited && retryAfter > 0 {
		until := now + int64(retryAfter)
		for {
			old := s.coolUntil.Load()
			if old >= until || s.coolUntil.CompareAndSwap(old, until) {
				break
			}
		}
	}
	if ttfb > 0 && (o == Success || o == Timeout) {
		for {
			old := s.ttfb.Load()
			nv := int64(ttfb)
			if old != 0 {
				nv = old + int64(h.LatencyAlpha*float64(int64(ttfb)-old))
			}
			if s.ttfb.CompareAndSwap(old, max(nv, 1)) {
				break
			}
		}
	}
	if o != Success && !o.failure() {
		// 429s are the cool-down's business, not the breaker's; a probe
		// that met one frees the probe for the next attempt.
		if open := s.openUntil.Load(); open != 0 && now >= open {
			s.probeUntil.Store(0)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if open := s.openUntil.Load(); open != 0 {
		if now < open {
			return // a straggler that started before the breaker opened
		}
		// Half-open: the first outcome after the cool-down decides.
		s.probeUntil.Store(0)
		if o == Success {
			s.reset()
			s.openUntil.Store(0)
		} else {
			s.openUntil.Store(now + int64(h.Cooldown))
		}
		return
	}
	width := int64(h.Window) / breakerBuckets
	if width <= 0 {
		width = 1
	}
	id := now / width
	b := &s.buckets[id%breakerBuckets]
	if b.id != id {
		b.id, b.total, b.failed = id, 0, 0
	}
	b.total++
	if o == Success {
		s.consecutive = 0
		return
	}
	b.failed++
	s.consecutive++
	var total, failed int
	for i := range s.buckets {
		if c := &s.buckets[i]; c.id > id-breakerBuckets {
			total += c.total
			failed += c.failed
		}
	}
	if s.consecutive >= h.ConsecutiveFailures ||
		(total >= h.MinRequests && float64(failed) > h.ErrorRate*float64(total)) {
		s.reset()
		s.openUntil.Store(now + int64(h.Cooldown))
	}
}

// reset clears the breaker's counts; s.mu is held.
func (s *slot) reset() {
	s.consecutive = 0
	for i := range s.buckets {
		s.buckets[i].total, s.buckets[i].failed = 0, 0
	}
}

// Observe records the outcome of an attempt on provider+model (the
// upstream model name) at now: a Success or Timeout with ttfb > 0 feeds the
// latency average; Success, ServerError, Timeout and ConnectError feed the
// breaker; RateLimited with retryAfter > 0 cools the provider+model down
// until now+retryAfter (a 429 without Retry-After does not cool down;
// callers wanting a default pass one). Unknown provider+model pairs are
// ignored. Safe for concurrent use; does not allocate.
func (r *Router) Observe(provider, model string, o Outcome, ttfb, retryAfter time.Duration, now time.Time) {
	s := r.slots[slotKey{provider, model}]
	if s == nil || o == 0 {
		return
	}
	s.observe(&r.health, o, ttfb, retryAfter, now.UnixNano())
}

// Begin admits an attempt on provider+model at now, just before it is
// sent: it re-checks the cool-down and breaker (state may have changed
// since Plan), claims the one probe of a half-open breaker, reserves one
// request and tokens of the provider's capacity, and counts the attempt in
// flight. It returns Admitted, or the reason the caller should skip this
// candidate (CoolingDown, CircuitOpen, CapacityExhausted), in which case
// nothing was reserved and End must not be called. Capacity reserved is
// not returned on failure: provisioned throughput is spent by the attempt.
// Safe for concurrent use; does not allocate.
func (r *Router) Begin(provider, model string, tokens int64, now time.Time) Reason {
	t := now.UnixNano()
	s := r.slots[slotKey{provider, model}]
	if s != nil {
		if why := s.state(t); why != Admitted {
			return why
		}
		if !s.claimProbe(t, r.health.Cooldown) {
			return CircuitOpen
		}
	}
	if p := r.byName[provider]; p != nil && p.limited() {
		if !p.win.reserve(now.Unix(), max(tokens, 0), p.capacity) {
			if s != nil && s.openUntil.Load() != 0 {
				s.probeUntil.Store(0)
			}
			return CapacityExhausted
		}
	}
	if s != nil {
		s.inflight.Add(1)
	}
	return Admitted
}

// End records that an attempt admitted by Begin has finished. Safe for
// concurrent use; does not allocate.
func (r *Router) End(provider, model string) {
	if s := r.slots[slotKey{provider, model}]; s != nil {
		s.inflight.Add(-1)
	}
}

// window is a provider's sliding minute of requests and tokens: 60
// one-second buckets, each packing its second (high 32 bits) and its count
// (low 32 bits) into one word, so that adding and expiring need no lock.
type window struct {
	req, tok [60]atomic.Uint64
}

const countMask = 1<<32 - 1

// add adds n (which may be negative) to the bucket of second sec,
// replacing an expired bucket; counts saturate at zero and 2³²-1.
func add(b *atomic.Uint64, sec, n int64) {
	for {
		old := b.Load()
		c := n
		if int64(old>>32) == sec {
			c += int64(old & countMask)
		}
		if c <= 0 && int64(old>>32) != sec {
			return
		}
		nv := uint64(sec)<<32 | uint64(min(max(c, 0), countMask))
		if b.CompareAndSwap(old, nv) {
			return
		}
	}
}

// sum totals the buckets of the minute ending at second sec.
func sum(bs *[60]atomic.Uint64, sec int64) int64 {
	var t int64
	for i := range bs {
		v := bs[i].Load()
		if s := int64(v >> 32); s > sec-60 && s <= sec {
			t += int64(v & countMask)
		}
	}
	return t
}

// fits reports whether one more request of tokens fits the minute ending
// at second sec.
func (w *window) fits(sec, tokens int64, c Capacity) bool {
	sec = max(sec, 0)
	return (c.RPM == 0 || sum(&w.req, sec)+1 <= c.RPM) &&
		(c.TPM == 0 || sum(&w.tok, sec)+tokens <= c.TPM)
}

// reserve adds one request of tokens at second sec, then checks the limits
// and takes the reservation back if they are exceeded; concurrent callers
// can therefore both be refused near the limit, but never both admitted
// past it.
func (w *window) reserve(sec, tokens int64, c Capacity) bool {
	sec = max(sec, 0)
	i := sec % 60
	add(&w.req[i], sec, 1)
	add(&w.tok[i], sec, tokens)
	if (c.RPM == 0 || sum(&w.req, sec) <= c.RPM) && (c.TPM == 0 || sum(&w.tok, sec) <= c.TPM) {
		return true
	}
	add(&w.req[i], sec, -1)
	add(&w.tok[i], sec, -tokens)
	return false
}
