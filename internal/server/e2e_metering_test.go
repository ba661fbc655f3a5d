package server_test

// End-to-end tests of metering: the usage ledger, prices, budgets, rate
// limits and key expiry, through a real gateway with an SQLite ledger in a
// temporary directory. Costs are recomputed here with math/big rationals
// from the fake's deterministic token counts, never with package pricing.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/server"
	"github.com/multipolar/multipolar/internal/store/sqlite"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

// More client keys for the metering configurations.
const (
	keyMeterA = "sk-virtual-meter-a"
	keyMeterB = "sk-virtual-meter-b"
	keyMeterC = "sk-virtual-meter-c"
)

func init() {
	testEnv["KEY_METER_A"] = keyMeterA
	testEnv["KEY_METER_B"] = keyMeterB
	testEnv["KEY_METER_C"] = keyMeterC
}

// The fake counts a one-message chat "Say hello" as 4+2 prompt tokens and
// answers Options.Chunks completion tokens (5 by default).
const (
	helloPrompt     = 6
	helloCompletion = 5
)

// gpt-4o-mini's price in the metering configurations, USD per 1M tokens.
const (
	miniInput  = "0.15"
	miniCached = "0.075"
	miniOutput = "0.60"
)

// meterConfig is a configuration with one openai-compatible provider p at
// base serving gpt-4o-mini (priced) and local (unpriced, unless prices
// says otherwise), the admin token, and the given extra YAML lines.
type meterConfig struct {
	base      string
	providers string // more entries of providers
	models    string // more entries of models
	prices    string // more entries of prices
	rest      string // keys, teams, ledger...
}

func (c meterConfig) yaml() string {
	return fmt.Sprintf(`
providers:
  - name: p
    type: openai-compatible
    base_url: %s/v1
    api_key: ${P1_KEY}
%smodels:
  - {name: gpt-4o-mini, routes: [p]}
  - {name: local, routes: [p]}
%sprices:
  - {provider: p, model: gpt-4o-mini, input: "%s", output: "%s", cached_input: "%s", from: 2026-01-01}
%sadmin:
  token: ${ADMIN_TOKEN}
`, c.base, c.providers, c.models, miniInput, miniOutput, miniCached, c.prices) + c.rest
}

// meterGateway is a gateway whose SQLite ledger the test can read.
type meterGateway struct {
	*gateway
	ledgerPath string
	store      *sqlite.Store // the same file, opened by the test
}

func startMeterGateway(t *testing.T, c meterConfig) *meterGateway {
	t.Helper()
	cfg := parseConfig(t, c.yaml())
	if cfg.Ledger.Driver != "sqlite" {
		t.Fatalf("ledger driver = %q, want sqlite", cfg.Ledger.Driver)
	}
	g := serveGateway(t, server.Options{Config: cfg})
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: cfg.Ledger.Path})
	if err != nil {
		t.Fatalf("open ledger %s: %v", cfg.Ledger.Path, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &meterGateway{gateway: g, ledgerPath: cfg.Ledger.Path, store: st}
}

// records waits until the ledger holds n records of requestID and returns
// them ordered by attempt; more than n fails the test.
func (m *meterGateway) records(t *testing.T, requestID string, n int) []ledger.Record {
	t.Helper()
	recs := m.recordsAtLeast(t, requestID, n)
	if len(recs) != n {
		t.Fatalf("Records(%q) = %d records, want %d: %+v", requestID, len(recs), n, recs)
	}
	return recs
}

// recordsAtLeast waits until the ledger holds at least n records of
// requestID and returns them ordered by attempt.
func (m *meterGateway) recordsAtLeast(t *testing.T, requestID string, n int) []ledger.Record {
	t.Helper()
	if requestID == "" {
		t.Fatal("records: empty request id")
	}
	var recs []ledger.Record
	eventually(t, fmt.Sprintf("the ledger holds %d record(s) of %s", n, requestID), func() bool {
		var err error
		recs, err = m.store.Records(context.Background(), requestID)
		if err != nil {
			t.Fatalf("Records(%q): %v", requestID, err)
		}
		return len(recs) >= n
	})
	return recs
}

// usageRow is one row (or the total) of GET /admin/usage.
type usageRow struct {
	Provider     *string `json:"provider,omitempty"`
	Model        *string `json:"model,omitempty"`
	Key          *string `json:"key,omitempty"`
	Team         *string `json:"team,omitempty"`
	Workload     *string `json:"workload,omitempty"`
	Requests     int64   `json:"requests"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	CachedTokens int64   `json:"cached_tokens"`
	Cost         string  `json:"cost"`
}

type usageReport struct {
	Rows  []usageRow `json:"rows"`
	Total usageRow   `json:"total"`
	raw   []byte
}

// usage answers GET /admin/usage?group_by=groupBy, decoded strictly.
func (m *meterGateway) usage(t *testing.T, groupBy string) usageReport {
	t.Helper()
	resp, body := m.do(t, http.MethodGet, "/admin/usage?group_by="+url.QueryEscape(groupBy), adminToken, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/usage?group_by=%s = %d, want 200: %s", groupBy, resp.StatusCode, body)
	}
	var r usageReport
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("GET /admin/usage?group_by=%s: %v\n%s", groupBy, err, body)
	}
	r.raw = body
	return r
}

// waitRequests polls the usage report until its total counts n served
// requests and records in all, then returns it.
func (m *meterGateway) waitRequests(t *testing.T, groupBy string, n int64) usageReport {
	t.Helper()
	var r usageReport
	eventually(t, fmt.Sprintf("the usage report counts %d requests", n), func() bool {
		r = m.usage(t, groupBy)
		return r.Total.Requests >= n
	})
	if r.Total.Requests != n {
		t.Fatalf("usage total requests = %d, want %d\n%s", r.Total.Requests, n, r.raw)
	}
	return r
}

// rat parses a decimal string exactly.
func rat(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("cannot parse %q as a decimal", s)
	}
	return r
}

// cost is the exact USD cost of input (of which cached) and output tokens
// at per-million prices given as decimal strings.
func cost(t *testing.T, input, cached, output int64, pIn, pCached, pOut string) *big.Rat {
	t.Helper()
	sum := new(big.Rat)
	for _, term := range []struct {
		n int64
		p string
	}{{input - cached, pIn}, {cached, pCached}, {output, pOut}} {
		sum.Add(sum, new(big.Rat).Mul(big.NewRat(term.n, 1), rat(t, term.p)))
	}
	return sum.Quo(sum, big.NewRat(1_000_000, 1))
}

// miniCost is the cost of a gpt-4o-mini request at the configured price.
func miniCost(t *testing.T, input, cached, output int64) *big.Rat {
	return cost(t, input, cached, output, miniInput, miniCached, miniOutput)
}

// equalMoney reports whether the decimal string got is exactly want.
func equalMoney(t *testing.T, got string, want *big.Rat) bool {
	t.Helper()
	return rat(t, got).Cmp(want) == 0
}

// mul returns n*r.
func mul(n int64, r *big.Rat) *big.Rat { return new(big.Rat).Mul(big.NewRat(n, 1), r) }

// rawChat posts a chat request and returns its status, headers and body. It
// calls no testing function, so goroutines may use it.
func rawChat(base, key, body string, header map[string]string) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// helloBody is the raw body of a one-message chat "Say hello".
func helloBody(model string, maxTokens int) string {
	mt := ""
	if maxTokens > 0 {
		mt = fmt.Sprintf(`,"max_tokens":%d`, maxTokens)
	}
	return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Say hello"}]%s}`, model, mt)
}

