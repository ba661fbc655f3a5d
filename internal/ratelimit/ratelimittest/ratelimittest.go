// Package ratelimittest is the conformance suite every ratelimit.Limiter
// passes. A limiter's tests call Run with a constructor; see memlimit and
// redislimit.
package ratelimittest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/ratelimit"
)

// NewLimiter returns a limiter for test t. Every call with the same t must
// return a limiter over the same backend, empty when t starts; calls with
// different t must not share state. Returning a new client per call lets
// the concurrency test model several gateway replicas.
type NewLimiter func(t *testing.T) ratelimit.Limiter

// Run runs the conformance suite against limiters made by newLimiter.
func Run(t *testing.T, newLimiter NewLimiter) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewLimiter)
	}{
		{"RPMBoundary", testRPMBoundary},
		{"RPMNotDividingMinute", testRPMNotDividingMinute},
		{"TPMAndAdjust", testTPMAndAdjust},
		{"AllOrNothing", testAllOrNothing},
		{"RetryAfter", testRetryAfter},
		{"MostConstrained", testMostConstrained},
		{"Unlimited", testUnlimited},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newLimiter) })
	}
}

// t0 is an arbitrary instant on a whole second.
var t0 = time.Date(2026, 11, 18, 12, 0, 0, 0, time.UTC)

func allow(t *testing.T, l ratelimit.Limiter, now time.Time, tokens int64, limits ...ratelimit.Limit) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), ratelimit.Request{Limits: limits, Tokens: tokens, Now: now})
	if err != nil {
		t.Fatalf("Allow(%v, %d tokens) error = %v", limits, tokens, err)
	}
	return d
}

func mustAllow(t *testing.T, l ratelimit.Limiter, now time.Time, tokens int64, limits ...ratelimit.Limit) ratelimit.Decision {
	t.Helper()
	d := allow(t, l, now, tokens, limits...)
	if !d.Allowed {
		t.Fatalf("Allow(%v, %d tokens) at %v = refused by %q (retry after %v), want allowed",
			limits, tokens, now.Sub(t0), d.Limit, d.RetryAfter)
	}
	return d
}

func mustRefuse(t *testing.T, l ratelimit.Limiter, now time.Time, tokens int64, by string, limits ...ratelimit.Limit) ratelimit.Decision {
	t.Helper()
	d := allow(t, l, now, tokens, limits...)
	if d.Allowed || d.Limit != by {
		t.Fatalf("Allow(%v, %d tokens) at %v = allowed %v by %q, want refused by %q", limits, tokens, now.Sub(t0), d.Allowed, d.Limit, by)
	}
	return d
}

func testRPMBoundary(t *testing.T, newLimiter NewLimiter) {
	l := newLimiter(t)
	key := ratelimit.Limit{Name: "key:rpm", RPM: 50}
	var d ratelimit.Decision
	for range 50 {
		d = mustAllow(t, l, t0, 0, key)
	}
	want := ratelimit.Quota{Limit: 50, Remaining: 0, Reset: time.Minute}
	if diff := cmp.Diff(want, d.Requests); diff != "" {
		t.Errorf("50th Allow: Requests mismatch (-want +got):\n%s", diff)
	}
	d = mustRefuse(t, l, t0, 0, "key:rpm", key)
	if d.RetryAfter != 1200*time.Millisecond {
		t.Errorf("51st Allow: RetryAfter = %v, want 1.2s", d.RetryAfter)
	}
	mustRefuse(t, l, t0.Add(1200*time.Millisecond-time.Microsecond), 0, "key:rpm", key)
	mustAllow(t, l, t0.Add(1200*time.Millisecond), 0, key)
	mustRefuse(t, l, t0.Add(1200*time.Millisecond), 0, "key:rpm", key)
	// A minute after the last admission the limit is full again.
	later := t0.Add(1200*time.Millisecond + time.Minute)
	for range 50 {
		mustAllow(t, l, later, 0, key)
	}
	mustRefuse(t, l, later, 0, "key:rpm", key)
}

