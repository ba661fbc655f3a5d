// Package ratelimit defines per-minute request and token limits and the
// Limiter contract that enforces them, all or nothing, across every limit
// that applies to a request (API key, team, provider capacity).
//
// # Algorithm
//
// Implementations use GCRA (the Generic Cell Rate Algorithm, equivalent to
// a token bucket of capacity RPM or TPM refilled continuously over a
// minute), one state per limit and kind. It is exact, not an estimate: an
// idle limit admits a burst of exactly RPM requests (or TPM tokens), then
// admits one more request every minute/RPM. The arithmetic is integer,
// in microseconds, with the fractional part of minute/RPM kept as an exact
// remainder, so no rounding accumulates; the only rounding is of reported
// durations, always up (Retry-After is never early). A sliding window of two
// weighted fixed buckets was rejected because it assumes requests were
// spread evenly over the previous minute and can admit more than the limit.
//
// Compared with a fixed minute window, GCRA never admits a 2×RPM burst
// across a minute boundary, but over an arbitrary 60 s span it may admit up
// to 2×RPM−1 requests when an idle limit's full burst is followed by the
// steady refill, the same behaviour as OpenAI's continuously replenishing
// limits (their x-ratelimit-reset-* headers report time to full refill).
//
// Implementations: ratelimit/memlimit (in process, no heap work per Allow)
// and ratelimit/redislimit (shared by replicas, one Lua script per Allow).
// ratelimit/ratelimittest is the conformance suite both pass.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Limiter admits requests against per-minute limits. Implementations are
// safe for concurrent use.
type Limiter interface {
	// Allow admits req if every limit in it has room for one request and
	// req.Tokens tokens; otherwise it consumes nothing from any limit.
	Allow(ctx context.Context, req Request) (Decision, error)
	// Adjust corrects limit name's token count after the fact by
	// tokensDelta = actual − estimated: positive charges more, negative
	// refunds (never beyond a full limit). Unknown names are ignored.
	Adjust(ctx context.Context, name string, tokensDelta int64, now time.Time) error
}

// Limit is one set of per-minute limits, identified by Name.
type Limit struct {
	// Name identifies the limit's state, e.g. "key:abc", "team:search",
	// "provider:openai/gpt-4o". Names should come from a bounded set
	// (configuration), since state is kept per name.
	Name string
	// RPM is requests per minute; 0 means unlimited.
	RPM int64
	// TPM is tokens per minute; 0 means unlimited.
	TPM int64
}

// Request asks a Limiter to admit one request.
type Request struct {
	// Limits all apply; names must be distinct.
	Limits []Limit
	// Tokens is the estimated token count (prompt plus max completion);
	// correct it later with Adjust.
	Tokens int64
	// Now is the current time, injected so tests control it.
	Now time.Time
}

// ErrInvalid matches errors for malformed requests.
var ErrInvalid = errors.New("invalid rate-limit request")

// Validate reports whether r is well formed. It does not allocate unless r
// is invalid.
func (r Request) Validate() error {
	if r.Tokens < 0 {
		return fmt.Errorf("%w: negative tokens %d", ErrInvalid, r.Tokens)
	}
	for i := range r.Limits {
		l := &r.Limits[i]
		if l.Name == "" || l.RPM < 0 || l.TPM < 0 {
			return fmt.Errorf("%w: limit %q: empty name or negative rate", ErrInvalid, l.Name)
		}
		for j := range i {
			if r.Limits[j].Name == l.Name {
				return fmt.Errorf("%w: limit %q listed twice", ErrInvalid, l.Name)
			}
		}
	}
	return nil
}

// Quota describes one kind (requests or tokens) of the most constrained
// limit, for the OpenAI-style x-ratelimit-* headers.
type Quota struct {
	// Limit is the per-minute limit; 0 when no limit of this kind applies.
	Limit int64
	// Remaining is how many more units would fit right now.
	Remaining int64
	// Reset is how long until the limit is full again.
	Reset time.Duration
}

// Decision is the outcome of Allow.
type Decision struct {
	// Allowed reports whether the request was admitted (and charged).
	Allowed bool
	// Limit names the limit that refused; empty when Allowed.
	Limit string
	// RetryAfter is when the same request would next fit, assuming no other
	// traffic; zero when Allowed or TooLarge.
	RetryAfter time.Duration
	// TooLarge reports that the request alone exceeds Limit's per-minute
	// capacity (e.g. more tokens than its TPM); retrying cannot help.
	TooLarge bool
	// Requests is the requests quota of the limit with the fewest requests
	// remaining, after this request if it was allowed.
	Requests Quota
	// Tokens is the tokens quota of the limit with the fewest tokens
	// remaining, after this request if it was allowed.
	Tokens Quota
}

// SetHeaders writes the OpenAI-style x-ratelimit-{limit,remaining,reset}-
// {requests,tokens} headers for kinds that are limited and, when the request
// was refused and a retry can succeed, Retry-After in whole seconds rounded
// up. Reset durations are formatted like OpenAI's, e.g. "1s", "6m0s", "20ms".
func (d Decision) SetHeaders(h http.Header) {
	// Canonical keys are assigned directly: Header.Set would canonicalise
	// (and allocate) each name on every request. The values share one
	// backing array and the numbers one string: 4 allocations, not 12.
	quotas := [2]struct {
		q    *Quota
		keys *[3]string
	}{{&d.Requests, &requestHeaders}, {&d.Tokens, &tokenHeaders}}
	var (
		buf  [96]byte
		ends [5]int // where each number ends in buf
	)
	b, n, kinds := buf[:0], 0, 0
	appendNum := func(v int64) {
		b = strconv.AppendInt(b, v, 10)
		ends[n] = len(b)
		n++
	}
	for _, k := range quotas {
		if k.q.Limit > 0 {
			appendNum(k.q.Limit)
			appendNum(k.q.Remaining)
			kinds++
		}
	}
	retry := !d.Allowed && !d.TooLarge && d.RetryAfter > 0
	if retry {
		appendNum(int64((d.RetryAfter + time.Second - 1) / time.Second))
	}
	if n == 0 {
		return
	}
	nums := string(b)
	num := func(i int) string {
		if i == 0 {
			return nums[:ends[0]]
		}
		return nums[ends[i-1]:ends[i]]
	}
	vals := make([]string, 0, 3*kinds+1)
	set := func(key, v string) {
		vals = append(vals, v)
		h[key] = vals[len(vals)-1 : len(vals) : len(vals)] // capped: an Add copies
	}
	i := 0
	for _, k := range quotas {
		if k.q.Limit > 0 {
			set(k.keys[0], num(i))
			set(k.keys[1], num(i+1))
			set(k.keys[2], FormatReset(k.q.Reset))
			i += 2
		}
	}
	if retry {
		set("Retry-After", num(i))
	}
}

var (
	requestHeaders = [3]string{"X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests"}
	tokenHeaders   = [3]string{"X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens"}
)

// FormatReset formats d as OpenAI does in x-ratelimit-reset-*: rounded up to
// the millisecond in Go duration syntax ("20ms", "1.2s", "6m0s", "0s").
func FormatReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	return ((d + time.Millisecond - 1) / time.Millisecond * time.Millisecond).String()
}