// chatID sends a non-streamed chat through the SDK and returns the request
// id, failing the test on an error.
func chatID(t *testing.T, c openai.Client, params openai.ChatCompletionNewParams, opts ...option.RequestOption) string {
	t.Helper()
	var resp *http.Response
	if _, err := c.Chat.Completions.New(context.Background(), params, append(opts, option.WithResponseInto(&resp))...); err != nil {
		t.Fatalf("Chat.Completions.New: %v", err)
	}
	return resp.Header.Get("X-Request-Id")
}

// billable returns the billable records among recs.
func billable(recs []ledger.Record) []ledger.Record {
	var out []ledger.Record
	for _, r := range recs {
		if r.Billable {
			out = append(out, r)
		}
	}
	return out
}

// TestMeteringUsageReport checks the usage report's shape and figures, per
// key, provider and model, team and workload; refused requests and failed
// attempts are recorded but not counted as requests.
func TestMeteringUsageReport(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	down := newUpstream(t, fakeupstream.Options{APIKey: p2Key})
	down.SetDefault(fakeupstream.Behavior{Status: http.StatusInternalServerError})
	g := startMeterGateway(t, meterConfig{base: u.URL, providers: fmt.Sprintf(`  - name: down
    type: openai-compatible
    base_url: %s/v1
    api_key: ${P2_KEY}
`, down.URL), models: "  - {name: broken, routes: [down]}\n", rest: `
teams:
  - name: search
  - name: ads
keys:
  - {name: team-search, key: "${KEY_METER_A}", team: search, workload: indexing}
  - {name: other, key: "${KEY_METER_B}", team: ads, limits: {rpm: 1}}
  - name: broke
    key: ${KEY_METER_C}
    budgets: [{limit: "0.000001", period: total, mode: hard}]
`})
	search := g.client(t, keyMeterA)
	other := g.client(t, keyMeterB)
	params := userChat("gpt-4o-mini", "Say hello")

	const served = 5 // by team-search: 3 on its default workload, 2 on batch
	var ids []string
	for range 3 {
		ids = append(ids, chatID(t, search, params))
	}
	for range 2 {
		ids = append(ids, chatID(t, search, params, option.WithHeader("X-Multipolar-Workload", "batch")))
	}
	ids = append(ids, chatID(t, other, params))

	// Refused: a rate limit, a budget. Failed: the upstream answers 500.
	var refused []string
	for _, key := range []string{keyMeterB, keyMeterC} {
		status, h, body, err := rawChat(g.URL, key, helloBody("gpt-4o-mini", 0), nil)
		if err != nil || status != http.StatusTooManyRequests {
			t.Fatalf("refused request = %d, %v, want 429: %s", status, err, body)
		}
		refused = append(refused, h.Get("X-Request-Id"))
	}
	status, h, body, err := rawChat(g.URL, keyMeterA, helloBody("broken", 0), nil)
	if err != nil || status < 500 {
		t.Fatalf("request to a failing upstream = %d, %v, want 5xx: %s", status, err, body)
	}
	failed := h.Get("X-Request-Id")

	for _, id := range refused {
		recs := g.records(t, id, 1)
		if r := recs[0]; r.Billable || r.Outcome != "refused" || r.Status != http.StatusTooManyRequests || r.Usage.InputTokens+r.Usage.OutputTokens != 0 {
			t.Errorf("record of refused request %s = billable %t, outcome %q, status %d, usage %+v; want not billable, refused, 429, no usage",
				id, r.Billable, r.Outcome, r.Status, r.Usage)
		}
	}
	// Retries may add attempts; none of them is billable.
	for _, r := range g.recordsAtLeast(t, failed, 1) {
		if r.Billable || r.Status != http.StatusInternalServerError {
			t.Errorf("record of failed attempt %d = billable %t, status %d; want not billable, 500", r.Attempt, r.Billable, r.Status)
		}
	}
	for _, id := range ids {
		if b := billable(g.records(t, id, 1)); len(b) != 1 {
			t.Errorf("request %s has %d billable records, want 1", id, len(b))
		}
	}

	one := miniCost(t, helloPrompt, 0, helloCompletion)
	t.Run("by key", func(t *testing.T) {
		r := g.waitRequests(t, "key", served+1)
		// The exact shape: each row has the grouped field, then the measures.
		var shape struct {
			Rows  []map[string]json.RawMessage `json:"rows"`
			Total map[string]json.RawMessage   `json:"total"`
		}
		if err := json.Unmarshal(r.raw, &shape); err != nil {
			t.Fatal(err)
		}
		measures := []string{"cached_tokens", "cost", "input_tokens", "output_tokens", "requests"}
		for i, row := range append(shape.Rows, shape.Total) {
			want := measures
			if i < len(shape.Rows) {
				want = append([]string{"key"}, measures...)
			}
			got := make([]string, 0, len(row))
			for k := range row {
				got = append(got, k)
			}
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("fields of row %d (-want +got):\n%s", i, diff)
			}
			if c := row["cost"]; len(c) == 0 || c[0] != '"' {
				t.Errorf("row %d cost = %s, want a JSON string", i, c)
			}
		}

		want := []struct {
			key      string
			requests int64
			cost     *big.Rat
		}{
			{"broke", 0, new(big.Rat)},
			{"other", 1, one},
			{"team-search", served, mul(served, one)},
		}
		if len(r.Rows) != len(want) {
			t.Fatalf("usage by key has %d rows, want %d:\n%s", len(r.Rows), len(want), r.raw)
		}
		for i, w := range want {
			row := r.Rows[i]
			if row.Key == nil || *row.Key != w.key || row.Requests != w.requests ||
				row.InputTokens != w.requests*helloPrompt || row.OutputTokens != w.requests*helloCompletion || row.CachedTokens != 0 {
				t.Errorf("usage row %d = %s, want key %q with %d requests, %d input, %d output, 0 cached tokens",
					i, jsonOf(row), w.key, w.requests, w.requests*helloPrompt, w.requests*helloCompletion)
			}
			if !equalMoney(t, row.Cost, w.cost) {
				t.Errorf("usage row %q cost = %s, want %s", w.key, row.Cost, w.cost.FloatString(10))
			}
		}
		if tot := r.Total; tot.Requests != served+1 || tot.InputTokens != (served+1)*helloPrompt || !equalMoney(t, tot.Cost, mul(served+1, one)) {
			t.Errorf("usage total = %s, want %d requests, %d input tokens, cost %s", jsonOf(tot), served+1, (served+1)*helloPrompt, mul(served+1, one).FloatString(10))
		}
	})

	t.Run("by provider and model", func(t *testing.T) {
		r := g.waitRequests(t, "provider,model", served+1)
		var found bool
		for _, row := range r.Rows {
			if row.Provider == nil || row.Model == nil {
				t.Fatalf("row %s lacks provider or model", jsonOf(row))
			}
			if *row.Provider == "p" && *row.Model == "gpt-4o-mini" {
				found = true
				if row.Requests != served+1 || !equalMoney(t, row.Cost, mul(served+1, one)) {
					t.Errorf("row p/gpt-4o-mini = %s, want %d requests costing %s", jsonOf(row), served+1, mul(served+1, one).FloatString(10))
				}
			} else if row.Requests != 0 {
				t.Errorf("row %s counts requests, want only p/gpt-4o-mini to", jsonOf(row))
			}
		}
		if !found {
			t.Errorf("no p/gpt-4o-mini row:\n%s", r.raw)
		}
	})

	for _, tc := range []struct {
		groupBy string
		field   func(usageRow) *string
		want    map[string]int64 // group value -> requests
	}{
		{"team", func(r usageRow) *string { return r.Team }, map[string]int64{"": 0, "ads": 1, "search": served}},
		{"workload", func(r usageRow) *string { return r.Workload }, map[string]int64{"": 1, "batch": 2, "indexing": 3}},
	} {
		t.Run("by "+tc.groupBy, func(t *testing.T) {
			r := g.waitRequests(t, tc.groupBy, served+1)
			got := map[string]int64{}
			for _, row := range r.Rows {
				v := tc.field(row)
				if v == nil {
					t.Fatalf("row %s lacks %s", jsonOf(row), tc.groupBy)
				}
				got[*v] = row.Requests
				if !equalMoney(t, row.Cost, mul(row.Requests, one)) {
					t.Errorf("row %s cost = %s, want %s", *v, row.Cost, mul(row.Requests, one).FloatString(10))
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("requests by %s (-want +got):\n%s", tc.groupBy, diff)
			}
		})
	}

	t.Run("bad group", func(t *testing.T) {
		resp, body := g.do(t, http.MethodGet, "/admin/usage?group_by=colour", adminToken, nil)
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte(`colour`)) {
			t.Errorf("GET /admin/usage?group_by=colour = %d %s, want 400 naming the field", resp.StatusCode, body)
		}
	})
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestMeteringStreams checks what streams are billed: exact usage without
// include_usage, estimated usage for a cut stream, what was produced for a
// stream the client cancels, and cached tokens at the cached price.
func TestMeteringStreams(t *testing.T) {
	const chunks = 8
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key, Chunks: chunks})
	g := startMeterGateway(t, meterConfig{base: u.URL, rest: "keys:\n  - {name: streamer, key: \"${KEY_METER_A}\"}\n"})
	c := g.client(t, keyMeterA)

	t.Run("without include_usage", func(t *testing.T) {
		var resp *http.Response
		s := c.Chat.Completions.NewStreaming(context.Background(), userChat("gpt-4o-mini", "Say hello"), option.WithResponseInto(&resp))
		n := 0
		for s.Next() {
			n++
			if ch := s.Current(); ch.JSON.Usage.Valid() || ch.Usage.TotalTokens != 0 {
				t.Errorf("chunk %d carries usage %s; the client did not ask for it", n, ch.Usage.RawJSON())
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		s.Close()
		recs := g.records(t, resp.Header.Get("X-Request-Id"), 1)
		r := recs[0]
		if !r.Billable || r.Estimated || r.Usage.InputTokens != helloPrompt || r.Usage.OutputTokens != chunks || !r.Stream {
			t.Errorf("record = billable %t, estimated %t, usage %+v, stream %t; want billable, exact %d/%d, stream",
				r.Billable, r.Estimated, r.Usage, r.Stream, helloPrompt, chunks)
		}
		if want := miniCost(t, helloPrompt, 0, chunks); !equalMoney(t, r.Cost.String(), want) {
			t.Errorf("record cost = %s, want %s", r.Cost, want.FloatString(10))
		}
	})

	t.Run("cut halfway", func(t *testing.T) {
		u.Enqueue(fakeupstream.Behavior{CutAfter: 2})
		var resp *http.Response
		s := c.Chat.Completions.NewStreaming(context.Background(), userChat("gpt-4o-mini", "Say hello"), option.WithResponseInto(&resp))
		for s.Next() {
		}
		if s.Err() == nil {
			t.Error("a cut stream ended without an error")
		}
		s.Close()
		r := g.records(t, resp.Header.Get("X-Request-Id"), 1)[0]
		if !r.Billable || !r.Estimated || r.Usage.OutputTokens <= 0 {
			t.Errorf("record of a cut stream = billable %t, estimated %t, usage %+v; want billable, estimated, output > 0", r.Billable, r.Estimated, r.Usage)
		}
		if want := miniCost(t, r.Usage.InputTokens, r.Usage.CachedTokens, r.Usage.OutputTokens); !equalMoney(t, r.Cost.String(), want) {
			t.Errorf("record cost = %s, want %s for %+v", r.Cost, want.FloatString(10), r.Usage)
		}
	})

	t.Run("client cancels", func(t *testing.T) {
		u.Enqueue(fakeupstream.Behavior{ChunkDelay: 30 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var resp *http.Response
		s := c.Chat.Completions.NewStreaming(ctx, userChat("gpt-4o-mini", "Say hello"), option.WithResponseInto(&resp))
		for s.Next() {
			if ch := s.Current(); len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
				cancel()
			}
		}
		s.Close()
		r := g.records(t, resp.Header.Get("X-Request-Id"), 1)[0]
		if !r.Billable || r.Usage.OutputTokens <= 0 || r.Usage.OutputTokens >= chunks {
			t.Errorf("record of a canceled stream = billable %t, outcome %q, usage %+v; want billable with 0 < output < %d",
				r.Billable, r.Outcome, r.Usage, chunks)
		}
		t.Run("outcome", func(t *testing.T) {
			if r.Outcome != "client_canceled" {
				t.Errorf("record outcome = %q, want client_canceled", r.Outcome)
			}
		})
		if want := miniCost(t, r.Usage.InputTokens, r.Usage.CachedTokens, r.Usage.OutputTokens); !equalMoney(t, r.Cost.String(), want) {
			t.Errorf("record cost = %s, want %s for %+v", r.Cost, want.FloatString(10), r.Usage)
		}
	})
}

// TestMeteringCachedTokens checks that cached input tokens are priced at
// the cached rate, streamed or not.
func TestMeteringCachedTokens(t *testing.T) {
	const cached = 2
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key, CachedTokens: cached})
	g := startMeterGateway(t, meterConfig{base: u.URL, rest: "keys:\n  - {name: cache, key: \"${KEY_METER_A}\"}\n"})
	c := g.client(t, keyMeterA)
	want := miniCost(t, helloPrompt, cached, helloCompletion)
	if want.Cmp(miniCost(t, helloPrompt, 0, helloCompletion)) >= 0 {
		t.Fatal("the cached price is not cheaper: the test proves nothing")
	}
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			var id string
			if stream {
				var resp *http.Response
				s := c.Chat.Completions.NewStreaming(context.Background(), userChat("gpt-4o-mini", "Say hello"), option.WithResponseInto(&resp))
				for s.Next() {
				}
				if err := s.Err(); err != nil {
					t.Fatalf("stream: %v", err)
				}
				s.Close()
				id = resp.Header.Get("X-Request-Id")
			} else {
				id = chatID(t, c, userChat("gpt-4o-mini", "Say hello"))
			}
			r := g.records(t, id, 1)[0]
			if r.Usage.CachedTokens != cached || r.Usage.InputTokens != helloPrompt || r.Estimated {
				t.Errorf("record usage = %+v, estimated %t; want %d input of which %d cached, exact", r.Usage, r.Estimated, helloPrompt, cached)
			}
			if !equalMoney(t, r.Cost.String(), want) {
				t.Errorf("record cost = %s, want %s", r.Cost, want.FloatString(10))
			}
			if !equalMoney(t, r.UnitPrices.CachedInput.String(), rat(t, miniCached)) {
				t.Errorf("record cached price = %s, want %s", r.UnitPrices.CachedInput, miniCached)
			}
		})
	}
}