func testRPMNotDividingMinute(t *testing.T, newLimiter NewLimiter) {
	l := newLimiter(t)
	key := ratelimit.Limit{Name: "key:rpm7", RPM: 7}
	for range 7 {
		mustAllow(t, l, t0, 0, key)
	}
	// 60s/7 = 8571428.57µs: the retry is rounded up, never early.
	d := mustRefuse(t, l, t0, 0, "key:rpm7", key)
	if want := 8571429 * time.Microsecond; d.RetryAfter != want {
		t.Errorf("RetryAfter = %v, want %v", d.RetryAfter, want)
	}
	mustRefuse(t, l, t0.Add(8571428*time.Microsecond), 0, "key:rpm7", key)
	mustAllow(t, l, t0.Add(8571429*time.Microsecond), 0, key)
	// By 7 minutes the limit has admitted 7 + 7×7 in total, no more: the
	// 49th refill is due at exactly 420s.
	n := 8
	for now := t0; !now.After(t0.Add(7 * time.Minute)); now = now.Add(100 * time.Millisecond) {
		if allow(t, l, now, 0, key).Allowed {
			n++
		}
	}
	if n != 7+7*7 {
		t.Errorf("admitted %d requests in 7 minutes at RPM 7, want %d", n, 7+7*7)
	}
}

func testTPMAndAdjust(t *testing.T, newLimiter NewLimiter) {
	l := newLimiter(t)
	ctx := context.Background()
	key := ratelimit.Limit{Name: "key:tpm", TPM: 1000}
	d := mustAllow(t, l, t0, 600, key)
	if want := (ratelimit.Quota{Limit: 1000, Remaining: 400, Reset: 36 * time.Second}); d.Tokens != want {
		t.Errorf("Allow(600 tokens): Tokens = %+v, want %+v", d.Tokens, want)
	}
	d = mustRefuse(t, l, t0, 600, "key:tpm", key)
	if d.RetryAfter != 12*time.Second || d.Tokens.Remaining != 400 {
		t.Errorf("Allow(600 more tokens): RetryAfter %v, remaining %d; want 12s, 400", d.RetryAfter, d.Tokens.Remaining)
	}
	// The request used only 200 tokens: refund 400.
	if err := l.Adjust(ctx, "key:tpm", -400, t0); err != nil {
		t.Fatalf("Adjust(-400) error = %v", err)
	}
	mustAllow(t, l, t0, 600, key) // 800 used
	// That one used 1100, not 600: charge 500 more, 1300 in all.
	if err := l.Adjust(ctx, "key:tpm", 500, t0); err != nil {
		t.Fatalf("Adjust(+500) error = %v", err)
	}
	d = mustRefuse(t, l, t0, 1, "key:tpm", key)
	if want := 18060 * time.Millisecond; d.RetryAfter != want {
		t.Errorf("Allow(1 token) after overrun: RetryAfter = %v, want %v", d.RetryAfter, want)
	}
	mustAllow(t, l, t0.Add(18060*time.Millisecond), 1, key)
	// Refunds never bank credit beyond a full limit.
	if err := l.Adjust(ctx, "key:tpm", -100000, t0.Add(time.Hour)); err != nil {
		t.Fatalf("Adjust(-100000) error = %v", err)
	}
	mustAllow(t, l, t0.Add(time.Hour), 1000, key)
	mustRefuse(t, l, t0.Add(time.Hour), 1, "key:tpm", key)
	// A request larger than the whole limit can never pass.
	d = mustRefuse(t, l, t0.Add(2*time.Hour), 1001, "key:tpm", key)
	if !d.TooLarge || d.RetryAfter != 0 {
		t.Errorf("Allow(1001 tokens, TPM 1000): TooLarge %v, RetryAfter %v; want true, 0", d.TooLarge, d.RetryAfter)
	}
	mustAllow(t, l, t0.Add(2*time.Hour), 1000, key) // the refusal charged nothing
	if err := l.Adjust(ctx, "key:unknown", 5, t0); err != nil {
		t.Errorf("Adjust(unknown) error = %v, want nil", err)
	}
}

