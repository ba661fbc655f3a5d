package server_test

// End-to-end routing: fault injection and failover, retry rounds, the
// circuit breaker, client disconnects, workload policies, tier strategies
// and POST /admin/route/explain, each through a real gateway and fake
// upstreams. First-right-of-refusal agreements are in
// e2e_routing_refusal_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/server"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

// testClock is the injectable clock routing decisions read
// (server.Options.Now).
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startRoutingGateway serves yaml with routing's clock set to clk (nil:
// the real clock).
func startRoutingGateway(t *testing.T, yaml string, clk *testClock) *gateway {
	t.Helper()
	opts := server.Options{Config: parseConfig(t, yaml)}
	if clk != nil {
		opts.Now = clk.Now
	}
	return serveGateway(t, opts)
}

// chatJSON is a one-message chat request body for model; extra is spliced
// in as further top-level fields (`"stream":true`, tools, ...).
func chatJSON(model, extra string) []byte {
	b := `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]`
	if extra != "" {
		b += "," + extra
	}
	return []byte(b + "}")
}

// chat posts body to /v1/chat/completions with key and the given header
// pairs; the response is validated against OpenAI's spec.
func (g *gateway) chat(t *testing.T, key string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return doRequest(t, req)
}

// served returns the provider and route headers of a response.
func served(resp *http.Response) (provider, route string) {
	return resp.Header.Get("X-Multipolar-Provider"), resp.Header.Get("X-Multipolar-Route")
}

// errorMessage returns error.message of an OpenAI error body.
func errorMessage(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error.Message
}

// ledgerNone keeps routing gateways free of ledger work.
const ledgerNone = `
ledger: {driver: none}
`

