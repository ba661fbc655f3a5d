package server_test

// End-to-end first-right-of-refusal: the holder is offered every request
// in scope first whatever the route's order, under load, for models added
// later, within its provisioned capacity, and only inside its window.

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/server"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

// refusalAgreement is the agreement: azure-east holds the first
// right of refusal on gpt-* and o* until the end of 2030. %s is spliced
// into the agreement (from:, say).
const refusalAgreement = `
agreements:
  - name: azure-primary
    type: first_refusal
    holder: azure-east
    scope: {models: ["gpt-*", "o*"]}
    until: 2030-12-31%s
`

// refusalClock is an instant inside the agreement's window.
var refusalClock = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	// holderFirst is the first entry of the route header when the holder
	// is offered the call.
	holderFirst = "azure-east=candidate(first_refusal:azure-primary)"
	// routeOrder is the route header's start when the agreement is not in
	// force: the route's own order, holder last.
	routeOrder = "coreweave=candidate;azure-east=candidate;"
)

// refusalGateway serves coreweave and azure-east, with gpt-4o routed
// [coreweave, azure-east] (the holder last) and the agreement. provider
// is extra YAML for azure-east's entry; agreement extra YAML for the
// agreement's.
func refusalGateway(t *testing.T, cw, az *upstream, provider, agreement string, clk *testClock) *gateway {
	t.Helper()
	return startRoutingGateway(t, fmt.Sprintf(`
providers:
  - {name: coreweave, type: openai-compatible, base_url: %s/v1}
  - {name: azure-east, type: openai-compatible, base_url: %s/v1%s}
models:
  - {name: gpt-4o, routes: [coreweave, azure-east]}
`+refusalAgreement+keysYAML+ledgerNone, cw.URL, az.URL, provider, agreement), clk)
}

// metricSum adds up every sample of name whose labels include labels.
func metricSum(text, name string, labels map[string]string) float64 {
	var total float64
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := metricValue(line, name, labels); ok {
			total += v
		}
	}
	return total
}

// firstRefusalRequests is the size of the load run. Under the race
// detector every request costs several times more; see
// e2e_routing_race_test.go.
func firstRefusalRequests() int {
	if raceEnabled || testing.Short() {
		return 2000
	}
	return 10000
}

