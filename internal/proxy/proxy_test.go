package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// plainUpstream posts the raw body to base + "/chat/completions".
type plainUpstream struct{ name, base string }

func (u plainUpstream) Name() string { return u.name }
func (u plainUpstream) NewRequest(ctx context.Context, r *llm.RawRequest) (*http.Request, error) {
	return http.NewRequestWithContext(ctx, http.MethodPost, u.base+"/chat/completions", strings.NewReader(string(r.Body)))
}

type testSchema struct{}

func (testSchema) WriteError(w http.ResponseWriter, e *apierr.Error) {
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	w.WriteHeader(e.Kind.Status())
	_, _ = io.WriteString(w, "ERR "+e.Message)
}
func (testSchema) AppendStreamError(b []byte, e *apierr.Error) []byte {
	return append(b, "data: {\"error\":\"cut\"}\n\n"...)
}

func target(name, base string, idle time.Duration) Target {
	return Target{Name: name, Upstream: plainUpstream{name, base}, Transport: &http.Transport{ResponseHeaderTimeout: 200 * time.Millisecond}, StreamIdle: idle}
}

// testIngress is testSchema; the passthrough tests never translate.
type testIngress struct{ testSchema }

func (testIngress) EncodeResponse(dst []byte, _ *llm.Request, _ *llm.Response) []byte { return dst }
func (testIngress) NewStreamEncoder(*llm.Request) StreamEncoder                       { return nil }

func newCall(body string) *Call {
	return &Call{Raw: llm.RawRequest{Body: []byte(body), Model: "m"}, Ingress: testIngress{}}
}

func forward(t *testing.T, ctx context.Context, targets ...Target) (*httptest.ResponseRecorder, *Result) {
	t.Helper()
	rec := httptest.NewRecorder()
	res := &Result{}
	(&Engine{}).Forward(ctx, rec, newCall(`{"model":"m"}`), targets, res)
	return rec, res
}

func status(code int, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, `{"error":{"message":"upstream says `+http.StatusText(code)+`","type":"x","param":null,"code":null}}`)
	}
}

func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestFailover(t *testing.T) {
	ok := httptest.NewServer(status(200, ""))
	defer ok.Close()
	s500 := httptest.NewServer(status(500, ""))
	defer s500.Close()
	s429a := httptest.NewServer(status(429, "7"))
	defer s429a.Close()
	s429b := httptest.NewServer(status(429, "3"))
	defer s429b.Close()
	s400 := httptest.NewServer(status(400, ""))
	defer s400.Close()
	// Azure's front end answers some errors without OpenAI's "type".
	azure404 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`)
	}))
	defer azure404.Close()
	azure429 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "4")
		w.WriteHeader(429)
		_, _ = io.WriteString(w, `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded the rate limit."}}`)
	}))
	defer azure429.Close()
	s401 := httptest.NewServer(status(401, ""))
	defer s401.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets net/http notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer hang.Close()
	refused := closedURL(t)

	tests := []struct {
		name       string
		targets    []Target
		wantStatus int
		wantFrom   string
		outcomes   []Outcome
		retryAfter string
	}{
		{"first serves", []Target{target("a", ok.URL, 0), target("b", s500.URL, 0)}, 200, "a", []Outcome{Served}, ""},
		{"500 then ok", []Target{target("a", s500.URL, 0), target("b", ok.URL, 0)}, 200, "b", []Outcome{ServerError, Served}, ""},
		{"refused then ok", []Target{target("a", refused, 0), target("b", ok.URL, 0)}, 200, "b", []Outcome{ConnectError, Served}, ""},
		{"timeout then ok", []Target{target("a", hang.URL, 0), target("b", ok.URL, 0)}, 200, "b", []Outcome{Timeout, Served}, ""},
		{"upstream auth rejected then ok", []Target{target("a", s401.URL, 0), target("b", ok.URL, 0)}, 200, "b", []Outcome{AuthRejected, Served}, ""},
		{"400 passes through, no failover", []Target{target("a", s400.URL, 0), target("b", ok.URL, 0)}, 400, "a", []Outcome{Served}, ""},
		{"all 429: upstream 429 with smallest Retry-After", []Target{target("a", s429a.URL, 0), target("b", s429b.URL, 0)}, 429, "b", []Outcome{RateLimited, RateLimited}, "3"},
		{"error body not in the client's schema is re-rendered", []Target{target("a", azure404.URL, 0)}, 404, "a", []Outcome{Served}, ""},
		{"429 not in the client's schema: the gateway's 429", []Target{target("a", azure429.URL, 0)}, 429, "", []Outcome{RateLimited}, "4"},
		{"all timeouts: 504", []Target{target("a", hang.URL, 0), target("b", hang.URL, 0)}, 504, "", []Outcome{Timeout, Timeout}, ""},
		{"mixed failures: 502", []Target{target("a", s429a.URL, 0), target("b", s500.URL, 0), target("c", refused, 0)}, 502, "", []Outcome{RateLimited, ServerError, ConnectError}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, res := forward(t, context.Background(), tc.targets...)
			if rec.Code != tc.wantStatus || res.Status != tc.wantStatus {
				t.Fatalf("status = %d (result %d), want %d; body %s", rec.Code, res.Status, tc.wantStatus, rec.Body)
			}
			if res.Provider != tc.wantFrom {
				t.Errorf("provider = %q, want %q", res.Provider, tc.wantFrom)
			}
			var got []Outcome
			for _, a := range res.Attempts {
				got = append(got, a.Outcome)
			}
			if !equalOutcomes(got, tc.outcomes) {
				t.Errorf("outcomes = %v, want %v", got, tc.outcomes)
			}
			if ra := rec.Header().Get("Retry-After"); ra != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", ra, tc.retryAfter)
			}
			if tc.wantStatus == 404 && !strings.HasPrefix(rec.Body.String(), "ERR ") {
				t.Errorf("404 body %q was passed through; want it re-rendered in the client's schema", rec.Body)
			}
			if tc.wantStatus == 502 && !strings.Contains(rec.Body.String(), "a: HTTP 429; b: HTTP 500; c: connection failed") {
				t.Errorf("502 body %q does not name each attempt", rec.Body)
			}
			if tc.wantStatus == 200 && rec.Header().Get("X-Multipolar-Provider") != tc.wantFrom {
				t.Errorf("X-Multipolar-Provider = %q, want %q", rec.Header().Get("X-Multipolar-Provider"), tc.wantFrom)
			}
		})
	}
}

