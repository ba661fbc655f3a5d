package server_test

// This file holds the end-to-end harness: fake upstreams behind a real
// gateway served on a loopback listener, reached by the official OpenAI Go
// SDK. Every response the SDK or a raw request reads from the gateway is
// checked against OpenAI's published OpenAPI spec.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/server"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

// Secrets the test configurations reference as ${VAR}.
const (
	keyAll     = "sk-virtual-all"
	keyGPT     = "sk-virtual-gpt-only"
	adminToken = "admin-secret-token"
	p1Key      = "pk-upstream-one"
	p2Key      = "pk-upstream-two"
	azKey      = "az-upstream-key"
)

var testEnv = map[string]string{
	"KEY_ALL":     keyAll,
	"KEY_GPT":     keyGPT,
	"ADMIN_TOKEN": adminToken,
	"P1_KEY":      p1Key,
	"P2_KEY":      p2Key,
	"AZ_KEY":      azKey,
}

func lookupEnv(k string) (string, bool) { v, ok := testEnv[k]; return v, ok }

// keysYAML declares a key for every model, a key for gpt-* only, and the
// admin token.
const keysYAML = `
keys:
  - name: all
    key: ${KEY_ALL}
  - name: gpt-only
    key: ${KEY_GPT}
    models: ["gpt-*"]
admin:
  token: ${ADMIN_TOKEN}
`

// upstream is a fake provider served over real HTTP. Its handler wrapper
// records, for each request, whether the request's context had ended when
// the fake's handler returned, and can hold a response after its first
// write until released.
type upstream struct {
	*fakeupstream.Server
	URL string

	mu    sync.Mutex
	ended []error // r.Context().Err() as each handler returned
	gate  chan struct{}
}

func newUpstream(t *testing.T, opts fakeupstream.Options) *upstream {
	t.Helper()
	u := &upstream{Server: fakeupstream.New(opts)}
	ts := httptest.NewServer(u)
	u.URL = ts.URL
	// Cleanups run last-in first-out: release hung handlers, then close.
	t.Cleanup(ts.Close)
	t.Cleanup(u.Close)
	t.Cleanup(func() { u.Release() })
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	g := u.gate
	u.mu.Unlock()
	if g != nil {
		w = &gateWriter{ResponseWriter: w, gate: g, ctx: r.Context()}
	}
	u.Server.ServeHTTP(w, r)
	u.mu.Lock()
	u.ended = append(u.ended, r.Context().Err())
	u.mu.Unlock()
}

// Hold makes responses of later requests stop after their first write
// until Release.
func (u *upstream) Hold() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.gate = make(chan struct{})
}

// Release lets held responses continue. It is safe to call repeatedly.
func (u *upstream) Release() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.gate != nil {
		close(u.gate)
		u.gate = nil
	}
}

// Ended returns the context error of each finished handler, in order.
func (u *upstream) Ended() []error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]error(nil), u.ended...)
}

type gateWriter struct {
	http.ResponseWriter
	gate   chan struct{}
	ctx    context.Context
	writes int
}

func (g *gateWriter) Write(p []byte) (int, error) {
	if g.writes++; g.writes > 1 {
		select {
		case <-g.gate:
		case <-g.ctx.Done():
		}
	}
	return g.ResponseWriter.Write(p)
}

func (g *gateWriter) Flush() { http.NewResponseController(g.ResponseWriter).Flush() }

func (g *gateWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// closedURL returns the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

// gateway is a Server serving on a loopback listener.
type gateway struct {
	*server.Server
	URL  string // http://127.0.0.1:PORT
	Addr string

	stop context.CancelFunc
	done chan struct{}
	err  error // Serve's result, once done is closed
}

func parseConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), lookupEnv)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	if cfg.Ledger.Driver == "sqlite" && cfg.Ledger.Path == config.DefaultLedgerPath {
		cfg.Ledger.Path = filepath.Join(t.TempDir(), "ledger.db") // keep the source tree clean
	}
	if cfg.Ledger.FlushInterval == config.DefaultLedgerFlush {
		// Tests read the ledger right after their requests: commit within
		// milliseconds, not a second (TestMeteringLedgerBatching sets its own).
		cfg.Ledger.FlushInterval = config.Duration(5 * time.Millisecond)
	}
	return cfg
}

// startGateway parses yaml and serves it.
func startGateway(t *testing.T, yaml string) *gateway {
	t.Helper()
	return serveGateway(t, server.Options{Config: parseConfig(t, yaml)})
}

// serveGateway builds a Server from opts and serves it until the test ends
// or Shutdown is called.
func serveGateway(t *testing.T, opts server.Options) *gateway {
	t.Helper()
	srv, err := server.New(opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{Server: srv, URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), stop: cancel, done: make(chan struct{})}
	go func() {
		g.err = srv.Serve(ctx, ln)
		close(g.done)
	}()
	t.Cleanup(func() {
		if err := g.Shutdown(t); err != nil {
			t.Errorf("Serve() = %v, want nil", err)
		}
	})
	return g
}

// Shutdown cancels Serve's context and waits for Serve to return.
func (g *gateway) Shutdown(t *testing.T) error {
	t.Helper()
	g.stop()
	select {
	case <-g.done:
		return g.err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of its context ending")
		return nil
	}
}

