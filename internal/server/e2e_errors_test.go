package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

// TestErrors drives every client-visible failure through the SDK and checks
// the status and OpenAI error fields it surfaces.
func TestErrors(t *testing.T) {
	ok := newUpstream(t, fakeupstream.Options{})
	hang := newUpstream(t, fakeupstream.Options{})
	hang.SetDefault(fakeupstream.Behavior{Hang: true})
	fail := newUpstream(t, fakeupstream.Options{})
	fail.SetDefault(fakeupstream.Behavior{Status: http.StatusInternalServerError})
	rl1 := newUpstream(t, fakeupstream.Options{})
	rl1.SetDefault(fakeupstream.Behavior{Status: http.StatusTooManyRequests, RetryAfter: "3"})
	rl2 := newUpstream(t, fakeupstream.Options{})
	rl2.SetDefault(fakeupstream.Behavior{Status: http.StatusTooManyRequests, RetryAfter: "7"})
	g := startGateway(t, fmt.Sprintf(`
server:
  max_body: 1KiB
providers:
  - {name: ok, type: openai-compatible, base_url: %s/v1}
  - name: hang
    type: openai-compatible
    base_url: %s/v1
    timeouts: {first_byte: 200ms}
  - {name: fail-a, type: openai-compatible, base_url: %s/v1}
  - {name: fail-b, type: openai-compatible, base_url: %s/v1}
  - {name: rl-a, type: openai-compatible, base_url: %s/v1}
  - {name: rl-b, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [ok]}
  - {name: llama, routes: [ok]}
  - {name: slow, routes: [hang]}
  - {name: broken, routes: [fail-a, fail-b]}
  - {name: limited, routes: [rl-a, rl-b]}
`+keysYAML, ok.URL, hang.URL, fail.URL, fail.URL, rl1.URL, rl2.URL))

	dropAuth := option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		r.Header.Del("Authorization")
		return next(r)
	})
	big := strings.Repeat("word ", 300) // 1.5 KiB of content

	tests := []struct {
		name       string
		key        string
		opts       []option.RequestOption
		params     openai.ChatCompletionNewParams
		wantStatus int
		wantType   string
		wantCode   string
		wantParam  string
		wantRetry  string // Retry-After header
		wantProv   string // x-multipolar-provider
	}{
		{name: "missing model", key: keyAll, params: userChat("", "hi"),
			wantStatus: 400, wantType: "invalid_request_error", wantParam: "model", wantProv: "none"},
		{name: "unknown model", key: keyAll, params: userChat("no-such-model", "hi"),
			wantStatus: 404, wantType: "invalid_request_error", wantCode: "model_not_found", wantParam: "model", wantProv: "none"},
		{name: "missing key", key: keyAll, opts: []option.RequestOption{dropAuth}, params: userChat("gpt-4o", "hi"),
			wantStatus: 401, wantType: "invalid_request_error", wantCode: "missing_api_key", wantProv: "none"},
		{name: "bad key", key: "sk-not-a-key", params: userChat("gpt-4o", "hi"),
			wantStatus: 401, wantType: "invalid_request_error", wantCode: "invalid_api_key", wantProv: "none"},
		{name: "model not allowed", key: keyGPT, params: userChat("llama", "hi"),
			wantStatus: 403, wantType: "permission_error", wantCode: "model_not_allowed", wantParam: "model", wantProv: "none"},
		{name: "body too large", key: keyAll, params: userChat("gpt-4o", big),
			wantStatus: 413, wantType: "invalid_request_error", wantCode: "request_too_large", wantProv: "none"},
		{name: "upstream timeout", key: keyAll, params: userChat("slow", "hi"),
			wantStatus: 504, wantType: "server_error", wantCode: "upstream_timeout", wantProv: "none"},
		{name: "all upstreams failed", key: keyAll, params: userChat("broken", "hi"),
			wantStatus: 502, wantType: "server_error", wantCode: "upstream_unavailable", wantProv: "none"},
		// Every route answers 429: the last upstream's own body goes
		// through, with the smallest Retry-After of them all (the first's).
		{name: "rate limited", key: keyAll, params: userChat("limited", "hi"),
			wantStatus: 429, wantType: "requests", wantCode: "rate_limit_exceeded", wantRetry: "3", wantProv: "rl-b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := g.client(t, tc.key, tc.opts...)
			_, err := c.Chat.Completions.New(context.Background(), tc.params)
			e := apiError(t, err)
			if e.StatusCode != tc.wantStatus {
				t.Errorf("StatusCode = %d, want %d (body %s)", e.StatusCode, tc.wantStatus, e.RawJSON())
			}
			if e.Type != tc.wantType {
				t.Errorf("type = %q, want %q", e.Type, tc.wantType)
			}
			if e.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", e.Code, tc.wantCode)
			}
			if e.Param != tc.wantParam {
				t.Errorf("param = %q, want %q", e.Param, tc.wantParam)
			}
			if e.Message == "" {
				t.Error("message is empty")
			}
			if got := e.Response.Header.Get("Retry-After"); got != tc.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tc.wantRetry)
			}
			if got := e.Response.Header.Get("X-Multipolar-Provider"); got != tc.wantProv {
				t.Errorf("x-multipolar-provider = %q, want %q", got, tc.wantProv)
			}
			if e.Response.Header.Get("X-Request-Id") == "" {
				t.Error("x-request-id is empty")
			}
		})
	}

	// The SDK always sends valid JSON and a known length; these need raw
	// requests.
	t.Run("malformed JSON", func(t *testing.T) {
		resp, body := g.do(t, http.MethodPost, "/v1/chat/completions", keyAll, []byte(`{"model":"gpt-4o",`))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status = %d, want 400", resp.StatusCode)
		}
		if !strings.Contains(string(body), `"code":"invalid_json"`) {
			t.Errorf("body = %s, want code invalid_json", body)
		}
	})
	t.Run("chunked body too large", func(t *testing.T) {
		// No Content-Length: the limit must hold while reading.
		pr, pw := io.Pipe()
		go func() {
			_, _ = io.WriteString(pw, `{"model":"gpt-4o","messages":[{"role":"user","content":"`+big+`"}]}`)
			_ = pw.Close()
		}()
		req, err := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+keyAll)
		resp, body := doRequest(t, req)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("status = %d, want 413; body %s", resp.StatusCode, body)
		}
	})
	t.Run("embeddings unknown model", func(t *testing.T) {
		c := g.client(t, keyGPT)
		_, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
			Model: "text-embedding-3-small",
			Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")},
		})
		if e := apiError(t, err); e.StatusCode != http.StatusNotFound {
			t.Errorf("StatusCode = %d, want 404", e.StatusCode)
		}
	})
	t.Run("models bad key", func(t *testing.T) {
		c := g.client(t, "sk-not-a-key")
		_, err := c.Models.List(context.Background())
		if e := apiError(t, err); e.StatusCode != http.StatusUnauthorized {
			t.Errorf("StatusCode = %d, want 401", e.StatusCode)
		}
	})

	if n := len(ok.Requests()); n != 0 {
		t.Errorf("upstream ok got %d requests, want 0: every case fails before forwarding", n)
	}
	if n := len(fail.Requests()); n != 2 {
		t.Errorf("failing upstream got %d requests, want 2 (one per route)", n)
	}
}