// TestMeteringPrices checks that the price in force now is used among
// dated prices, and that an unpriced model costs 0 and is counted.
func TestMeteringPrices(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	g := startMeterGateway(t, meterConfig{
		base:   u.URL,
		models: "  - {name: dated, routes: [p]}\n",
		prices: `  - {provider: p, model: dated, input: "1.00", output: "2.00", from: 2020-01-01}
  - {provider: p, model: dated, input: "100.00", output: "200.00", from: 2999-01-01}
`,
		rest: "keys:\n  - {name: pricer, key: \"${KEY_METER_A}\"}\n",
	})
	c := g.client(t, keyMeterA)

	r := g.records(t, chatID(t, c, userChat("dated", "Say hello")), 1)[0]
	if from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC); !r.UnitPrices.From.Equal(from) {
		t.Errorf("record priced from %s, want %s", r.UnitPrices.From, from)
	}
	if want := cost(t, helloPrompt, 0, helloCompletion, "1.00", "1.00", "2.00"); !equalMoney(t, r.Cost.String(), want) {
		t.Errorf("dated cost = %s, want %s", r.Cost, want.FloatString(10))
	}

	r = g.records(t, chatID(t, c, userChat("local", "Say hello")), 1)[0]
	if r.Cost.String() != "0" || !r.Billable || r.Usage.OutputTokens != helloCompletion {
		t.Errorf("unpriced record = cost %q, billable %t, usage %+v; want cost \"0\", billable, its usage", r.Cost, r.Billable, r.Usage)
	}
	if v, ok := metricValue(g.scrape(t), "multipolar_unpriced_requests_total", map[string]string{"provider": "p", "model": "local"}); !ok || v != 1 {
		t.Errorf("multipolar_unpriced_requests_total{provider=p,model=local} = %v (found %t), want 1", v, ok)
	}
}