// TestRoutingFault injects one fault into the first provider of a
// two-provider route and checks the failover: who served, every attempt in
// x-multipolar-route, the requests each fake received, and that the whole
// request stayed inside timeouts.request.
func TestRoutingFault(t *testing.T) {
	const reqTimeout = 5 * time.Second
	tests := []struct {
		name     string
		behavior fakeupstream.Behavior
		closed   bool // the first provider's port is closed
		stream   bool
		// wantProvider served; wantRoute is the whole route header.
		wantProvider string
		wantRoute    string
		// wantFirst and wantSecond are the requests each fake received.
		wantFirst, wantSecond int
		wantStatus            int
		wantCutEvent          bool
		// wantOutcome is bad's attempt in multipolar_upstream_attempts_total.
		wantOutcome string
	}{
		{name: "429 with Retry-After", behavior: fakeupstream.Behavior{Status: 429, RetryAfter: "2"},
			wantProvider: "ok", wantRoute: "bad=candidate;ok=candidate;bad=rate_limited(429);ok=served",
			wantFirst: 1, wantSecond: 1, wantOutcome: "rate_limited", wantStatus: 200},
		{name: "500", behavior: fakeupstream.Behavior{Status: 500},
			wantProvider: "ok", wantRoute: "bad=candidate;ok=candidate;bad=server_error(500);ok=served",
			wantFirst: 1, wantSecond: 1, wantOutcome: "server_error", wantStatus: 200},
		{name: "hang", behavior: fakeupstream.Behavior{Hang: true},
			wantProvider: "ok", wantRoute: "bad=candidate;ok=candidate;bad=timeout;ok=served",
			wantFirst: 1, wantSecond: 1, wantOutcome: "timeout", wantStatus: 200},
		{name: "first byte just in time", behavior: fakeupstream.Behavior{Delay: 100 * time.Millisecond},
			wantProvider: "bad", wantRoute: "bad=candidate;ok=candidate;bad=served",
			wantFirst: 1, wantSecond: 0, wantOutcome: "served", wantStatus: 200},
		{name: "first byte too late", behavior: fakeupstream.Behavior{Delay: 900 * time.Millisecond},
			wantProvider: "ok", wantRoute: "bad=candidate;ok=candidate;bad=timeout;ok=served",
			wantFirst: 1, wantSecond: 1, wantOutcome: "timeout", wantStatus: 200},
		{name: "stream cut halfway", behavior: fakeupstream.Behavior{CutAfter: 2}, stream: true,
			wantProvider: "bad", wantRoute: "bad=candidate;ok=candidate;bad=served",
			wantFirst: 1, wantSecond: 0, wantOutcome: "served", wantStatus: 200, wantCutEvent: true},
		{name: "connection refused", closed: true,
			wantProvider: "ok", wantRoute: "bad=candidate;ok=candidate;bad=connect_error;ok=served",
			wantFirst: 0, wantSecond: 1, wantOutcome: "connect_error", wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bad := newUpstream(t, fakeupstream.Options{})
			bad.SetDefault(tc.behavior)
			ok := newUpstream(t, fakeupstream.Options{})
			badURL := bad.URL
			if tc.closed {
				badURL = closedURL(t)
			}
			g := startRoutingGateway(t, fmt.Sprintf(`
timeouts: {first_byte: 400ms, request: %s}
providers:
  - {name: bad, type: openai-compatible, base_url: %s/v1}
  - {name: ok, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [bad, ok]}
`+keysYAML+ledgerNone, reqTimeout, badURL, ok.URL), nil)

			extra := ""
			if tc.stream {
				extra = `"stream":true`
			}
			start := time.Now()
			resp, body := g.chat(t, keyAll, chatJSON("gpt-4o", extra))
			elapsed := time.Since(start)

			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, body)
			}
			prov, route := served(resp)
			if prov != tc.wantProvider {
				t.Errorf("x-multipolar-provider = %q, want %q", prov, tc.wantProvider)
			}
			if route != tc.wantRoute {
				t.Errorf("x-multipolar-route = %q, want %q", route, tc.wantRoute)
			}
			if n := len(bad.Requests()); !tc.closed && n != tc.wantFirst {
				t.Errorf("bad received %d requests, want %d", n, tc.wantFirst)
			}
			if n := len(ok.Requests()); n != tc.wantSecond {
				t.Errorf("ok received %d requests, want %d", n, tc.wantSecond)
			}
			if elapsed >= reqTimeout {
				t.Errorf("request took %v, want under timeouts.request %v", elapsed, reqTimeout)
			}
			attempts := map[string]string{"provider": "bad", "model": "gpt-4o", "outcome": tc.wantOutcome}
			if v, _ := metricValue(g.scrape(t), "multipolar_upstream_attempts_total", attempts); v != 1 {
				t.Errorf("multipolar_upstream_attempts_total%v = %v, want 1", attempts, v)
			}
			if tc.wantCutEvent {
				if !bytes.Contains(body, []byte(`data: {"error"`)) || bytes.Contains(body, []byte("[DONE]")) {
					t.Errorf("cut stream body = %q, want an error event and no [DONE]", body)
				}
			}
		})
	}
}