// TestFailover checks that a failure of the first route before any byte
// reached the client is retried on the second.
func TestFailover(t *testing.T) {
	tests := []struct {
		name        string
		first       fakeupstream.Behavior
		refused     bool // the first provider's port is closed
		wantOutcome string
		wantStatus  string
	}{
		{name: "500", first: fakeupstream.Behavior{Status: 500}, wantOutcome: "server_error", wantStatus: "500"},
		{name: "503", first: fakeupstream.Behavior{Status: 503}, wantOutcome: "server_error", wantStatus: "503"},
		{name: "429", first: fakeupstream.Behavior{Status: 429, RetryAfter: "5"}, wantOutcome: "rate_limited", wantStatus: "429"},
		{name: "upstream 401", first: fakeupstream.Behavior{Status: 401}, wantOutcome: "auth_rejected", wantStatus: "401"},
		{name: "connection refused", refused: true, wantOutcome: "connect_error", wantStatus: "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Both providers share one fake, told apart by their keys, so
			// its Requests() give the attempt order.
			u := newUpstream(t, fakeupstream.Options{})
			firstURL := u.URL
			if tc.refused {
				firstURL = closedURL(t)
			} else {
				u.Enqueue(tc.first)
			}
			g := startGateway(t, fmt.Sprintf(`
providers:
  - {name: first, type: openai-compatible, base_url: %s/v1, api_key: "${P1_KEY}"}
  - {name: second, type: openai-compatible, base_url: %s/v1, api_key: "${P2_KEY}"}
models:
  - {name: gpt-4o, routes: [first, second]}
`+keysYAML, firstURL, u.URL))
			c := g.client(t, keyAll)
			var resp *http.Response
			got, err := c.Chat.Completions.New(context.Background(), userChat("gpt-4o", "hi"), option.WithResponseInto(&resp))
			if err != nil {
				t.Fatalf("Chat.Completions.New: %v", err)
			}
			if got.Choices[0].Message.Content != fakeupstream.DefaultContent {
				t.Errorf("content = %q, want %q", got.Choices[0].Message.Content, fakeupstream.DefaultContent)
			}
			if p := resp.Header.Get("X-Multipolar-Provider"); p != "second" {
				t.Errorf("x-multipolar-provider = %q, want second", p)
			}
			if ra := resp.Header.Get("Retry-After"); ra != "" {
				t.Errorf("Retry-After = %q on a served answer, want none", ra)
			}
			var order []string
			for _, r := range u.Requests() {
				order = append(order, r.Header.Get("Authorization"))
			}
			want := []string{"Bearer " + p1Key, "Bearer " + p2Key}
			if tc.refused {
				want = want[1:]
			}
			if strings.Join(order, ",") != strings.Join(want, ",") {
				t.Errorf("upstream attempts = %q, want %q", order, want)
			}

			m := g.scrape(t)
			for _, s := range []struct {
				labels map[string]string
			}{
				{map[string]string{"provider": "first", "model": "gpt-4o", "outcome": tc.wantOutcome, "status": tc.wantStatus}},
				{map[string]string{"provider": "second", "model": "gpt-4o", "outcome": "served", "status": "200"}},
			} {
				if v, ok := metricValue(m, "multipolar_upstream_attempts_total", s.labels); !ok || v != 1 {
					t.Errorf("multipolar_upstream_attempts_total%v = %v (found %v), want 1", s.labels, v, ok)
				}
			}
			lbl := map[string]string{"endpoint": "chat", "model": "gpt-4o", "provider": "second", "status": "200"}
			if v, ok := metricValue(m, "multipolar_requests_total", lbl); !ok || v != 1 {
				t.Errorf("multipolar_requests_total%v = %v (found %v), want 1", lbl, v, ok)
			}
		})
	}
}