// TestMeteringLedgerBatching checks that ledger.flush_interval and
// ledger.batch_size reach the writer: with a minute's interval, records wait
// until batch_size of them are queued, then are committed together.
func TestMeteringLedgerBatching(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	g := startMeterGateway(t, meterConfig{
		base: u.URL,
		rest: "keys:\n  - {name: batcher, key: \"${KEY_METER_A}\"}\nledger: {flush_interval: 1m, batch_size: 3}\n",
	})
	c := g.client(t, keyMeterA)
	ids := []string{chatID(t, c, userChat("gpt-4o-mini", "Say hello")), chatID(t, c, userChat("gpt-4o-mini", "Say hello"))}
	time.Sleep(300 * time.Millisecond) // time for a commit that must not happen
	for _, id := range ids {
		if recs, err := g.store.Records(context.Background(), id); err != nil || len(recs) != 0 {
			t.Fatalf("Records(%s) = %d records, %v; want none before the batch is full", id, len(recs), err)
		}
	}
	ids = append(ids, chatID(t, c, userChat("gpt-4o-mini", "Say hello")))
	for _, id := range ids {
		g.records(t, id, 1)
	}
}

// TestMeteringOneBillablePerRequest checks that every served request has
// exactly one billable record, and a failover request one per attempt.
func TestMeteringOneBillablePerRequest(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	bad := newUpstream(t, fakeupstream.Options{APIKey: p2Key})
	bad.SetDefault(fakeupstream.Behavior{Status: http.StatusInternalServerError})
	g := startMeterGateway(t, meterConfig{
		base: u.URL,
		providers: fmt.Sprintf(`  - name: bad
    type: openai-compatible
    base_url: %s/v1
    api_key: ${P2_KEY}
`, bad.URL),
		models: "  - {name: failover, routes: [bad, p]}\n",
		prices: "  - {provider: \"*\", model: failover, input: \"1.00\", output: \"2.00\"}\n",
		rest:   "keys:\n  - {name: once, key: \"${KEY_METER_A}\"}\n",
	})
	c := g.client(t, keyMeterA)

	t.Run("served", func(t *testing.T) {
		for i := range 4 {
			var id string
			if i%2 == 0 {
				id = chatID(t, c, userChat("gpt-4o-mini", "Say hello"))
			} else {
				var resp *http.Response
				s := c.Chat.Completions.NewStreaming(context.Background(), userChat("gpt-4o-mini", "Say hello"), option.WithResponseInto(&resp))
				for s.Next() {
				}
				if err := s.Err(); err != nil {
					t.Fatalf("stream: %v", err)
				}
				s.Close()
				id = resp.Header.Get("X-Request-Id")
			}
			recs := g.records(t, id, 1)
			b := billable(recs)
			if len(b) != 1 || b[0].Attempt != 0 {
				t.Fatalf("request %d: billable records %+v, want one, attempt 0", i, b)
			}
			switch o := b[0].Outcome; {
			case o == "ok":
			default:
				t.Errorf("request %d: outcome %q, want ok", i, o)
			}
		}
	})

	t.Run("failover", func(t *testing.T) {
		var resp *http.Response
		if _, err := c.Chat.Completions.New(context.Background(), userChat("failover", "Say hello"), option.WithResponseInto(&resp)); err != nil {
			t.Fatalf("failover request: %v", err)
		}
		if p := resp.Header.Get("X-Multipolar-Provider"); p != "p" {
			t.Errorf("served by %q, want p", p)
		}
		recs := g.records(t, resp.Header.Get("X-Request-Id"), 2)
		type brief struct {
			Attempt  int
			Provider string
			Status   int
			Billable bool
			Output   int64
		}
		var got []brief
		for _, r := range recs {
			got = append(got, brief{r.Attempt, r.Provider, r.Status, r.Billable, r.Usage.OutputTokens})
		}
		want := []brief{{0, "bad", http.StatusInternalServerError, false, 0}, {1, "p", http.StatusOK, true, helloCompletion}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("failover records (-want +got):\n%s", diff)
		}
		if w := cost(t, helloPrompt, 0, helloCompletion, "1.00", "1.00", "2.00"); !equalMoney(t, recs[1].Cost.String(), w) || recs[0].Cost.Sign() != 0 {
			t.Errorf("failover costs = %s, %s; want 0, %s", recs[0].Cost, recs[1].Cost, w.FloatString(10))
		}
	})
}

