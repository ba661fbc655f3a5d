package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/server"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

func TestReload(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{})
	file := filepath.Join(t.TempDir(), "multipolar.yaml")
	write := func(t *testing.T, s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := fmt.Sprintf(`
providers:
  - {name: compat, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [compat]}
`, u.URL)
	write(t, base+keysYAML)
	cfg, err := config.Load(file, lookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	g := serveGateway(t, server.Options{Config: cfg, Load: func() (*config.Config, error) { return config.Load(file, lookupEnv) }})
	c := g.client(t, keyAll)
	chat := func(model string) error {
		_, err := c.Chat.Completions.New(context.Background(), userChat(model, "hi"))
		return err
	}
	reload := func(t *testing.T, token string) (int, map[string]any) {
		t.Helper()
		resp, body := g.do(t, http.MethodPost, "/admin/reload", token, nil)
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("POST /admin/reload body %q: %v", body, err)
		}
		return resp.StatusCode, doc
	}

	if e := apiError(t, chat("gpt-4o-mini")); e.StatusCode != http.StatusNotFound {
		t.Fatalf("before reload: gpt-4o-mini StatusCode = %d, want 404", e.StatusCode)
	}

	t.Run("adds a model", func(t *testing.T) {
		write(t, base+"  - {name: gpt-4o-mini, routes: [compat]}\n"+keysYAML)
		status, doc := reload(t, adminToken)
		if status != http.StatusOK || doc["status"] != "ok" {
			t.Fatalf("POST /admin/reload = %d %v, want 200 ok", status, doc)
		}
		if err := chat("gpt-4o-mini"); err != nil {
			t.Errorf("after reload: gpt-4o-mini: %v, want served", err)
		}
		if got := len(g.Config().Models); got != 2 {
			t.Errorf("Config() has %d models, want 2", got)
		}
	})
	t.Run("broken file keeps the old config", func(t *testing.T) {
		write(t, base+"  - {name: bad, routes: [nowhere]}\nbogus_key: 1\n"+keysYAML)
		status, doc := reload(t, adminToken)
		if status != http.StatusBadRequest || doc["status"] != "error" {
			t.Errorf("POST /admin/reload = %d %v, want 400 error", status, doc)
		}
		probs, _ := doc["problems"].([]any)
		if len(probs) < 2 {
			t.Errorf("problems = %v, want both the unknown route provider and the unknown key", doc["problems"])
		}
		if err := chat("gpt-4o-mini"); err != nil {
			t.Errorf("after a failed reload: gpt-4o-mini: %v, want still served", err)
		}
		if err := chat("gpt-4o"); err != nil {
			t.Errorf("after a failed reload: gpt-4o: %v, want still served", err)
		}
	})
	t.Run("wrong admin token", func(t *testing.T) {
		for _, tok := range []string{"", "wrong", keyAll} {
			if status, _ := reload(t, tok); status != http.StatusUnauthorized {
				t.Errorf("POST /admin/reload with token %q = %d, want 401", tok, status)
			}
		}
	})
	t.Run("Server.Reload", func(t *testing.T) {
		got, err := g.Reload()
		var ce *config.Error
		if !errors.As(err, &ce) || got != nil {
			t.Fatalf("Reload() = %v, %v; want nil, *config.Error", got, err)
		}
		write(t, base+keysYAML) // drop gpt-4o-mini again
		got, err = g.Reload()
		if err != nil {
			t.Fatalf("Reload() = %v", err)
		}
		if got != g.Config() {
			t.Error("Reload() returned a config other than Config()")
		}
		if e := apiError(t, chat("gpt-4o-mini")); e.StatusCode != http.StatusNotFound {
			t.Errorf("after removing gpt-4o-mini: StatusCode = %d, want 404", e.StatusCode)
		}
		m := g.scrape(t)
		for result, want := range map[string]float64{"ok": 2, "error": 2} {
			if v, _ := metricValue(m, "multipolar_config_reloads_total", map[string]string{"result": result}); v != want {
				t.Errorf("multipolar_config_reloads_total{result=%q} = %v, want %v", result, v, want)
			}
		}
	})
	t.Run("no loader", func(t *testing.T) {
		srv, err := server.New(server.Options{Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Reload(); err == nil {
			t.Error("Reload() without Options.Load = nil error, want an error")
		}
	})
}

// TestShutdown checks the drain: a stream in flight when Serve's context
// ends completes, /readyz reports 503 meanwhile, new connections are
// refused, and Serve returns nil.
func TestShutdown(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{})
	g := startGateway(t, fmt.Sprintf(`
providers:
  - {name: compat, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [compat]}
`+keysYAML, u.URL))
	readyz := func() int {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := readyz(); code != http.StatusOK {
		t.Fatalf("GET /readyz before shutdown = %d, want 200", code)
	}

	u.Hold() // the upstream sends its first chunk, then waits for Release
	c := g.client(t, keyAll)
	stream := c.Chat.Completions.NewStreaming(context.Background(), userChat("gpt-4o", "hi"))
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	if v, _ := metricValue(g.scrape(t), "multipolar_streams_in_flight", nil); v != 1 {
		t.Errorf("multipolar_streams_in_flight = %v mid-stream, want 1", v)
	}

	g.stop()
	eventually(t, "/readyz answers 503", func() bool { return readyz() == http.StatusServiceUnavailable })
	eventually(t, "new connections are refused", func() bool {
		conn, err := net.Dial("tcp", g.Addr)
		if err != nil {
			return true
		}
		_ = conn.Close()
		return false
	})
	select {
	case <-g.done:
		t.Fatalf("Serve returned %v with a stream in flight", g.err)
	default:
	}

	u.Release()
	var acc openai.ChatCompletionAccumulator
	acc.AddChunk(stream.Current())
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream.Err() = %v, want the stream to finish during the drain", err)
	}
	if got := acc.Choices[0].Message.Content; got != fakeupstream.DefaultContent {
		t.Errorf("content = %q, want %q", got, fakeupstream.DefaultContent)
	}
	if err := g.Shutdown(t); err != nil {
		t.Errorf("Serve() = %v, want nil", err)
	}
}

// TestShutdownRawDone checks at the wire that a drained stream ends with
// [DONE].
func TestShutdownRawDone(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{})
	g := startGateway(t, fmt.Sprintf(`
providers:
  - {name: compat, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [compat]}
`+keysYAML, u.URL))
	u.Hold()
	req, err := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+keyAll)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("read first event: %v", err)
	}
	g.stop()
	eventually(t, "new connections are refused", func() bool {
		conn, err := net.Dial("tcp", g.Addr)
		if err != nil {
			return true
		}
		_ = conn.Close()
		return false
	})
	u.Release()
	var rest strings.Builder
	if _, err := br.WriteTo(&rest); err != nil {
		t.Fatalf("read rest of stream: %v", err)
	}
	if !strings.HasSuffix(rest.String(), "data: [DONE]\n\n") {
		t.Errorf("stream ends %q, want data: [DONE]", rest.String()[max(0, rest.Len()-40):])
	}
	if err := g.Shutdown(t); err != nil {
		t.Errorf("Serve() = %v, want nil", err)
	}
}