func equalOutcomes(a, b []Outcome) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		h    http.Header
		want string
	}{
		{http.Header{"Retry-After": {"12"}}, "12"},
		{http.Header{"Retry-After-Ms": {"1500"}}, "2"},
		{http.Header{"Retry-After-Ms": {"20"}}, "1"},
		{http.Header{"Retry-After": {time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}}, "90"},
		{http.Header{}, ""},
		{http.Header{"Retry-After": {"soon"}}, ""},
	}
	for _, tc := range tests {
		got := retryAfter(tc.h)
		if got != tc.want && !(tc.want == "90" && (got == "89" || got == "91")) {
			t.Errorf("retryAfter(%v) = %q, want %q", tc.h, got, tc.want)
		}
	}
}

// flushRecorder records each flush with the bytes written so far.
type flushRecorder struct {
	*httptest.ResponseRecorder
	flushes []string
}

func (f *flushRecorder) Flush() { f.flushes = append(f.flushes, f.Body.String()) }

// TestStreamEventsFlushedWhole feeds an SSE body in pieces that split events
// mid-line and checks each flush ends on an event boundary.
func TestStreamEventsFlushedWhole(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		for _, piece := range []string{"data: {\"a\":", "1}\n\ndata: {\"a\":2}\n", "\ndata: [DO", "NE]\n\n"} {
			_, _ = pw.Write([]byte(piece))
			time.Sleep(time.Millisecond)
		}
		pw.Close()
	}()
	rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
	res := &Result{}
	err := (&Engine{}).copyStream(rec, pr, time.Second, APIOpenAI, testSchema{}, nil, res)
	if err != nil {
		t.Fatalf("copyStream: %v", err)
	}
	for _, f := range rec.flushes {
		if f != "" && !strings.HasSuffix(f, "\n\n") {
			t.Errorf("flushed a partial event: %q", f)
		}
	}
	if want := "data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n"; rec.Body.String() != want {
		t.Errorf("body = %q, want %q", rec.Body.String(), want)
	}
}

func TestStreamCutEndsWithErrorEvent(t *testing.T) {
	body := io.NopCloser(io.MultiReader(strings.NewReader("data: {\"a\":1}\n\ndata: {\"half"), errReader{}))
	rec := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
	res := &Result{}
	err := (&Engine{}).copyStream(rec, body, time.Second, APIOpenAI, testSchema{}, nil, res)
	if err == nil {
		t.Fatal("copyStream returned nil for a cut stream")
	}
	if want := "data: {\"a\":1}\n\ndata: {\"error\":\"cut\"}\n\n"; rec.Body.String() != want {
		t.Errorf("body = %q, want %q (the half event dropped, an error event added)", rec.Body.String(), want)
	}
	if res.Err == nil || res.Err.Kind != apierr.UpstreamUnavailable {
		t.Errorf("res.Err = %v, want upstream_unavailable", res.Err)
	}
}