// TestRoutingFirstRefusalLoad sends many concurrent requests for a model
// whose route lists the holder last, while the holder answers 30% of them
// 429 (Retry-After: 0, so no cool-down hides it): every request is offered
// to the holder first, all are served, and the counters add up.
func TestRoutingFirstRefusalLoad(t *testing.T) {
	n := firstRefusalRequests()
	cw := newUpstream(t, fakeupstream.Options{})
	az := newUpstream(t, fakeupstream.Options{})
	rng := rand.New(rand.NewPCG(2030, 12))
	script := make([]fakeupstream.Behavior, n)
	want429 := 0
	for i := range script {
		if rng.Float64() < 0.3 {
			script[i] = fakeupstream.Behavior{Status: http.StatusTooManyRequests, RetryAfter: "0"}
			want429++
		}
	}
	az.Enqueue(script...)
	g := refusalGateway(t, cw, az, "", "", newTestClock(refusalClock))

	const workers = 16
	var (
		next, ok, notFirst, failed atomic.Int64
		mu                         sync.Mutex
		samples                    []string // a few bad responses, for the message
		wg                         sync.WaitGroup
	)
	c := fastClient()
	body := chatJSON("gpt-4o", "")
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				status, h, err := fastPost(c, g.URL, keyAll, body)
				route := h.Get("X-Multipolar-Route")
				first, _, _ := strings.Cut(route, ";")
				if first != holderFirst {
					notFirst.Add(1)
				}
				if err == nil && status == http.StatusOK {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				mu.Lock()
				if len(samples) < 5 {
					samples = append(samples, fmt.Sprintf("%d %v %q", status, err, route))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	rate := float64(ok.Load()) / float64(n)
	t.Logf("%d requests in %v with %d workers: %d served (%.2f%%), holder answered %d with 429",
		n, elapsed.Round(time.Millisecond), workers, ok.Load(), 100*rate, want429)
	if rate < 0.999 {
		t.Errorf("success rate = %.4f (%d of %d), want ≥ 0.999; samples %q", rate, ok.Load(), n, samples)
	}
	if notFirst.Load() != 0 {
		t.Errorf("%d responses did not name the holder first in x-multipolar-route, want 0", notFirst.Load())
	}
	if got := len(az.Requests()); got != n {
		t.Errorf("holder received %d requests, want %d (one offer per request)", got, n)
	}
	if got := len(cw.Requests()); got != want429 {
		t.Errorf("coreweave received %d requests, want %d (the holder's 429s)", got, want429)
	}

	text := g.scrape(t)
	ag := map[string]string{"agreement": "azure-primary"}
	offers, _ := metricValue(text, "multipolar_first_refusal_offers_total", ag)
	refusals := metricSum(text, "multipolar_first_refusal_refusals_total", ag)
	t.Logf("offers %v + decision refusals %v = %v", offers, refusals, offers+refusals)
	if offers+refusals != float64(n) {
		t.Errorf("multipolar_first_refusal_offers_total + _refusals_total = %v + %v, want %d", offers, refusals, n)
	}
	calls, _ := metricValue(text, "multipolar_first_refusal_call_refusals_total", map[string]string{"agreement": "azure-primary", "reason": "rate_limited"})
	t.Logf("call refusals (rate_limited) %v, holder 429s %d", calls, want429)
	if calls != float64(want429) {
		t.Errorf("multipolar_first_refusal_call_refusals_total{reason=rate_limited} = %v, want %d (the holder's 429s)", calls, want429)
	}
}

// TestRoutingFirstRefusalNewModel adds gpt-new, routed only to coreweave,
// by a reload: the agreement's glob covers it, so it is offered to the
// holder first when the holder serves gpt-*, and recorded as not_served
// when it does not.
func TestRoutingFirstRefusalNewModel(t *testing.T) {
	tests := []struct {
		name         string
		serves       string
		wantProvider string
		wantRoute    string
		wantHolder   int // requests azure-east received for gpt-new
		wantReason   string
	}{
		{name: "holder serves gpt-*", serves: `, serves: ["gpt-*"]`, wantProvider: "azure-east",
			wantRoute: holderFirst + ";coreweave=candidate;azure-east=served", wantHolder: 1},
		{name: "holder serves nothing more", wantProvider: "coreweave",
			wantRoute:  "azure-east=refused:not_served(first_refusal:azure-primary);coreweave=candidate;coreweave=served",
			wantReason: "not_served"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cw := newUpstream(t, fakeupstream.Options{})
			az := newUpstream(t, fakeupstream.Options{})
			cfg := func(models string) string {
				return fmt.Sprintf(`
providers:
  - {name: coreweave, type: openai-compatible, base_url: %s/v1}
  - {name: azure-east, type: openai-compatible, base_url: %s/v1%s}
models:
  - {name: gpt-4o, routes: [coreweave, azure-east]}
%s`+fmt.Sprintf(refusalAgreement, "")+keysYAML+ledgerNone, cw.URL, az.URL, tc.serves, models)
			}
			clk := newTestClock(refusalClock)
			g := serveGateway(t, server.Options{
				Config: parseConfig(t, cfg("")),
				Load: func() (*config.Config, error) {
					return parseConfig(t, cfg("  - {name: gpt-new, routes: [coreweave]}")), nil
				},
				Now: clk.Now,
			})
			if resp, body := g.chat(t, keyAll, chatJSON("gpt-new", "")); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("gpt-new before the reload = %d %s, want 404", resp.StatusCode, body)
			}
			if resp, body := g.do(t, http.MethodPost, "/admin/reload", adminToken, nil); resp.StatusCode != 200 {
				t.Fatalf("POST /admin/reload = %d %s, want 200", resp.StatusCode, body)
			}
			resp, body := g.chat(t, keyAll, chatJSON("gpt-new", ""))
			prov, route := served(resp)
			if resp.StatusCode != 200 || prov != tc.wantProvider || route != tc.wantRoute {
				t.Errorf("gpt-new = %d %q %q, want 200 %q %q; body %s", resp.StatusCode, prov, route, tc.wantProvider, tc.wantRoute, body)
			}
			reqs := az.Requests()
			if len(reqs) != tc.wantHolder {
				t.Errorf("holder received %d requests, want %d", len(reqs), tc.wantHolder)
			}
			for _, r := range reqs {
				if !strings.Contains(string(r.Body), `"model":"gpt-new"`) {
					t.Errorf("holder request body = %s, want model gpt-new", r.Body)
				}
			}
			text := g.scrape(t)
			ag := map[string]string{"agreement": "azure-primary"}
			offers, _ := metricValue(text, "multipolar_first_refusal_offers_total", ag)
			refusals := metricSum(text, "multipolar_first_refusal_refusals_total", ag)
			if offers+refusals != 1 {
				t.Errorf("offers + refusals = %v + %v, want 1 decision", offers, refusals)
			}
			if tc.wantReason != "" {
				if v, _ := metricValue(text, "multipolar_first_refusal_refusals_total", map[string]string{"agreement": "azure-primary", "reason": tc.wantReason}); v != 1 {
					t.Errorf("multipolar_first_refusal_refusals_total{reason=%s} = %v, want 1", tc.wantReason, v)
				}
			}
		})
	}
}

