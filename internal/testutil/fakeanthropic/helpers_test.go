package fakeanthropic

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

const (
	testKey   = "sk-ant-test-0123456789abcdef"
	fixedID   = "msg_01FakeAnthropic0123456789"
	testModel = "claude-sonnet-4-5"
)

// exchange is one response the fake wrote, captured by recorder.
type exchange struct {
	method, path string
	status       int
	header       http.Header
	body         []byte
}

// recorder wraps a handler and keeps a copy of every response it writes, so
// tests can validate the bytes the SDK received.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	got  []exchange
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cw := &captureWriter{ResponseWriter: w}
	defer func() {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.got = append(rec.got, exchange{r.Method, r.URL.Path, cw.status, w.Header().Clone(), cw.buf.Bytes()})
	}()
	rec.next.ServeHTTP(cw, r)
}

func (rec *recorder) exchanges() []exchange {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]exchange(nil), rec.got...)
}

// captureWriter tees the body; Unwrap lets http.ResponseController reach
// Flush and Hijack on the real writer.
type captureWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (cw *captureWriter) WriteHeader(code int) {
	cw.status = code
	cw.ResponseWriter.WriteHeader(code)
}

func (cw *captureWriter) Write(p []byte) (int, error) {
	if cw.status == 0 {
		cw.status = http.StatusOK
	}
	cw.buf.Write(p)
	return cw.ResponseWriter.Write(p)
}

func (cw *captureWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }

// start serves a new fake behind a recorder on an httptest server, all
// closed at cleanup.
func start(t *testing.T, opts Options) (*Server, *recorder, *httptest.Server) {
	t.Helper()
	fake := New(opts)
	rec := &recorder{next: fake}
	ts := httptest.NewServer(rec)
	t.Cleanup(func() {
		fake.Close()
		ts.Close()
	})
	return fake, rec, ts
}

func sdkClient(ts *httptest.Server, key string) anthropic.Client {
	return anthropic.NewClient(
		option.WithBaseURL(ts.URL),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
		option.WithHTTPClient(ts.Client()),
	)
}

// validateAll checks every recorded response, and every request body sent to the
// first-party paths, against Anthropic's published OpenAPI spec. Stream
// events are checked one by one as MessageStreamEvent (the spec declares no
// text/event-stream content), pings skipped and error events as
// ErrorResponse.
func validateAll(t *testing.T, fake *Server, rec *recorder) {
	t.Helper()
	spec := oapispec.Anthropic(t)
	for _, ex := range rec.exchanges() {
		path := ex.path
		if strings.Contains(path, "/publishers/anthropic/models/") {
			path = "/v1/messages"
			if strings.Contains(ex.path, "count-tokens") {
				path = "/v1/messages/count_tokens"
			}
		}
		if !strings.HasPrefix(ex.header.Get("Content-Type"), "text/event-stream") {
			spec.ValidateResponse(t, ex.method, path, ex.status, ex.header, ex.body)
			continue
		}
		for _, ev := range parseSSE(t, ex.body) {
			switch ev.name {
			case "ping":
			case "error":
				spec.ValidateSchema(t, "ErrorResponse", ev.data)
			default:
				spec.ValidateSchema(t, "MessageStreamEvent", ev.data)
			}
		}
	}
	for _, r := range fake.Requests() {
		if r.Method != http.MethodPost {
			continue
		}
		path, body := r.Path, r.Body
		if strings.Contains(path, "/publishers/anthropic/models/") {
			path, body = vertexAsFirstParty(t, r)
		}
		spec.ValidateRequest(t, r.Method, path, r.Header, body)
	}
}

// vertexAsFirstParty turns a Vertex request into the first-party body it
// stands for (model back from the URL, anthropic_version dropped), so it can
// be checked against the spec's /v1/messages schema.
func vertexAsFirstParty(t *testing.T, r Request) (string, []byte) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("vertex body %s: %v", r.Body, err)
	}
	delete(m, "anthropic_version")
	path := "/v1/messages/count_tokens"
	if !strings.HasSuffix(r.Path, "count-tokens:rawPredict") {
		path = "/v1/messages"
		seg := r.Path[strings.LastIndex(r.Path, "/")+1:]
		m["model"] = seg[:strings.Index(seg, ":")]
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	name string
	data []byte
}

// parseSSE splits a transcript strictly: every event must be exactly
// "event: X\ndata: Y\n\n".
func parseSSE(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	var out []sseEvent
	for _, chunk := range strings.SplitAfter(string(body), "\n\n") {
		if chunk == "" {
			continue
		}
		lines := strings.Split(strings.TrimSuffix(chunk, "\n\n"), "\n")
		name, ok1 := strings.CutPrefix(lines[0], "event: ")
		if len(lines) != 2 || !ok1 || !strings.HasPrefix(lines[1], "data: ") || !strings.HasSuffix(chunk, "\n\n") {
			t.Errorf("malformed SSE event %q", chunk)
			continue
		}
		out = append(out, sseEvent{name: name, data: []byte(strings.TrimPrefix(lines[1], "data: "))})
	}
	return out
}