// client returns an SDK client for the gateway that presents key, never
// retries, and checks every response against OpenAI's spec.
func (g *gateway) client(t *testing.T, key string, opts ...option.RequestOption) openai.Client {
	t.Helper()
	base := []option.RequestOption{
		option.WithBaseURL(g.URL + "/v1"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
		option.WithMiddleware(conformance(t)),
	}
	return openai.NewClient(append(base, opts...)...)
}

// conformance returns SDK middleware that validates each response body
// once it has been read completely.
func conformance(t *testing.T) option.Middleware {
	return func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		resp, err := next(req)
		if err != nil || resp == nil {
			return resp, err
		}
		method, path, status, header := req.Method, req.URL.Path, resp.StatusCode, resp.Header
		resp.Body = &checkedBody{rc: resp.Body, check: func(b []byte) {
			t.Helper()
			validate(t, method, path, status, header, b)
		}}
		return resp, nil
	}
}

// checkedBody buffers what is read through it and calls check with the
// whole body at EOF, or at Close when a complete event stream was read.
// A body abandoned midway (a canceled stream) is not checked.
type checkedBody struct {
	rc      io.ReadCloser
	buf     bytes.Buffer
	checked bool
	failed  bool
	check   func([]byte)
}

func (c *checkedBody) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.buf.Write(p[:n])
	switch {
	case errors.Is(err, io.EOF):
		c.finish()
	case err != nil:
		c.failed = true
	}
	return n, err
}

func (c *checkedBody) Close() error {
	if !c.failed && bytes.Contains(c.buf.Bytes(), []byte("data: [DONE]")) {
		c.finish()
	}
	return c.rc.Close()
}

func (c *checkedBody) finish() {
	if !c.checked && !c.failed {
		c.checked = true
		c.check(c.buf.Bytes())
	}
}

// validate checks one gateway response against OpenAI's spec. Error events
// inside an event stream are checked as ErrorResponse, the other events as
// the operation's stream chunks.
func validate(t *testing.T, method, path string, status int, header http.Header, body []byte) {
	t.Helper()
	spec := oapispec.OpenAI(t)
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt == "text/event-stream" {
		var chunks bytes.Buffer
		for _, ev := range sseEvents(body) {
			if d, ok := bytes.CutPrefix(ev, []byte("data: ")); ok && bytes.HasPrefix(d, []byte(`{"error"`)) {
				spec.ValidateSchema(t, "ErrorResponse", d)
				continue
			}
			chunks.Write(ev)
			chunks.WriteString("\n\n")
		}
		body = chunks.Bytes()
	}
	if strings.HasSuffix(path, "/embeddings") && status == http.StatusOK {
		body = base64AsFloats(t, body)
	}
	spec.ValidateResponse(t, method, path, status, header, body)
}

// base64AsFloats rewrites base64 embeddings as float arrays. OpenAI's spec
// declares Embedding.embedding as an array of numbers only, yet the API
// answers encoding_format=base64 with a string (the SDK docs say so); the
// string is checked to decode to whole float32 values instead.
func base64AsFloats(t *testing.T, body []byte) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		return body // ValidateResponse reports it
	}
	data, _ := doc["data"].([]any)
	changed := false
	for i, d := range data {
		e, _ := d.(map[string]any)
		s, ok := e["embedding"].(string)
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw)%4 != 0 {
			t.Errorf("data[%d].embedding = %q, want base64 of little-endian float32s", i, s)
			continue
		}
		vec := make([]any, len(raw)/4)
		for j := range vec {
			vec[j] = float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:])))
		}
		e["embedding"], changed = vec, true
	}
	if !changed {
		return body
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("re-encode embeddings: %v", err)
	}
	return out
}

// sseEvents splits a transcript into its events, without the blank lines.
// It fails nothing: a trailing partial event is returned as it is.
func sseEvents(body []byte) [][]byte {
	var out [][]byte
	for _, ev := range bytes.Split(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")), []byte("\n\n")) {
		if len(bytes.TrimSpace(ev)) > 0 {
			out = append(out, ev)
		}
	}
	return out
}

// do sends a raw request to the gateway and returns the response with its
// body read. Responses under /v1/ are validated against OpenAI's spec.
func (g *gateway) do(t *testing.T, method, path, key string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, g.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return doRequest(t, req)
}

func doRequest(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	if strings.HasPrefix(req.URL.Path, "/v1/") {
		validate(t, req.Method, req.URL.Path, resp.StatusCode, resp.Header, b)
	}
	return resp, b
}

// eventually polls cond every few milliseconds until it holds or the
// deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 5s waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scrape returns the gateway's /metrics text.
func (g *gateway) scrape(t *testing.T) string {
	t.Helper()
	resp, body := g.do(t, http.MethodGet, "/metrics", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d, want 200", resp.StatusCode)
	}
	return string(body)
}

// metricValue finds the sample of name whose labels include every pair in
// labels and returns its value.
func metricValue(text, name string, labels map[string]string) (float64, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		var lbl string
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			lbl, rest = rest[1:end], rest[end+1:]
		}
		match := true
		for k, v := range labels {
			if !strings.Contains(","+lbl+",", ","+k+"="+strconv.Quote(v)+",") {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		return f, true
	}
	return 0, false
}

// apiError asserts that err is an *openai.Error and returns it.
func apiError(t *testing.T, err error) *openai.Error {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *openai.Error", err, err)
	}
	return e
}

// userChat is a one-message chat request for model.
func userChat(model, text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}