// TestRoutingFaultCooldown checks that a 429's Retry-After cools the
// provider down on routing's clock, and that it is offered again after.
func TestRoutingFaultCooldown(t *testing.T) {
	clk := newTestClock(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	bad := newUpstream(t, fakeupstream.Options{})
	bad.Enqueue(fakeupstream.Behavior{Status: 429, RetryAfter: "5"})
	ok := newUpstream(t, fakeupstream.Options{})
	g := startRoutingGateway(t, fmt.Sprintf(`
providers:
  - {name: bad, type: openai-compatible, base_url: %s/v1}
  - {name: ok, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [bad, ok]}
`+keysYAML+ledgerNone, bad.URL, ok.URL), clk)

	steps := []struct {
		advance      time.Duration
		wantProvider string
		wantRoute    string
		wantBad      int
	}{
		{0, "ok", "bad=candidate;ok=candidate;bad=rate_limited(429);ok=served", 1},
		{4 * time.Second, "ok", "bad=refused:cooling_down;ok=candidate;ok=served", 1},
		{2 * time.Second, "bad", "bad=candidate;ok=candidate;bad=served", 2},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		resp, body := g.chat(t, keyAll, chatJSON("gpt-4o", ""))
		prov, route := served(resp)
		if resp.StatusCode != 200 || prov != st.wantProvider || route != st.wantRoute {
			t.Errorf("request %d = %d %q %q, want 200 %q %q; body %s", i+1, resp.StatusCode, prov, route, st.wantProvider, st.wantRoute, body)
		}
		if n := len(bad.Requests()); n != st.wantBad {
			t.Errorf("after request %d bad received %d requests, want %d", i+1, n, st.wantBad)
		}
	}
}

// TestRoutingRetry checks retry rounds over a single provider that answers
// 429 (Retry-After: 0) once, then 200.
func TestRoutingRetry(t *testing.T) {
	tests := []struct {
		name         string
		retries      int
		wantStatus   int
		wantProvider string
		wantRoute    string
		wantRequests int
	}{
		{name: "one retry serves", retries: 1, wantStatus: 200, wantProvider: "only",
			wantRoute: "only=candidate;only=rate_limited(429);only=served", wantRequests: 2},
		{name: "no retry passes the 429 on", retries: 0, wantStatus: 429, wantProvider: "only",
			wantRoute: "only=candidate;only=rate_limited(429)", wantRequests: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, fakeupstream.Options{})
			up.Enqueue(fakeupstream.Behavior{Status: 429, RetryAfter: "0"})
			g := startRoutingGateway(t, fmt.Sprintf(`
routing: {retries: %d, backoff_base: 10ms}
providers:
  - {name: only, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [only]}
`+keysYAML+ledgerNone, tc.retries, up.URL), nil)
			start := time.Now()
			resp, body := g.chat(t, keyAll, chatJSON("gpt-4o", ""))
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("request took %v, want well under 3s (backoff_base 10ms)", elapsed)
			}
			prov, route := served(resp)
			if resp.StatusCode != tc.wantStatus || prov != tc.wantProvider || route != tc.wantRoute {
				t.Errorf("response = %d %q %q, want %d %q %q; body %s", resp.StatusCode, prov, route, tc.wantStatus, tc.wantProvider, tc.wantRoute, body)
			}
			if n := len(up.Requests()); n != tc.wantRequests {
				t.Errorf("upstream received %d requests, want %d", n, tc.wantRequests)
			}
		})
	}
}