func TestStreamEOFWithoutDoneIsCut(t *testing.T) {
	body := io.NopCloser(strings.NewReader("data: {\"a\":1}\n\n"))
	rec := httptest.NewRecorder()
	res := &Result{}
	if err := (&Engine{}).copyStream(rec, body, time.Second, APIOpenAI, testSchema{}, nil, res); err == nil {
		t.Fatal("a stream that ends without [DONE] was taken as complete")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestStreamIdleTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"a\":1}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // stall
	}))
	defer up.Close()
	rec, res := forward(t, context.Background(), target("a", up.URL, 50*time.Millisecond))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "cut") {
		t.Fatalf("status %d body %q: want 200 and an error event", rec.Code, rec.Body)
	}
	if res.Err == nil || res.Err.Kind != apierr.UpstreamTimeout {
		t.Errorf("res.Err = %v, want upstream_timeout", res.Err)
	}
}

func TestClientCancelReachesUpstream(t *testing.T) {
	var canceled atomic.Bool
	started := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {}\n\n")
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
		canceled.Store(true)
	}))
	defer up.Close()
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(&Engine{}).Forward(r.Context(), w, newCall(`{}`), []Target{target("a", up.URL, time.Minute)}, &Result{})
	}))
	defer gw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "data: {}\n" {
		t.Fatalf("first line %q", line)
	}
	<-started
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !canceled.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !canceled.Load() {
		t.Fatal("the upstream request was not canceled after the client went away")
	}
}

// dropMeter drops events holding "drop" and remembers what it saw.
type dropMeter struct {
	events []string
	body   string
}

func (m *dropMeter) Event(ev []byte) []byte {
	m.events = append(m.events, string(ev))
	if strings.Contains(string(ev), "drop") {
		return nil
	}
	return ev
}
func (m *dropMeter) Body(tail []byte) { m.body = string(tail) }
func (m *dropMeter) Usage() (llm.Usage, bool) {
	return llm.Usage{OutputTokens: int64(len(m.events))}, true
}

func TestStreamMeterSeesEachEventAndMayDropIt(t *testing.T) {
	body := io.NopCloser(strings.NewReader("data: 1\n\ndata: drop\n\ndata: 2\r\n\r\ndata: [DONE]\n\n"))
	rec := httptest.NewRecorder()
	m := &dropMeter{}
	if err := (&Engine{}).copyStream(rec, body, time.Second, APIOpenAI, testSchema{}, m, &Result{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"data: 1\n\n", "data: drop\n\n", "data: 2\r\n\r\n", "data: [DONE]\n\n"}; strings.Join(m.events, "|") != strings.Join(want, "|") {
		t.Errorf("meter saw %q, want %q", m.events, want)
	}
	if want := "data: 1\n\ndata: 2\r\n\r\ndata: [DONE]\n\n"; rec.Body.String() != want {
		t.Errorf("client got %q, want %q", rec.Body.String(), want)
	}
}

func TestBodyMeterGetsTheTail(t *testing.T) {
	big := strings.Repeat("x", meterTail+1000) + `"usage":{"n":1}}`
	rec := httptest.NewRecorder()
	m := &dropMeter{}
	// A reader that returns small pieces, so the tail spans reads.
	r := io.NopCloser(&pieceReader{s: big, n: 777})
	if err := copyBody(rec, r, -1, 0, m, &Result{}); err != nil {
		t.Fatal(err)
	}
	if rec.Body.String() != big {
		t.Fatal("client body differs from upstream body")
	}
	if len(m.body) != meterTail || !strings.HasSuffix(m.body, `"usage":{"n":1}}`) {
		t.Errorf("meter tail: %d bytes ending %q; want %d bytes ending with the usage", len(m.body), m.body[len(m.body)-20:], meterTail)
	}
}

type pieceReader struct {
	s string
	n int
}

func (p *pieceReader) Read(b []byte) (int, error) {
	if p.s == "" {
		return 0, io.EOF
	}
	k := min(p.n, len(b), len(p.s))
	copy(b, p.s[:k])
	p.s = p.s[k:]
	return k, nil
}

// flaky answers 429 (Retry-After: 2) to its first n requests, then 200.
func flaky(n int) http.HandlerFunc {
	var calls atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		if int(calls.Add(1)) <= n {
			status(429, "2")(w, r)
			return
		}
		status(200, "")(w, r)
	}
}

func TestRetryRounds(t *testing.T) {
	up := httptest.NewServer(flaky(2))
	defer up.Close()
	var waits []time.Duration
	call := newCall(`{}`)
	call.Retry = Retry{Rounds: 2, Backoff: func(n int, ra time.Duration) time.Duration {
		waits = append(waits, ra)
		return time.Millisecond
	}}
	rec := httptest.NewRecorder()
	res := &Result{}
	(&Engine{}).Forward(context.Background(), rec, call, []Target{target("a", up.URL, 0)}, res)
	if rec.Code != 200 || len(res.Attempts) != 3 {
		t.Fatalf("status %d after %d attempts; want 200 after 3", rec.Code, len(res.Attempts))
	}
	if len(waits) != 2 || waits[0] != 2*time.Second {
		t.Errorf("backoff asked with retry-after %v; want two waits honouring Retry-After 2s", waits)
	}
	if got := rec.Header().Get("X-Multipolar-Route"); got != "a=rate_limited(429);a=rate_limited(429);a=served" {
		t.Errorf("x-multipolar-route = %q", got)
	}
}