// meteringErrorMessage returns the message and code of a refused OpenAI request.
func meteringErrorMessage(t *testing.T, body []byte) (string, string) {
	t.Helper()
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	code := ""
	if e.Error.Code != nil {
		code = *e.Error.Code
	}
	return e.Error.Message, code
}

// TestMeteringBudgets checks hard, soft and team budgets.
func TestMeteringBudgets(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	g := startMeterGateway(t, meterConfig{base: u.URL, rest: `
teams:
  - name: shared
    budgets: [{limit: "0.000050", period: total, mode: hard}]
keys:
  - name: capped
    key: ${KEY_METER_A}
    budgets: [{limit: "0.000100", period: total, mode: hard}]
  - name: soft
    key: ${KEY_ALL}
    budgets: [{limit: "0.000001", period: total, mode: soft}]
  - {name: team-a, key: "${KEY_METER_B}", team: shared}
  - {name: team-b, key: "${KEY_METER_C}", team: shared}
`})
	// max_tokens bounds the reservation: 10 output tokens and one input
	// token per body byte.
	body := helloBody("gpt-4o-mini", 10)
	one := miniCost(t, helloPrompt, 0, helloCompletion)

	t.Run("hard", func(t *testing.T) {
		ok := 0
		var refusal []byte
		for range 100 {
			status, _, b, err := rawChat(g.URL, keyMeterA, body, nil)
			if err != nil {
				t.Fatal(err)
			}
			if status == http.StatusTooManyRequests {
				refusal = b
				break
			}
			if status != http.StatusOK {
				t.Fatalf("status %d, want 200 or 429: %s", status, b)
			}
			ok++
		}
		if refusal == nil || ok == 0 {
			t.Fatalf("%d served and refusal %q; want some served, then a 429", ok, refusal)
		}
		msg, code := meteringErrorMessage(t, refusal)
		for _, want := range []string{`"key:capped"`, "$0.000100", "exhausted"} {
			if !strings.Contains(msg, want) {
				t.Errorf("refusal message %q lacks %q", msg, want)
			}
		}
		if code != "budget_exceeded" {
			t.Errorf("refusal code = %q, want budget_exceeded", code)
		}
		// Refused stays refused.
		if status, _, b, _ := rawChat(g.URL, keyMeterA, body, nil); status != http.StatusTooManyRequests {
			t.Errorf("after exhaustion: %d, want 429: %s", status, b)
		}
		r := g.waitRequests(t, "key", int64(ok)) // only capped so far
		row := r.Rows[0]
		spent := rat(t, row.Cost)
		if spent.Cmp(rat(t, "0.000100")) > 0 {
			t.Errorf("settled spend %s exceeds the limit 0.000100", row.Cost)
		}
		if !equalMoney(t, row.Cost, mul(int64(ok), one)) {
			t.Errorf("settled spend = %s, want %d × %s", row.Cost, ok, one.FloatString(10))
		}
		t.Logf("hard budget $0.000100: %d served, settled %s", ok, row.Cost)
	})

	t.Run("soft", func(t *testing.T) {
		for i := range 3 {
			if status, _, b, err := rawChat(g.URL, keyAll, body, nil); err != nil || status != http.StatusOK {
				t.Fatalf("request %d over a soft budget = %d, %v, want 200: %s", i, status, err, b)
			}
		}
		if v, ok := metricValue(g.scrape(t), "multipolar_budget_soft_exceeded_total", map[string]string{"budget": "key:soft"}); !ok || v < 3 {
			t.Errorf("multipolar_budget_soft_exceeded_total{budget=key:soft} = %v (found %t), want >= 3", v, ok)
		}
	})

	t.Run("team", func(t *testing.T) {
		served := map[string]int{}
		keys := []string{keyMeterB, keyMeterC}
		refusedAt := -1
		for i := 0; i < 100 && refusedAt < 0; i++ {
			status, _, b, err := rawChat(g.URL, keys[i%2], body, nil)
			if err != nil {
				t.Fatal(err)
			}
			switch status {
			case http.StatusOK:
				served[keys[i%2]]++
			case http.StatusTooManyRequests:
				refusedAt = i
				if msg, _ := meteringErrorMessage(t, b); !strings.Contains(msg, `"team:shared"`) {
					t.Errorf("refusal message %q does not name the team budget", msg)
				}
			default:
				t.Fatalf("status %d: %s", status, b)
			}
		}
		if refusedAt < 0 || served[keyMeterB] == 0 || served[keyMeterC] == 0 {
			t.Fatalf("served %v, refused at %d; want both keys served, then a refusal", served, refusedAt)
		}
		for _, k := range keys {
			if status, _, b, _ := rawChat(g.URL, k, body, nil); status != http.StatusTooManyRequests {
				t.Errorf("key %s after the team budget is exhausted: %d, want 429: %s", k, status, b)
			}
		}
		want := int64(served[keyMeterB] + served[keyMeterC])
		var row usageRow
		eventually(t, fmt.Sprintf("team shared counts %d requests", want), func() bool {
			for _, r := range g.usage(t, "team").Rows {
				if *r.Team == "shared" {
					row = r
				}
			}
			return row.Requests >= want
		})
		if row.Requests != want {
			t.Errorf("team requests = %d, want %d", row.Requests, want)
		}
		if rat(t, row.Cost).Cmp(rat(t, "0.000050")) > 0 {
			t.Errorf("team settled spend %s exceeds its limit 0.000050", row.Cost)
		}
		if !equalMoney(t, row.Cost, mul(want, one)) {
			t.Errorf("team settled spend = %s, want %d × %s", row.Cost, want, one.FloatString(10))
		}
		t.Logf("team budget $0.000050: served %v, settled %s", served, row.Cost)
	})
}