// TestRoutingBreaker opens the first provider's circuit after two 500s,
// lets one probe through once the cool-down has passed on routing's
// clock, and closes or re-opens it by the probe's outcome.
func TestRoutingBreaker(t *testing.T) {
	const (
		fail = "bad=candidate;ok=candidate;bad=server_error(500);ok=served"
		open = "bad=refused:circuit_open;ok=candidate;ok=served"
		good = "bad=candidate;ok=candidate;bad=served"
	)
	tests := []struct {
		name      string
		probe     int    // the probe's status
		wantProbe string // route of the probe request
		wantAfter string // route of the request after it
		// wantBad is what bad received in the end: 2 failures, the probe,
		// and the request after it when the circuit closed.
		wantBad int
	}{
		{name: "probe succeeds", probe: 200, wantProbe: good, wantAfter: good, wantBad: 4},
		{name: "probe fails", probe: 500, wantProbe: fail, wantAfter: open, wantBad: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newTestClock(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
			bad := newUpstream(t, fakeupstream.Options{})
			bad.SetDefault(fakeupstream.Behavior{Status: 500})
			ok := newUpstream(t, fakeupstream.Options{})
			g := startRoutingGateway(t, fmt.Sprintf(`
routing: {breaker: {consecutive_failures: 2, cooldown: 30s}}
providers:
  - {name: bad, type: openai-compatible, base_url: %s/v1}
  - {name: ok, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [bad, ok]}
`+keysYAML+ledgerNone, bad.URL, ok.URL), clk)

			check := func(step, wantRoute string, wantBad int) {
				t.Helper()
				resp, body := g.chat(t, keyAll, chatJSON("gpt-4o", ""))
				if _, route := served(resp); resp.StatusCode != 200 || route != wantRoute {
					t.Errorf("%s: response = %d %q, want 200 %q; body %s", step, resp.StatusCode, route, wantRoute, body)
				}
				if n := len(bad.Requests()); n != wantBad {
					t.Errorf("%s: bad received %d requests, want %d", step, n, wantBad)
				}
			}
			check("failure 1", fail, 1)
			check("failure 2", fail, 2)
			check("open", open, 2)
			clk.Advance(29 * time.Second)
			check("still open at 29s", open, 2)
			clk.Advance(2 * time.Second)
			if tc.probe == 200 {
				bad.SetDefault(fakeupstream.Behavior{})
			}
			check("probe", tc.wantProbe, 3)
			check("after probe", tc.wantAfter, tc.wantBad)
			failures := map[string]string{"provider": "bad", "outcome": "server_error"}
			wantFailures := 2.0
			if tc.probe != 200 {
				wantFailures = 3
			}
			if v, _ := metricValue(g.scrape(t), "multipolar_upstream_attempts_total", failures); v != wantFailures {
				t.Errorf("multipolar_upstream_attempts_total%v = %v, want %v", failures, v, wantFailures)
			}
		})
	}
}

// TestRoutingClientDisconnect checks that a client leaving mid-stream
// ends the upstream request's context.
func TestRoutingClientDisconnect(t *testing.T) {
	up := newUpstream(t, fakeupstream.Options{Chunks: 50})
	up.SetDefault(fakeupstream.Behavior{ChunkDelay: 50 * time.Millisecond})
	g := startRoutingGateway(t, fmt.Sprintf(`
providers:
  - {name: only, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [only]}
`+keysYAML+ledgerNone, up.URL), nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(chatJSON("gpt-4o", `"stream":true`)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+keyAll)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first stream line = %q, %v; want a data line", line, err)
	}
	cancel()
	resp.Body.Close()
	eventually(t, "the upstream handler sees its request context end", func() bool {
		ended := up.Ended()
		return len(ended) == 1 && ended[0] != nil
	})
	if n := len(up.Requests()); n != 1 {
		t.Errorf("upstream received %d requests, want 1", n)
	}
}

