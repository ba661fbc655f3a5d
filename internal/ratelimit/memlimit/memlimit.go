// Package memlimit is an in-process ratelimit.Limiter for a single gateway
// replica (use ratelimit/redislimit to share limits across replicas).
//
// Allow does no heap work in steady state: limit state lives in a
// map[string]*state looked up with the caller's existing Limit.Name (the
// map lookup does not copy the string), the decision is built on the stack,
// and all-or-nothing is two passes over the limits under one mutex, the
// first checking and the second committing, with no temporary slices. Only
// the first request for a new name allocates its state. State is never
// dropped, so names must come from a bounded set.
package memlimit

import (
	"context"
	"sync"
	"time"

	"github.com/multipolar/multipolar/internal/ratelimit"
	"github.com/multipolar/multipolar/internal/ratelimit/internal/gcra"
)

var _ ratelimit.Limiter = (*Limiter)(nil)

// Limiter is an in-memory GCRA limiter. It is safe for concurrent use.
type Limiter struct {
	mu     sync.Mutex
	states map[string]*state
}

// kindState is one GCRA state and the limit it was last computed under.
type kindState struct {
	tat gcra.State
	l   int64
}

type state struct {
	req, tok kindState
}

// New returns an empty Limiter.
func New() *Limiter {
	return &Limiter{states: make(map[string]*state)}
}

// Allow implements ratelimit.Limiter.
func (m *Limiter) Allow(ctx context.Context, req ratelimit.Request) (ratelimit.Decision, error) {
	if err := ctx.Err(); err != nil {
		return ratelimit.Decision{}, err
	}
	if err := req.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	now := req.Now.UnixMicro()
	var b gcra.Builder
	// Costs that can never fit are refused before touching state.
	for i := range req.Limits {
		l := &req.Limits[i]
		if l.RPM > 0 {
			if _, _, ok := gcra.Cost(1, l.RPM); !ok {
				b.TooLarge(l.Name)
				return b.Decision(), nil
			}
		}
		if l.TPM > 0 {
			if _, _, ok := gcra.Cost(req.Tokens, l.TPM); !ok {
				b.TooLarge(l.Name)
				return b.Decision(), nil
			}
		}
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	allowed := true
	for i := range req.Limits {
		l := &req.Limits[i]
		s := m.state(l.Name)
		if !check(&s.req, l.RPM, 1, now) || !check(&s.tok, l.TPM, req.Tokens, now) {
			allowed = false
			break
		}
	}
	b.Start(allowed)
	for i := range req.Limits {
		l := &req.Limits[i]
		s := m.states[l.Name]
		commit(&b, l.Name, gcra.Requests, &s.req, l.RPM, 1, now, allowed)
		commit(&b, l.Name, gcra.Tokens, &s.tok, l.TPM, req.Tokens, now, allowed)
	}
	return b.Decision(), nil
}

// state returns the state for name, creating it. Callers hold m.mu.
func (m *Limiter) state(name string) *state {
	s := m.states[name]
	if s == nil {
		s = new(state)
		m.states[name] = s
	}
	return s
}

// check reports whether cost fits ks under limit l (0 = unlimited).
func check(ks *kindState, l, cost, now int64) bool {
	if l <= 0 {
		return true
	}
	w, r, _ := gcra.Cost(cost, l)
	_, fits := gcra.Next(gcra.Rescale(ks.tat, ks.l, l), now, w, r, l)
	return fits
}

// commit records one kind's outcome in b and, if allowed, charges it.
func commit(b *gcra.Builder, name string, k gcra.Kind, ks *kindState, l, cost, now int64, allowed bool) {
	if l <= 0 {
		return
	}
	w, r, _ := gcra.Cost(cost, l)
	cur := gcra.Rescale(ks.tat, ks.l, l)
	next, fits := gcra.Next(cur, now, w, r, l)
	b.Observe(name, k, l, cur, next, fits, now)
	if allowed {
		ks.tat, ks.l = next, l
	}
}

// Adjust implements ratelimit.Limiter.
func (m *Limiter) Adjust(ctx context.Context, name string, tokensDelta int64, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.states[name]
	if s == nil || s.tok.l <= 0 || tokensDelta == 0 {
		return nil
	}
	l, n := s.tok.l, now.UnixMicro()
	abs := tokensDelta
	if abs < 0 {
		abs = -abs
	}
	w, r, ok := gcra.Cost(abs, l)
	if !ok {
		w, r = gcra.Period, 0 // more than a minute's worth: cap at a full minute
	}
	if tokensDelta > 0 {
		s.tok.tat, _ = gcra.Next(s.tok.tat, n, w, r, l)
	} else {
		s.tok.tat = gcra.Refund(s.tok.tat, n, w, r, l)
	}
	return nil
}