// TestMeteringRateLimit checks a requests-per-minute limit: headers,
// Retry-After, and the SDK's error.
func TestMeteringRateLimit(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	g := startMeterGateway(t, meterConfig{base: u.URL, rest: "keys:\n  - {name: slow, key: \"${KEY_METER_A}\", limits: {rpm: 2}}\n"})
	for i := range 2 {
		status, h, b, err := rawChat(g.URL, keyMeterA, helloBody("gpt-4o-mini", 0), nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("request %d = %d, %v, want 200: %s", i, status, err, b)
		}
		if got, want := h.Get("X-Ratelimit-Remaining-Requests"), fmt.Sprint(1-i); got != want {
			t.Errorf("request %d x-ratelimit-remaining-requests = %q, want %q", i, got, want)
		}
	}
	c := g.client(t, keyMeterA)
	_, err := c.Chat.Completions.New(context.Background(), userChat("gpt-4o-mini", "Say hello"))
	e := apiError(t, err)
	if e.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third request status = %d, want 429", e.StatusCode)
	}
	h := e.Response.Header
	for name, want := range map[string]string{"X-Ratelimit-Limit-Requests": "2", "X-Ratelimit-Remaining-Requests": "0"} {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if ra := h.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q, want a positive number of seconds", ra)
	}
	if !strings.Contains(e.Message, "key:slow") {
		t.Errorf("message %q does not name the limit key:slow", e.Message)
	}
}