// TestRoutingPolicies checks that each workload-policy constraint
// excludes the right candidates and names itself, in the route header or
// in a 403.
func TestRoutingPolicies(t *testing.T) {
	ups := map[string]*upstream{}
	for _, name := range []string{"us", "eu", "jsononly", "pricey", "cheap", "llamahost"} {
		ups[name] = newUpstream(t, fakeupstream.Options{})
	}
	g := startRoutingGateway(t, fmt.Sprintf(`
providers:
  - {name: us, type: openai-compatible, base_url: %s/v1, region: us-east-1}
  - {name: eu, type: openai-compatible, base_url: %s/v1, region: eu-west-1}
  - {name: jsononly, type: openai-compatible, base_url: %s/v1, capabilities: [json]}
  - {name: pricey, type: openai-compatible, base_url: %s/v1}
  - {name: cheap, type: openai-compatible, base_url: %s/v1}
  - {name: llamahost, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, family: openai, routes: [us, eu]}
  - {name: us-only, routes: [us]}
  - {name: tooly, routes: [jsononly, eu]}
  - {name: priced, routes: [pricey, cheap]}
  - {name: pricey-only, routes: [pricey]}
  - {name: fam, family: openai, routes: [{provider: llamahost, model: llama-3, family: llama}, eu]}
  - {name: claude, family: anthropic, routes: [eu]}
prices:
  - {provider: pricey, model: priced, input: "30", output: "60"}
  - {provider: cheap, model: priced, input: "1", output: "2"}
  - {provider: pricey, model: pricey-only, input: "30", output: "60"}
policies:
  - {workload: eu, regions: [eu-west-1]}
  - {workload: agents, require: [tools]}
  - {workload: restricted, providers: [eu]}
  - {workload: budget, max_price_per_mtok: "10"}
  - {workload: strict}
  - {workload: lenient, allow_family_fallback: true}
  - {workload: gptonly, models: ["gpt-*"]}
keys:
  - {name: all, key: "${KEY_ALL}"}
  - {name: eu-default, key: "${KEY_GPT}", workload: eu}
admin: {token: "${ADMIN_TOKEN}"}
`+ledgerNone, ups["us"].URL, ups["eu"].URL, ups["jsononly"].URL, ups["pricey"].URL, ups["cheap"].URL, ups["llamahost"].URL), nil)

	const tools = `"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{}}}}]`
	tests := []struct {
		name     string
		key      string
		workload string // x-multipolar-workload; "" sends none
		model    string
		extra    string
		// wantStatus; on 200 wantProvider and wantRoute, else wantMsg is
		// a substring of the error message and wantCode its code.
		wantStatus   int
		wantProvider string
		wantRoute    string
		wantMsg      string
		wantCode     string
	}{
		{name: "no policy keeps the route", key: keyAll, model: "gpt-4o",
			wantStatus: 200, wantProvider: "us", wantRoute: "us=candidate;eu=candidate;us=served"},
		{name: "capability required", key: keyAll, workload: "agents", model: "tooly", extra: tools,
			wantStatus: 200, wantProvider: "eu", wantRoute: "jsononly=refused:missing_capability;eu=candidate;eu=served"},
		{name: "region", key: keyAll, workload: "eu", model: "gpt-4o",
			wantStatus: 200, wantProvider: "eu", wantRoute: "us=refused:region_not_allowed;eu=candidate;eu=served"},
		{name: "region from the key's workload", key: keyGPT, model: "gpt-4o",
			wantStatus: 200, wantProvider: "eu", wantRoute: "us=refused:region_not_allowed;eu=candidate;eu=served"},
		{name: "header overrides the key's workload", key: keyGPT, workload: "restricted", model: "gpt-4o",
			wantStatus: 200, wantProvider: "eu", wantRoute: "us=refused:provider_not_allowed;eu=candidate;eu=served"},
		{name: "no provider in region", key: keyAll, workload: "eu", model: "us-only",
			wantStatus: 403, wantMsg: "region (allowed eu-west-1)", wantCode: "policy_region"},
		{name: "providers allow-list", key: keyAll, workload: "restricted", model: "gpt-4o",
			wantStatus: 200, wantProvider: "eu", wantRoute: "us=refused:provider_not_allowed;eu=candidate;eu=served"},
		{name: "price cap", key: keyAll, workload: "budget", model: "priced",
			wantStatus: 200, wantProvider: "cheap", wantRoute: "pricey=refused:price_too_high;cheap=candidate;cheap=served"},
		{name: "all too expensive", key: keyAll, workload: "budget", model: "pricey-only",
			wantStatus: 403, wantMsg: "price (at most 10000000 micro-dollars", wantCode: "policy_price"},
		{name: "family fallback not allowed", key: keyAll, workload: "strict", model: "fam",
			wantStatus: 200, wantProvider: "eu", wantRoute: "llamahost=refused:family_not_allowed;eu=candidate;eu=served"},
		{name: "family fallback allowed", key: keyAll, workload: "lenient", model: "fam",
			wantStatus: 200, wantProvider: "llamahost", wantRoute: "llamahost=candidate;eu=candidate;llamahost=served"},
		{name: "model not allowed", key: keyAll, workload: "gptonly", model: "claude",
			wantStatus: 403, wantMsg: `model "claude" is not allowed for workload "gptonly"`, wantCode: "policy_model"},
		{name: "model allowed", key: keyAll, workload: "gptonly", model: "gpt-4o",
			wantStatus: 200, wantProvider: "us", wantRoute: "us=candidate;eu=candidate;us=served"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.workload != "" {
				hdr = []string{"X-Multipolar-Workload", tc.workload}
			}
			resp, body := g.chat(t, tc.key, chatJSON(tc.model, tc.extra), hdr...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus != 200 {
				if msg := errorMessage(t, body); !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("error message = %q, want it to contain %q", msg, tc.wantMsg)
				}
				if !bytes.Contains(body, []byte(`"code":"`+tc.wantCode+`"`)) {
					t.Errorf("error body = %s, want code %q", body, tc.wantCode)
				}
				return
			}
			prov, route := served(resp)
			if prov != tc.wantProvider || route != tc.wantRoute {
				t.Errorf("served by %q with route %q, want %q with %q", prov, route, tc.wantProvider, tc.wantRoute)
			}
		})
	}
	// A refused provider is never called: only the fakes that served
	// received requests.
	for _, name := range []string{"jsononly", "pricey"} {
		if n := len(ups[name].Requests()); n != 0 {
			t.Errorf("%s received %d requests, want 0 (always refused)", name, n)
		}
	}
	if n := len(ups["llamahost"].Requests()); n != 1 {
		t.Errorf("llamahost received %d requests, want 1 (the lenient workload)", n)
	}
}