func TestRetryStopsAtDeadline(t *testing.T) {
	up := httptest.NewServer(flaky(100))
	defer up.Close()
	call := newCall(`{}`)
	call.Retry = Retry{Rounds: 5, Backoff: func(int, time.Duration) time.Duration { return time.Hour }}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	res := &Result{}
	start := time.Now()
	(&Engine{}).Forward(ctx, rec, call, []Target{target("a", up.URL, 0)}, res)
	if rec.Code != 429 || len(res.Attempts) != 1 || time.Since(start) > 2*time.Second {
		t.Errorf("status %d, %d attempts, %v: a wait longer than the deadline must not be taken", rec.Code, len(res.Attempts), time.Since(start))
	}
}

func TestNoRetryWhenNotRetryable(t *testing.T) {
	up := httptest.NewServer(status(401, ""))
	defer up.Close()
	calls := 0
	call := newCall(`{}`)
	call.Retry = Retry{Rounds: 3, Backoff: func(int, time.Duration) time.Duration { calls++; return 0 }}
	rec := httptest.NewRecorder()
	(&Engine{}).Forward(context.Background(), rec, call, []Target{target("a", up.URL, 0)}, &Result{})
	if calls != 0 {
		t.Errorf("a round of credential refusals was retried %d times", calls)
	}
}

// testGate refuses the targets named in refuse and records what ended.
type testGate struct {
	refuse map[string]string
	ended  []string
}

func (g *testGate) Begin(_ context.Context, _ int, t *Target) string { return g.refuse[t.Name] }
func (g *testGate) End(_ int, t *Target, a *Attempt) {
	g.ended = append(g.ended, t.Name+"="+a.Outcome.String())
}

func TestGate(t *testing.T) {
	ok := httptest.NewServer(status(200, ""))
	defer ok.Close()
	bad := httptest.NewServer(status(500, ""))
	defer bad.Close()
	g := &testGate{refuse: map[string]string{"holder": "capacity_exhausted"}}
	call := newCall(`{}`)
	call.Gate = g
	call.RouteHeader = []byte("holder=candidate(first_refusal:deal)")
	rec := httptest.NewRecorder()
	res := &Result{}
	(&Engine{}).Forward(context.Background(), rec, call, []Target{target("holder", ok.URL, 0), target("b", bad.URL, 0), target("c", ok.URL, 0)}, res)
	if res.Provider != "c" {
		t.Fatalf("served by %q, want c", res.Provider)
	}
	if got, want := strings.Join(g.ended, ","), "b=server_error,c=served"; got != want {
		t.Errorf("gate ended %q, want %q (a refused target is never begun)", got, want)
	}
	if got, want := rec.Header().Get("X-Multipolar-Route"), "holder=candidate(first_refusal:deal);holder=refused:capacity_exhausted;b=server_error(500);c=served"; got != want {
		t.Errorf("x-multipolar-route = %q, want %q", got, want)
	}
}

func TestStreamEndsByAPI(t *testing.T) {
	tests := []struct {
		name, body string
		api        API
		wantErr    bool
		wantCut    bool
	}{
		{"openai done", "data: {}\n\ndata: [DONE]\n\n", APIOpenAI, false, false},
		{"anthropic message_stop", "event: message_start\ndata: {}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", APIAnthropic, false, false},
		{"anthropic without message_stop is cut", "event: message_start\ndata: {}\n\n", APIAnthropic, true, true},
		{"anthropic error event ends it", "event: message_start\ndata: {}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}\n\n", APIAnthropic, false, false},
		{"openai error object ends it", "data: {}\n\ndata: {\"error\":{\"message\":\"x\",\"type\":\"server_error\"}}\n\n", APIOpenAI, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			res := &Result{}
			err := (&Engine{}).copyStream(rec, io.NopCloser(strings.NewReader(tc.body)), time.Second, tc.api, testSchema{}, nil, res)
			if (err != nil) != tc.wantErr {
				t.Errorf("copyStream error = %v, want error %v", err, tc.wantErr)
			}
			if cut := strings.Contains(rec.Body.String(), `"error":"cut"`); cut != tc.wantCut {
				t.Errorf("gateway's own cut event present = %v, want %v; body %q", cut, tc.wantCut, rec.Body.String())
			}
		})
	}
}