func TestMetrics(t *testing.T) {
	g, u := compatGateway(t)
	c := g.client(t, keyAll)
	ctx := context.Background()
	if _, err := c.Chat.Completions.New(ctx, userChat("gpt-4o", "hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Chat.Completions.New(ctx, userChat("gpt-4o", "hi")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Chat.Completions.New(ctx, userChat("no-such-model", "hi"))
	apiError(t, err)
	gptOnly := g.client(t, keyGPT)
	_, err = gptOnly.Chat.Completions.New(ctx, userChat("llama", "hi"))
	apiError(t, err)
	if _, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")},
	}); err != nil {
		t.Fatal(err)
	}

	u.Hold()
	var resp *http.Response
	stream := c.Chat.Completions.NewStreaming(ctx, userChat("gpt-4o-mini", "hi"), option.WithResponseInto(&resp))
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	if v, ok := metricValue(g.scrape(t), "multipolar_streams_in_flight", nil); !ok || v != 1 {
		t.Errorf("multipolar_streams_in_flight = %v (found %v) mid-stream, want 1", v, ok)
	}
	u.Release()
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"endpoint": "chat", "model": "gpt-4o", "provider": "compat", "status": "200"}, 2},
		{map[string]string{"endpoint": "chat", "model": "unknown", "provider": "none", "status": "404"}, 1},
		{map[string]string{"endpoint": "chat", "model": "llama", "provider": "none", "status": "403"}, 1},
		{map[string]string{"endpoint": "embeddings", "model": "text-embedding-3-small", "provider": "compat", "status": "200"}, 1},
		{map[string]string{"endpoint": "chat", "model": "gpt-4o-mini", "provider": "compat", "status": "200"}, 1},
	}
	var m string
	eventually(t, "the streamed request is counted", func() bool {
		m = g.scrape(t)
		v, _ := metricValue(m, "multipolar_requests_total", tests[len(tests)-1].labels)
		return v == 1
	})
	for _, tc := range tests {
		if v, ok := metricValue(m, "multipolar_requests_total", tc.labels); !ok || v != tc.want {
			t.Errorf("multipolar_requests_total%v = %v (found %v), want %v", tc.labels, v, ok, tc.want)
		}
	}
	if v, ok := metricValue(m, "multipolar_streams_in_flight", nil); !ok || v != 0 {
		t.Errorf("multipolar_streams_in_flight = %v (found %v) after the stream, want 0", v, ok)
	}
	if _, ok := metricValue(m, "multipolar_upstream_attempts_total", map[string]string{"provider": "compat", "outcome": "served"}); !ok {
		t.Error("multipolar_upstream_attempts_total{outcome=\"served\"} missing")
	}
}