// TestRoutingStrategyWeighted sends 400 requests over a 3:1 weighted tier
// and checks each member's share.
func TestRoutingStrategyWeighted(t *testing.T) {
	a := newUpstream(t, fakeupstream.Options{})
	b := newUpstream(t, fakeupstream.Options{})
	g := startRoutingGateway(t, fmt.Sprintf(`
providers:
  - {name: a, type: openai-compatible, base_url: %s/v1}
  - {name: b, type: openai-compatible, base_url: %s/v1}
models:
  - name: gpt-4o
    routes:
      - strategy: weighted
        members: [{provider: a, weight: 3}, {provider: b, weight: 1}]
`+keysYAML+ledgerNone, a.URL, b.URL), nil)

	const n = 400
	counts := map[string]int{}
	c := fastClient()
	body := chatJSON("gpt-4o", "")
	for range n {
		status, h, err := fastPost(c, g.URL, keyAll, body)
		if err != nil || status != 200 {
			t.Fatalf("request = %d, %v; want 200", status, err)
		}
		counts[h.Get("X-Multipolar-Provider")]++
	}
	// Binomial(400, 0.75): mean 300, sd 8.7; ±40 is 4.6 sd.
	if counts["a"] < 260 || counts["a"] > 340 || counts["a"]+counts["b"] != n {
		t.Errorf("served counts = %v, want a within 300±40 and a+b = %d", counts, n)
	}
	if got := len(a.Requests()) + len(b.Requests()); got != n {
		t.Errorf("upstreams received %d requests, want %d (no failover)", got, n)
	}
}

