package redisbudget_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/multipolar/multipolar/internal/budget"
	"github.com/multipolar/multipolar/internal/budget/budgettest"
	"github.com/multipolar/multipolar/internal/budget/redisbudget"
)

// newClient returns a client for MULTIPOLAR_TEST_REDIS, or skips t.
func newClient(t *testing.T) *redis.Client {
	t.Helper()
	url := os.Getenv("MULTIPOLAR_TEST_REDIS")
	if url == "" {
		t.Skip("MULTIPOLAR_TEST_REDIS not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("parse MULTIPOLAR_TEST_REDIS: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// prefixFor returns a random key prefix and deletes its keys when t ends.
func prefixFor(t *testing.T, c *redis.Client) string {
	var b [8]byte
	rand.Read(b[:])
	prefix := "mptest-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "{"+prefix+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("clean up %s: %v", prefix, err)
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
	budgettest.Run(t, func(t *testing.T) budget.Store {
		c := newClient(t) // one client per call: one per replica
		mu.Lock()
		prefix, ok := prefixes[t]
		if !ok {
			prefix = prefixFor(t, c)
			prefixes[t] = prefix
		}
		mu.Unlock()
		s, err := redisbudget.New(redisbudget.Options{Client: c, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
