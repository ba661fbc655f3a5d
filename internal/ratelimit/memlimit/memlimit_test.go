package memlimit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/ratelimit"
	"github.com/multipolar/multipolar/internal/ratelimit/memlimit"
	"github.com/multipolar/multipolar/internal/ratelimit/ratelimittest"
)

func TestConformance(t *testing.T) {
	var (
		mu       sync.Mutex
		limiters = map[*testing.T]*memlimit.Limiter{}
	)
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter {
		mu.Lock()
		defer mu.Unlock()
		if l, ok := limiters[t]; ok {
			return l // replicas of one in-process limiter share it
		}
		l := memlimit.New()
		limiters[t] = l
		return l
	})
}

func threeLimits() ratelimit.Request {
	return ratelimit.Request{
		Limits: []ratelimit.Limit{
			{Name: "key:abc", RPM: 1 << 40, TPM: 1 << 50},
			{Name: "team:search", RPM: 1 << 40, TPM: 1 << 50},
			{Name: "provider:openai/gpt-4o", RPM: 1 << 40, TPM: 1 << 50},
		},
		Tokens: 1500,
		Now:    time.Date(2026, 11, 18, 12, 0, 0, 0, time.UTC),
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	l := memlimit.New()
	ctx := context.Background()
	req := threeLimits()
	if _, err := l.Allow(ctx, req); err != nil { // registers the names
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		req.Now = req.Now.Add(time.Microsecond)
		d, err := l.Allow(ctx, req)
		if err != nil || !d.Allowed {
			t.Fatalf("Allow = %+v, %v", d, err)
		}
	})
	if allocs != 0 {
		t.Errorf("Allow with 3 limits: %v allocs/op, want 0", allocs)
	}
	refused := threeLimits()
	refused.Limits[1].RPM = 1
	refused.Limits[1].Name = "team:tight"
	l.Allow(ctx, refused)
	allocs = testing.AllocsPerRun(1000, func() {
		if d, _ := l.Allow(ctx, refused); d.Allowed {
			t.Fatal("Allow = allowed, want refused")
		}
	})
	if allocs != 0 {
		t.Errorf("refused Allow with 3 limits: %v allocs/op, want 0", allocs)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := memlimit.New()
	ctx := context.Background()
	req := threeLimits()
	b.ReportAllocs()
	for b.Loop() {
		req.Now = req.Now.Add(time.Microsecond)
		if _, err := l.Allow(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := memlimit.New()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := threeLimits()
		for pb.Next() {
			if _, err := l.Allow(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
