package redislimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multipolar/multipolar/internal/ratelimit"
	"github.com/multipolar/multipolar/internal/ratelimit/ratelimittest"
	"github.com/multipolar/multipolar/internal/ratelimit/redislimit"
)

// newClient returns a client for MULTIPOLAR_TEST_REDIS, or skips tb.
func newClient(tb testing.TB) *redis.Client {
	tb.Helper()
	url := os.Getenv("MULTIPOLAR_TEST_REDIS")
	if url == "" {
		tb.Skip("MULTIPOLAR_TEST_REDIS not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("parse MULTIPOLAR_TEST_REDIS: %v", err)
	}
	c := redis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	return c
}

// prefixFor returns a random key prefix and deletes its keys when tb ends.
func prefixFor(tb testing.TB, c *redis.Client) string {
	var b [8]byte
	rand.Read(b[:])
	prefix := "mptest-" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "{"+prefix+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			tb.Errorf("clean up %s: %v", prefix, err)
		}
	})
	return prefix
}

func TestConformance(t *testing.T) {
	newClient(t) // skip early without Redis
	var (
		mu       sync.Mutex
		prefixes = map[*testing.T]string{}
	)
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter {
		c := newClient(t) // one client per call: one per replica
		mu.Lock()
		prefix, ok := prefixes[t]
		if !ok {
			prefix = prefixFor(t, c)
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
	c := newClient(b)
	l, err := redislimit.New(redislimit.Options{Client: c, Prefix: prefixFor(b, c)})
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