// TestRoutingStrategyLeast checks least-busy and least-latency
// deterministically: a member with an attempt in flight, or with a slow
// first byte on record, goes last.
func TestRoutingStrategyLeast(t *testing.T) {
	t.Run("least-busy", func(t *testing.T) {
		a := newUpstream(t, fakeupstream.Options{})
		a.Enqueue(fakeupstream.Behavior{Hang: true})
		b := newUpstream(t, fakeupstream.Options{})
		g := startRoutingGateway(t, fmt.Sprintf(`
providers:
  - {name: a, type: openai-compatible, base_url: %s/v1}
  - {name: b, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [{strategy: least-busy, members: [{provider: a}, {provider: b}]}]}
`+keysYAML+ledgerNone, a.URL, b.URL), nil)

		// Idle members keep their listed order.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(chatJSON("gpt-4o", "")))
			req.Header.Set("Authorization", "Bearer "+keyAll)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		eventually(t, "a holds one attempt in flight", func() bool { return len(a.Requests()) == 1 })
		resp, body := g.chat(t, keyAll, chatJSON("gpt-4o", ""))
		if prov, route := served(resp); prov != "b" || route != "b=candidate;a=candidate;b=served" {
			t.Errorf("with a busy: served by %q with route %q, want b with %q; body %s", prov, route, "b=candidate;a=candidate;b=served", body)
		}
		cancel()
		<-done
		eventually(t, "a's attempt ends", func() bool { return len(a.Ended()) == 1 })
		resp, _ = g.chat(t, keyAll, chatJSON("gpt-4o", ""))
		if prov, route := served(resp); prov != "a" || route != "a=candidate;b=candidate;a=served" {
			t.Errorf("both idle: served by %q with route %q, want a first", prov, route)
		}
	})
	t.Run("least-latency", func(t *testing.T) {
		a := newUpstream(t, fakeupstream.Options{})
		a.Enqueue(fakeupstream.Behavior{Delay: 150 * time.Millisecond})
		b := newUpstream(t, fakeupstream.Options{})
		g := startRoutingGateway(t, fmt.Sprintf(`
providers:
  - {name: a, type: openai-compatible, base_url: %s/v1}
  - {name: b, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [{strategy: least-latency, members: [{provider: a}, {provider: b}]}]}
`+keysYAML+ledgerNone, a.URL, b.URL), nil)

		// Unmeasured members come first, in listed order: a (slow), then b
		// (fast); from then on b leads.
		for i, want := range []string{"a", "b", "b", "b"} {
			resp, body := g.chat(t, keyAll, chatJSON("gpt-4o", ""))
			if prov, _ := served(resp); resp.StatusCode != 200 || prov != want {
				t.Errorf("request %d: served by %q (%d), want %q; body %s", i+1, prov, resp.StatusCode, want, body)
			}
		}
	})
}