// TestMeteringBudgetConcurrency fires 200 concurrent requests at a $0.01
// hard budget, each costing about $0.0001: the settled spend never exceeds
// the limit and reservations that fit are not refused.
func TestMeteringBudgetConcurrency(t *testing.T) {
	const chunks = 10
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key, Chunks: chunks})
	g := startMeterGateway(t, meterConfig{
		base:   u.URL,
		prices: "  - {provider: p, model: local, input: \"0.01\", output: \"10.00\"}\n",
		rest: `
keys:
  - name: burst
    key: ${KEY_METER_A}
    budgets: [{limit: "0.01", period: total, mode: hard}]
`,
	})
	body := helloBody("local", chunks)

	const n = 200
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
		errs   []error
	)
	for range n {
		wg.Go(func() {
			status, _, b, err := rawChat(g.URL, keyMeterA, body, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if status != http.StatusOK && status != http.StatusTooManyRequests {
				errs = append(errs, fmt.Errorf("status %d: %s", status, b))
			}
			counts[status]++
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	ok := counts[http.StatusOK]
	r := g.waitRequests(t, "key", int64(ok))
	settled := rat(t, r.Total.Cost)
	t.Logf("200 concurrent at $0.01: %d served, %d refused, settled %s", ok, counts[http.StatusTooManyRequests], r.Total.Cost)
	if settled.Cmp(rat(t, "0.01")) > 0 {
		t.Errorf("settled spend %s exceeds the $0.01 limit", r.Total.Cost)
	}
	if want := mul(int64(ok), cost(t, helloPrompt, 0, chunks, "0.01", "0.01", "10.00")); settled.Cmp(want) != 0 {
		t.Errorf("settled spend = %s, want %s for %d requests", r.Total.Cost, want.FloatString(10), ok)
	}
	if ok < 90 {
		t.Errorf("%d requests served, want at least 90", ok)
	}
}

// TestMeteringKeyExpiry checks that an expired key is refused with 401
// naming the expiry.
func TestMeteringKeyExpiry(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	g := startMeterGateway(t, meterConfig{base: u.URL, rest: "keys:\n  - {name: old, key: \"${KEY_METER_A}\", expires: 2020-01-01}\n"})
	c := g.client(t, keyMeterA)
	_, err := c.Chat.Completions.New(context.Background(), userChat("gpt-4o-mini", "Say hello"))
	e := apiError(t, err)
	if e.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired key status = %d, want 401", e.StatusCode)
	}
	for _, want := range []string{`"old"`, "expired", "2020-01-01T00:00:00Z"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q lacks %q", e.Message, want)
		}
	}
	if len(u.Requests()) != 0 {
		t.Errorf("upstream got %d requests from an expired key, want 0", len(u.Requests()))
	}
}

// TestMeteringRecordsTheRouteDecision: the usage record names every
// provider the plan passed over, with its reason, and every attempt.
func TestMeteringRecordsTheRouteDecision(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{})
	g := startMeterGateway(t, meterConfig{base: u.URL,
		providers: fmt.Sprintf("  - {name: eu, type: openai-compatible, base_url: \"%s/v1\", region: eu-west-1}\n", u.URL),
		models:    "  - {name: gpt-4o, routes: [p, eu]}\n",
		rest: `ledger: {durability: sync}
agreements:
  - {name: deal, type: first_refusal, holder: p, scope: {models: ["gpt-*"]}}
policies:
  - {workload: default, regions: [eu-west-1]}
` + keysYAML[strings.Index(keysYAML, "keys:"):strings.Index(keysYAML, "admin:")]})
	resp, body := g.do(t, http.MethodPost, "/v1/chat/completions", keyAll, []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	recs := g.records(t, resp.Header.Get("X-Request-Id"), 1)
	var route struct {
		Decision string `json:"decision"`
		Attempts []struct{ Provider, Outcome string }
	}
	if err := json.Unmarshal([]byte(recs[0].Route), &route); err != nil {
		t.Fatalf("route %q: %v", recs[0].Route, err)
	}
	if !strings.Contains(route.Decision, "p=refused:region_not_allowed(first_refusal:deal)") ||
		len(route.Attempts) != 1 || route.Attempts[0].Provider != "eu" || route.Attempts[0].Outcome != "served" {
		t.Errorf("recorded route = %+v; want the holder's region refusal and eu served", route)
	}
}
