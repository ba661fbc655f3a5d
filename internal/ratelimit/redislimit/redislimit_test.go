package redislimit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/ratelimit"
	"github.com/multipolar/multipolar/internal/ratelimit/ratelimittest"
	"github.com/multipolar/multipolar/internal/ratelimit/redislimit"
	"github.com/multipolar/multipolar/internal/testutil/redistest"
)

func TestConformance(t *testing.T) {
	redistest.Client(t) // skip early without Redis
	var (
		mu       sync.Mutex
		prefixes = map[*testing.T]string{}
	)
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter {
		c := redistest.Client(t) // one client per call: one per replica
		mu.Lock()
		prefix, ok := prefixes[t]
		if !ok {
			prefix = redistest.Prefix(t, c)
			prefixes[t] = prefix
		}
		mu.Unlock()
		l, err := redislimit.New(redislimit.Options{Client: c, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

func BenchmarkAllow(b *testing.B) {
	c := redistest.Client(b)
	l, err := redislimit.New(redislimit.Options{Client: c, Prefix: redistest.Prefix(b, c)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	req := ratelimit.Request{
		Limits: []ratelimit.Limit{
			{Name: "key:abc", RPM: 1 << 39, TPM: 1 << 39},
			{Name: "team:search", RPM: 1 << 39, TPM: 1 << 39},
			{Name: "provider:openai/gpt-4o", RPM: 1 << 39, TPM: 1 << 39},
		},
		Tokens: 1500,
		Now:    time.Now(),
	}
	b.ReportAllocs()
	for b.Loop() {
		req.Now = req.Now.Add(time.Microsecond)
		if d, err := l.Allow(ctx, req); err != nil || !d.Allowed {
			b.Fatalf("Allow = %+v, %v", d, err)
		}
	}
}