// TestRoutingExplain checks POST /admin/route/explain: the ordered
// candidates and every refusal with its reason, no upstream called, and
// the admin token required.
func TestRoutingExplain(t *testing.T) {
	us := newUpstream(t, fakeupstream.Options{})
	eu := newUpstream(t, fakeupstream.Options{})
	clk := newTestClock(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	g := startRoutingGateway(t, fmt.Sprintf(`
providers:
  - {name: us, type: openai-compatible, base_url: %s/v1, region: us-east-1}
  - {name: eu, type: openai-compatible, base_url: %s/v1, region: eu-west-1}
models:
  - {name: gpt-4o, routes: [eu, us]}
agreements:
  - {name: us-deal, type: first_refusal, holder: us, scope: {models: ["gpt-*"]}}
  - {name: old-deal, type: first_refusal, holder: eu, scope: {models: ["gpt-*"]}, until: 2020-12-31}
policies:
  - {workload: eu, regions: [eu-west-1]}
`+keysYAML+ledgerNone, us.URL, eu.URL), clk)

	type cand struct {
		Provider     string `json:"provider"`
		Model        string `json:"model"`
		Strategy     string `json:"strategy"`
		FirstRefusal string `json:"first_refusal"`
		Tier         int    `json:"tier"`
	}
	type refusal struct {
		Provider  string `json:"provider"`
		Model     string `json:"model"`
		Reason    string `json:"reason"`
		Agreement string `json:"agreement"`
		Tier      int    `json:"tier"`
	}
	tests := []struct {
		name           string
		workload       string
		wantCandidates []cand
		wantRefusals   []refusal
		wantTexts      []string // substrings of each refusal's text
		wantHeader     string
	}{
		{name: "no workload", wantCandidates: []cand{
			{Provider: "us", Model: "gpt-4o", Strategy: "first_refusal", FirstRefusal: "us-deal", Tier: 2},
			{Provider: "eu", Model: "gpt-4o", Strategy: "ordered", Tier: 1},
		}, wantRefusals: []refusal{
			{Provider: "eu", Reason: "outside_window", Agreement: "old-deal"},
		}, wantTexts: []string{"2021-01-01T00:00:00Z"},
			wantHeader: "us=candidate(first_refusal:us-deal);eu=candidate"},
		{name: "eu workload", workload: "eu", wantCandidates: []cand{
			{Provider: "eu", Model: "gpt-4o", Strategy: "ordered", Tier: 1},
		}, wantRefusals: []refusal{
			{Provider: "us", Model: "gpt-4o", Reason: "region_not_allowed", Agreement: "us-deal", Tier: 2},
			{Provider: "eu", Reason: "outside_window", Agreement: "old-deal"},
		}, wantTexts: []string{`region "us-east-1"`, "2021-01-01T00:00:00Z"},
			wantHeader: "us=refused:region_not_allowed(first_refusal:us-deal);eu=candidate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, g.URL+"/admin/route/explain", bytes.NewReader(chatJSON("gpt-4o", "")))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+adminToken)
			if tc.workload != "" {
				req.Header.Set("X-Multipolar-Workload", tc.workload)
			}
			resp, body := doRequest(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("explain = %d %s, want 200", resp.StatusCode, body)
			}
			var x struct {
				Workload   string `json:"workload"`
				Candidates []cand `json:"candidates"`
				Refusals   []struct {
					refusal
					Text string `json:"text"`
				} `json:"refusals"`
				Header string `json:"header"`
			}
			if err := json.Unmarshal(body, &x); err != nil {
				t.Fatalf("explain body %s: %v", body, err)
			}
			if diff := cmp.Diff(tc.wantCandidates, x.Candidates); diff != "" {
				t.Errorf("candidates (-want +got):\n%s", diff)
			}
			var got []refusal
			for i, r := range x.Refusals {
				got = append(got, r.refusal)
				if i < len(tc.wantTexts) && !strings.Contains(r.Text, tc.wantTexts[i]) {
					t.Errorf("refusals[%d].text = %q, want it to contain %q", i, r.Text, tc.wantTexts[i])
				}
			}
			if diff := cmp.Diff(tc.wantRefusals, got); diff != "" {
				t.Errorf("refusals (-want +got):\n%s", diff)
			}
			if x.Header != tc.wantHeader || x.Workload != tc.workload {
				t.Errorf("header, workload = %q, %q; want %q, %q", x.Header, x.Workload, tc.wantHeader, tc.workload)
			}
		})
	}
	t.Run("no token", func(t *testing.T) {
		resp, body := g.do(t, http.MethodPost, "/admin/route/explain", "", chatJSON("gpt-4o", ""))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("explain without token = %d %s, want 401", resp.StatusCode, body)
		}
		resp, body = g.do(t, http.MethodPost, "/admin/route/explain", keyAll, chatJSON("gpt-4o", ""))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("explain with a client key = %d %s, want 401", resp.StatusCode, body)
		}
	})
	if n := len(us.Requests()) + len(eu.Requests()); n != 0 {
		t.Errorf("upstreams received %d requests, want 0: explain calls no upstream", n)
	}
	// Explain does not count first-refusal decisions.
	if v, _ := metricValue(g.scrape(t), "multipolar_first_refusal_offers_total", map[string]string{"agreement": "us-deal"}); v != 0 {
		t.Errorf("multipolar_first_refusal_offers_total{us-deal} = %v after explain only, want 0", v)
	}
}

// fastClient is an HTTP client for load loops, with enough idle
// connections for the workers.
func fastClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
}

// fastPost sends a chat request without spec validation and returns the
// status and headers, the body drained.
func fastPost(c *http.Client, base, key string, body []byte) (int, http.Header, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header, err
}
