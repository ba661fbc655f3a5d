package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/multipolar/multipolar/internal/server"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

// TestCapacitySharedAcrossReplicas: with limits in Redis, a provider's
// declared capacity is one budget for every replica. Two gateways share
// rpm: 3 of the first-refusal holder: the fourth request, whichever replica
// takes it, spills to the next tier.
func TestCapacitySharedAcrossReplicas(t *testing.T) {
	url := os.Getenv("MULTIPOLAR_TEST_REDIS")
	if url == "" {
		t.Skip("MULTIPOLAR_TEST_REDIS not set")
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	prefix := "mptest-capacity-" + hex.EncodeToString(rb[:])
	t.Cleanup(func() { flushPrefix(t, url, prefix) })
	testEnv["CAP_REDIS_URL"] = url

	u := newUpstream(t, fakeupstream.Options{})
	yaml := fmt.Sprintf(`
ledger: {driver: none}
limits: {driver: redis, url: "${CAP_REDIS_URL}", prefix: %s}
providers:
  - {name: holder, type: openai-compatible, base_url: "%[2]s/v1", capacity: {rpm: 3}, serves: ["gpt-*"]}
  - {name: spill, type: openai-compatible, base_url: "%[2]s/v1"}
models:
  - {name: gpt-4o, routes: [spill]}
agreements:
  - {name: deal, type: first_refusal, holder: holder, scope: {models: ["gpt-*"]}}
`, prefix, u.URL) + keysYAML
	a := serveGateway(t, server.Options{Config: parseConfig(t, yaml)})
	b := serveGateway(t, server.Options{Config: parseConfig(t, yaml)})
	var served []string
	for i, g := range []*gateway{a, b, a, b, a} {
		resp, body := g.do(t, http.MethodPost, "/v1/chat/completions", keyAll, []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, body)
		}
		served = append(served, resp.Header.Get("X-Multipolar-Provider"))
	}
	if got, want := strings.Join(served, ","), "holder,holder,holder,spill,spill"; got != want {
		t.Errorf("served by %s, want %s: the capacity is one across replicas", got, want)
	}
}

func flushPrefix(t *testing.T, url, prefix string) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pattern := range []string{"{" + prefix + "}*", prefix + "*"} {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			_ = c.Del(ctx, iter.Val()).Err()
		}
	}
}