// TestFailoverStream checks failover for a streamed request: the client
// sees only the second provider's stream.
func TestFailoverStream(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{})
	u.Enqueue(fakeupstream.Behavior{Status: 500})
	g := startGateway(t, fmt.Sprintf(`
providers:
  - {name: first, type: openai-compatible, base_url: %s/v1}
  - {name: second, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [first, second]}
`+keysYAML, u.URL, u.URL))
	c := g.client(t, keyAll)
	var resp *http.Response
	stream := c.Chat.Completions.NewStreaming(context.Background(), userChat("gpt-4o", "hi"), option.WithResponseInto(&resp))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream.Err() = %v, want nil", err)
	}
	if got := acc.Choices[0].Message.Content; got != fakeupstream.DefaultContent {
		t.Errorf("content = %q, want %q", got, fakeupstream.DefaultContent)
	}
	if p := resp.Header.Get("X-Multipolar-Provider"); p != "second" {
		t.Errorf("x-multipolar-provider = %q, want second", p)
	}
	if n := len(u.Requests()); n != 2 {
		t.Errorf("upstream got %d requests, want 2", n)
	}
}

// TestStreamCut checks that an upstream cut mid-stream ends the client's
// stream with an OpenAI error event after the content already sent.
func TestStreamCut(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{})
	u.SetDefault(fakeupstream.Behavior{CutAfter: 2})
	g := startGateway(t, fmt.Sprintf(`
providers:
  - {name: compat, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [compat]}
`+keysYAML, u.URL))

	t.Run("sdk", func(t *testing.T) {
		c := g.client(t, keyAll)
		stream := c.Chat.Completions.NewStreaming(context.Background(), userChat("gpt-4o", "hi"))
		var content strings.Builder
		n := 0
		for stream.Next() {
			n++
			if ch := stream.Current(); len(ch.Choices) > 0 {
				content.WriteString(ch.Choices[0].Delta.Content)
			}
		}
		err := stream.Err()
		if err == nil {
			t.Fatal("stream.Err() = nil, want an error after the cut")
		}
		if !strings.Contains(err.Error(), "upstream_unavailable") {
			t.Errorf("stream.Err() = %v, want the gateway's upstream_unavailable error event", err)
		}
		if n != 3 { // the role chunk and two content chunks
			t.Errorf("got %d chunks before the error, want 3", n)
		}
		if content.Len() == 0 || !strings.HasPrefix(fakeupstream.DefaultContent, content.String()) {
			t.Errorf("content before the cut = %q, want a prefix of %q", content.String(), fakeupstream.DefaultContent)
		}
	})
	t.Run("raw", func(t *testing.T) {
		// g.do validates every event: chunks as chunks, the last as an
		// ErrorResponse; a partial event would fail to parse.
		resp, body := g.do(t, http.MethodPost, "/v1/chat/completions", keyAll,
			[]byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200", resp.StatusCode)
		}
		events := sseEvents(body)
		if len(events) != 4 {
			t.Fatalf("got %d events, want 3 chunks and an error:\n%s", len(events), body)
		}
		last := string(events[len(events)-1])
		if !strings.HasPrefix(last, `data: {"error":{`) {
			t.Errorf("last event = %q, want an OpenAI error object", last)
		}
		if strings.Contains(string(body), "[DONE]") {
			t.Errorf("cut stream carries [DONE], want none:\n%s", body)
		}
		if !strings.HasSuffix(string(body), "\n\n") {
			t.Errorf("stream ends with %q, want a complete event", body[max(0, len(body)-20):])
		}
	})
}