func testAllOrNothing(t *testing.T, newLimiter NewLimiter) {
	l := newLimiter(t)
	key := ratelimit.Limit{Name: "key:aon", RPM: 10, TPM: 10_000}
	team := ratelimit.Limit{Name: "team:aon", RPM: 1}
	provider := ratelimit.Limit{Name: "provider:aon", TPM: 5_000}
	mustAllow(t, l, t0, 1_000, key, team, provider)
	for range 5 {
		mustRefuse(t, l, t0, 1_000, "team:aon", key, team, provider)
		mustRefuse(t, l, t0, 1_000, "team:aon", team, key)
	}
	// The provider refuses on tokens; the key and team lose nothing either.
	mustRefuse(t, l, t0, 4_500, "provider:aon", key, provider)
	// The team's refusals consumed nothing from the key: 9 requests and
	// 9,000 tokens remain.
	for i := range 9 {
		d := mustAllow(t, l, t0, 1_000, key)
		if d.Requests.Remaining != int64(8-i) {
			t.Errorf("Allow #%d: Requests.Remaining = %d, want %d", i+2, d.Requests.Remaining, 8-i)
		}
	}
	mustRefuse(t, l, t0, 0, "key:aon", key)
	// 4,000 tokens remain on the provider: the 4,500 refusal charged nothing.
	mustAllow(t, l, t0, 4_000, provider)
}

func testRetryAfter(t *testing.T, newLimiter NewLimiter) {
	l := newLimiter(t)
	key := ratelimit.Limit{Name: "key:retry", RPM: 60, TPM: 600}
	team := ratelimit.Limit{Name: "team:retry", RPM: 2}
	mustAllow(t, l, t0, 300, key, team)
	mustAllow(t, l, t0, 250, key, team)
	// Team needs 30s for a request slot; key needs 15s for 150 more tokens.
	// The request fits only when both do: after 30s.
	d := mustRefuse(t, l, t0, 200, "key:retry", key, team)
	if d.RetryAfter != 30*time.Second {
		t.Errorf("RetryAfter = %v, want 30s", d.RetryAfter)
	}
	mustRefuse(t, l, t0.Add(d.RetryAfter-time.Microsecond), 200, "team:retry", key, team)
	mustAllow(t, l, t0.Add(d.RetryAfter), 200, key, team)
}

func testMostConstrained(t *testing.T, newLimiter NewLimiter) {
	l := newLimiter(t)
	key := ratelimit.Limit{Name: "key:mc", RPM: 100, TPM: 1_000}
	team := ratelimit.Limit{Name: "team:mc", RPM: 10, TPM: 100_000}
	d := mustAllow(t, l, t0, 100, key, team)
	want := ratelimit.Decision{
		Allowed:  true,
		Requests: ratelimit.Quota{Limit: 10, Remaining: 9, Reset: 6 * time.Second},
		Tokens:   ratelimit.Quota{Limit: 1_000, Remaining: 900, Reset: 6 * time.Second},
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("Allow: Decision mismatch (-want +got):\n%s", diff)
	}
}

func testUnlimited(t *testing.T, newLimiter NewLimiter) {
	l := newLimiter(t)
	free := ratelimit.Limit{Name: "key:free"}
	for range 100 {
		d := mustAllow(t, l, t0, 1_000_000, free)
		if d.Requests.Limit != 0 || d.Tokens.Limit != 0 {
			t.Fatalf("Allow(unlimited) = %+v, want zero quotas", d)
		}
	}
	mustAllow(t, l, t0, 0)
}

// testConcurrent: 200 goroutines over three replicas against RPM 50 at one
// instant; exactly 50 must pass.
func testConcurrent(t *testing.T, newLimiter NewLimiter) {
	replicas := []ratelimit.Limiter{newLimiter(t), newLimiter(t), newLimiter(t)}
	key := ratelimit.Limit{Name: "key:concurrent", RPM: 50, TPM: 1_000_000}
	team := ratelimit.Limit{Name: "team:concurrent", RPM: 60}
	var (
		wg      sync.WaitGroup
		allowed atomic.Int64
		failed  atomic.Value
	)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One instant: GCRA orders admissions by time, so callers whose
			// clocks lag the first admission by more than the refill
			// interval's slack would be refused (as with replica clock skew).
			d, err := replicas[i%3].Allow(context.Background(), ratelimit.Request{
				Limits: []ratelimit.Limit{team, key}, Tokens: 10, Now: t0})
			if err != nil {
				failed.Store(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("Allow error = %v", err)
	}
	if n := allowed.Load(); n != 50 {
		t.Errorf("concurrent Allow at RPM 50: %d allowed, want exactly 50", n)
	}
	// The team (one request per second refill) was charged exactly those 50.
	d := allow(t, replicas[0], t0, 0, team)
	if d.Requests.Remaining != 60-50-1 {
		t.Errorf("team Requests.Remaining = %d, want %d", d.Requests.Remaining, 60-50-1)
	}
}
