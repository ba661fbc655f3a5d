package redisbudget_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/budget"
	"github.com/multipolar/multipolar/internal/budget/redisbudget"
	"github.com/multipolar/multipolar/internal/testutil/redistest"
)

func TestRangeAndKeyLifetime(t *testing.T) {
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	s, err := redisbudget.New(redisbudget.Options{Client: c, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	huge := budget.Budget{Name: "key:huge", Limit: redisbudget.MaxLimit + 1, Period: budget.Total}
	if _, err := s.Reserve(ctx, budget.Request{ID: "x", Budgets: []budget.Budget{huge}, Amount: 1, Now: now, TTL: time.Minute}); err == nil {
		t.Error("Reserve with limit beyond 2^53 = nil error, want error")
	}
	// The largest exact limit works to the last micro-dollar.
	max := budget.Budget{Name: "key:max", Limit: redisbudget.MaxLimit, Period: budget.Total}
	r, err := s.Reserve(ctx, budget.Request{ID: "m1", Budgets: []budget.Budget{max}, Amount: redisbudget.MaxLimit - 1, Now: now, TTL: time.Minute})
	if err != nil {
		t.Fatalf("Reserve(MaxLimit-1) error = %v", err)
	}
	if err := s.Settle(ctx, r, redisbudget.MaxLimit-1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, budget.Request{ID: "m2", Budgets: []budget.Budget{max}, Amount: 1, Now: now, TTL: time.Minute}); err != nil {
		t.Errorf("Reserve(last micro-dollar) error = %v, want nil", err)
	}
	if _, err := s.Reserve(ctx, budget.Request{ID: "m3", Budgets: []budget.Budget{max}, Amount: 1, Now: now, TTL: time.Minute}); err == nil {
		t.Error("Reserve(one past MaxLimit) error = nil, want exceeded")
	}
	if err := s.TopUp(ctx, max, 1); err == nil {
		t.Error("TopUp beyond 2^53 error = nil, want error")
	}
	// Daily window keys expire after the window plus retention; total keys never.
	daily := budget.Budget{Name: "key:daily", Limit: 10, Period: budget.Daily}
	if _, err := s.Reserve(ctx, budget.Request{ID: "d1", Budgets: []budget.Budget{daily}, Amount: 1, Now: now, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	key := "{" + prefix + "}:b:key:daily:" + itoa(daily.WindowID(now))
	if ttl := c.PTTL(ctx, key).Val(); ttl < 35*24*time.Hour || ttl > 36*24*time.Hour {
		t.Errorf("PTTL(%s) = %v, want 35–36 days", key, ttl)
	}
	if ttl := c.PTTL(ctx, "{"+prefix+"}:b:key:max:0").Val(); ttl != -1 {
		t.Errorf("PTTL(total window) = %v, want -1 (no expiry)", ttl)
	}
}
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