// TestRoutingFirstRefusalCapacity gives the holder 3 requests per minute
// of provisioned capacity on routing's clock: requests 1-3 go to it, 4-5
// spill to the next tier, and a minute later it serves again.
func TestRoutingFirstRefusalCapacity(t *testing.T) {
	cw := newUpstream(t, fakeupstream.Options{})
	az := newUpstream(t, fakeupstream.Options{})
	clk := newTestClock(refusalClock)
	g := refusalGateway(t, cw, az, ", capacity: {rpm: 3}", "", clk)

	const spill = "azure-east=refused:capacity_exhausted(first_refusal:azure-primary);coreweave=candidate;coreweave=served"
	steps := []struct {
		advance      time.Duration
		wantProvider string
		wantRoute    string
	}{
		{0, "azure-east", holderFirst + ";coreweave=candidate;azure-east=served"},
		{time.Second, "azure-east", holderFirst + ";coreweave=candidate;azure-east=served"},
		{time.Second, "azure-east", holderFirst + ";coreweave=candidate;azure-east=served"},
		{time.Second, "coreweave", spill},
		{time.Second, "coreweave", spill},
		{61 * time.Second, "azure-east", holderFirst + ";coreweave=candidate;azure-east=served"},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		resp, body := g.chat(t, keyAll, chatJSON("gpt-4o", ""))
		prov, route := served(resp)
		if resp.StatusCode != 200 || prov != st.wantProvider || route != st.wantRoute {
			t.Errorf("request %d = %d %q %q, want 200 %q %q; body %s", i+1, resp.StatusCode, prov, route, st.wantProvider, st.wantRoute, body)
		}
	}
	if got := len(az.Requests()); got != 4 {
		t.Errorf("holder received %d requests, want 4", got)
	}
	text := g.scrape(t)
	if v, _ := metricValue(text, "multipolar_first_refusal_refusals_total", map[string]string{"agreement": "azure-primary", "reason": "capacity_exhausted"}); v != 2 {
		t.Errorf("multipolar_first_refusal_refusals_total{reason=capacity_exhausted} = %v, want 2", v)
	}
	if v, _ := metricValue(text, "multipolar_first_refusal_offers_total", map[string]string{"agreement": "azure-primary"}); v != 4 {
		t.Errorf("multipolar_first_refusal_offers_total = %v, want 4", v)
	}
}

// TestRoutingFirstRefusalWindow checks the agreement's [from, until)
// window on routing's clock: outside it the route's own order wins.
func TestRoutingFirstRefusalWindow(t *testing.T) {
	cw := newUpstream(t, fakeupstream.Options{})
	az := newUpstream(t, fakeupstream.Options{})
	clk := newTestClock(refusalClock)
	g := refusalGateway(t, cw, az, "", "\n    from: 2025-01-01", clk)

	tests := []struct {
		at           string
		wantProvider string
		wantRoute    string
	}{
		{"2024-12-31T23:59:59Z", "coreweave", routeOrder + "coreweave=served"},
		{"2025-01-01T00:00:00Z", "azure-east", holderFirst + ";coreweave=candidate;azure-east=served"},
		{"2030-12-31T23:59:59Z", "azure-east", holderFirst + ";coreweave=candidate;azure-east=served"},
		{"2031-01-01T00:00:00Z", "coreweave", routeOrder + "coreweave=served"},
		{"2031-01-01T00:00:01Z", "coreweave", routeOrder + "coreweave=served"},
	}
	for _, tc := range tests {
		t.Run(tc.at, func(t *testing.T) {
			at, err := time.Parse(time.RFC3339, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			clk.Set(at)
			resp, body := g.chat(t, keyAll, chatJSON("gpt-4o", ""))
			prov, route := served(resp)
			if resp.StatusCode != 200 || prov != tc.wantProvider || route != tc.wantRoute {
				t.Errorf("at %s = %d %q %q, want 200 %q %q; body %s", tc.at, resp.StatusCode, prov, route, tc.wantProvider, tc.wantRoute, body)
			}
		})
	}
	if v, _ := metricValue(g.scrape(t), "multipolar_first_refusal_offers_total", map[string]string{"agreement": "azure-primary"}); v != 2 {
		t.Errorf("multipolar_first_refusal_offers_total = %v, want 2 (the requests inside the window)", v)
	}
}
