// Package redistest connects tests to the Redis server that
// MULTIPOLAR_TEST_REDIS names, and keeps each test's keys apart.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Env names the variable holding the test server's URL
// (redis://host:port/db).
const Env = "MULTIPOLAR_TEST_REDIS"

// Client returns a client for the server Env names, closed when tb ends,
// or skips tb when Env is not set.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	url := os.Getenv(Env)
	if url == "" {
		tb.Skip(Env + " not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("parse %s: %v", Env, err)
	}
	c := redis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	return c
}

// Prefix returns a random key prefix and deletes the keys under it (those
// of the "{prefix}:" hash tag) when tb ends.
func Prefix(tb testing.TB, c *redis.Client) string {
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