// TestClientDisconnect checks that a client leaving mid-stream cancels the
// upstream request.
func TestClientDisconnect(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{Chunks: 200})
	// 200 chunks at 50ms is 10s: the upstream handler ends early only if
	// its request is canceled.
	u.SetDefault(fakeupstream.Behavior{ChunkDelay: 50 * time.Millisecond, Content: strings.Repeat("token ", 400)})
	g := startGateway(t, fmt.Sprintf(`
providers:
  - {name: compat, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [compat]}
`+keysYAML, u.URL))
	c := g.client(t, keyAll)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	stream := c.Chat.Completions.NewStreaming(ctx, userChat("gpt-4o", "hi"))
	for i := range 2 {
		if !stream.Next() {
			t.Fatalf("stream ended after %d chunks: %v", i, stream.Err())
		}
	}
	cancel()
	_ = stream.Close()

	eventually(t, "the upstream handler returns", func() bool { return len(u.Ended()) == 1 })
	if err := u.Ended()[0]; !errors.Is(err, context.Canceled) {
		t.Errorf("upstream request context error = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("upstream ran %v after the client left, want it canceled at once", d)
	}
	eventually(t, "no stream is in flight", func() bool {
		v, ok := metricValue(g.scrape(t), "multipolar_streams_in_flight", nil)
		return ok && v == 0
	})
}

// TestRateLimitSchemaAzure checks that a 429 relayed from an Azure upstream
// still speaks OpenAI's error schema. Azure's frontend answers throttling
// with {"error":{"code":"429","message":...}}, without "type" and "param".
func TestRateLimitSchemaAzure(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{Flavor: fakeupstream.FlavorAzure})
	u.SetDefault(fakeupstream.Behavior{Status: http.StatusTooManyRequests, RetryAfter: "4"})
	g := startGateway(t, fmt.Sprintf(`
providers:
  - {name: az, type: azure-openai, base_url: %s, api_key: "${AZ_KEY}", api_version: "2024-10-21"}
models:
  - {name: gpt-4o, routes: [az]}
`+keysYAML, u.URL))
	c := g.client(t, keyAll)
	_, err := c.Chat.Completions.New(context.Background(), userChat("gpt-4o", "hi"))
	e := apiError(t, err)
	if e.StatusCode != http.StatusTooManyRequests {
		t.Errorf("StatusCode = %d, want 429", e.StatusCode)
	}
	if e.Type == "" {
		t.Errorf("type is empty in %s, want OpenAI's error object", e.RawJSON())
	}
	if got := e.Response.Header.Get("Retry-After"); got != "4" {
		t.Errorf("Retry-After = %q, want 4", got)
	}
}
