package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/testutil/goldenfile"

	"golang.org/x/oauth2"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// chatProvider mirrors proxy.ChatProvider, which this package may not
// import; the guard keeps the method set in step.
type chatProvider interface {
	Name() string
	NewChatRequest(ctx context.Context, r *llm.Request) (*http.Request, error)
	DecodeChat(resp *http.Response, body []byte) (*llm.Response, error)
	NewStreamDecoder(body io.Reader) StreamDecoder
	DecodeError(resp *http.Response, body []byte) *apierr.Error
}

var _ chatProvider = (*Provider)(nil)

const testKey = "test-api-key"

func newGemini(t testing.TB, base string) *Provider {
	t.Helper()
	o := Options{Name: "gemini-test", APIKey: testKey, Headers: map[string]string{"x-extra": "1"}}
	if base != "" {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		o.BaseURL = u
	}
	p, err := New(o)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return p
}

func newVertex(t testing.TB, base string, ts oauth2.TokenSource) *Provider {
	t.Helper()
	if ts == nil {
		ts = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "ya29.test-token"})
	}
	o := Options{Name: "vertex-test", Vertex: true, Project: "my-proj", Region: "us-central1", TokenSource: ts}
	if base != "" {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		o.BaseURL = u
	}
	p, err := New(o)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return p
}

// goldenCases returns the case names of testdata/dir/*.in.ext.
func goldenCases(t *testing.T, dir, ext string) []string {
	return goldenfile.Cases(t, dir+"/*", ".in."+ext)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGolden compares the indented JSON of v with path, or rewrites path
// under -update.
func checkGolden(t *testing.T, path string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	goldenfile.Check(t, path, got)
}

// wireRequest is what a golden file records of an upstream request.
type wireRequest struct {
	Method string            `json:"method"`
	URL    string            `json:"url"`
	Header map[string]string `json:"header"`
	Body   json.RawMessage   `json:"body"`
}

func captureRequest(t *testing.T, p *Provider, r *llm.Request) wireRequest {
	t.Helper()
	req, err := p.NewChatRequest(context.Background(), r)
	if err != nil {
		t.Fatalf("NewChatRequest() = %v", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if req.ContentLength != int64(len(body)) {
		t.Errorf("ContentLength = %d, want %d", req.ContentLength, len(body))
	}
	if !json.Valid(body) {
		t.Fatalf("body is not JSON: %s", body)
	}
	h := make(map[string]string)
	for k, v := range req.Header {
		h[k] = strings.Join(v, ", ")
	}
	return wireRequest{Method: req.Method, URL: req.URL.String(), Header: h, Body: body}
}

// TestRequestGolden encodes testdata/request/*.in.json (an llm.Request) for
// the Gemini API and for Vertex AI.
func TestRequestGolden(t *testing.T) {
	g, v := newGemini(t, ""), newVertex(t, "", nil)
	for _, name := range goldenCases(t, "request", "json") {
		t.Run(name, func(t *testing.T) {
			var r llm.Request
			if err := json.Unmarshal(readFile(t, filepath.Join("testdata", "request", name+".in.json")), &r); err != nil {
				t.Fatal(err)
			}
			got := map[string]wireRequest{"gemini": captureRequest(t, g, &r), "vertex": captureRequest(t, v, &r)}
			checkGolden(t, filepath.Join("testdata", "request", name+".want.json"), got)
		})
	}
}

// TestResponseGolden decodes testdata/response/*.in.json.
func TestResponseGolden(t *testing.T) {
	p := newGemini(t, "")
	for _, name := range goldenCases(t, "response", "json") {
		t.Run(name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "response", name+".in.json"))
			resp, err := p.DecodeChat(&http.Response{StatusCode: 200}, body)
			if err != nil {
				t.Fatalf("DecodeChat() = %v", err)
			}
			checkGolden(t, filepath.Join("testdata", "response", name+".want.json"), resp)
		})
	}
}

// goldenEvent is an llm.Event with only its meaningful fields.
type goldenEvent struct {
	Type       string     `json:"type"`
	Index      *int       `json:"index,omitempty"`
	Block      string     `json:"block,omitempty"`
	Text       string     `json:"text,omitempty"`
	ID         string     `json:"id,omitempty"`
	Model      string     `json:"model,omitempty"`
	ToolCallID string     `json:"toolCallId,omitempty"`
	ToolName   string     `json:"toolName,omitempty"`
	Signature  string     `json:"signature,omitempty"`
	Usage      *llm.Usage `json:"usage,omitempty"`
	StopReason string     `json:"stopReason,omitempty"`
	Err        *goldenErr `json:"err,omitempty"`
}

type goldenErr struct {
	Kind       string `json:"kind"`
	Message    string `json:"message"`
	RetryAfter string `json:"retryAfter,omitempty"`
}

var (
	eventNames = [...]string{"start", "block_start", "text_delta", "tool_args_delta", "block_stop", "usage", "stop", "error"}
	blockNames = [...]string{llm.PartText: "text", llm.PartThinking: "thinking", llm.PartToolCall: "tool_call"}
	stopNames  = [...]string{"unknown", "end_turn", "max_tokens", "tool_use", "stop_sequence", "content_filter"}
)

func toGolden(ev *llm.Event) goldenEvent {
	g := goldenEvent{Type: eventNames[ev.Type], Text: ev.Text, ID: ev.ID, Model: ev.Model,
		ToolCallID: ev.ToolCallID, ToolName: ev.ToolName, Signature: ev.Signature}
	switch ev.Type {
	case llm.EventBlockStart, llm.EventTextDelta, llm.EventToolArgsDelta, llm.EventBlockStop:
		i := ev.Index
		g.Index = &i
	}
	if ev.Type == llm.EventBlockStart {
		g.Block = blockNames[ev.Block]
	}
	if ev.Type == llm.EventUsage || ev.Type == llm.EventStop {
		u := ev.Usage
		g.Usage = &u
	}
	if ev.Type == llm.EventStop {
		g.StopReason = stopNames[ev.StopReason]
	}
	if ev.Err != nil {
		ae := apierr.From(ev.Err)
		g.Err = &goldenErr{Kind: ae.Kind.String(), Message: ae.Message, RetryAfter: ae.RetryAfter}
	}
	return g
}

// streamResult is the golden record of one decoded stream.
type streamResult struct {
	Events []goldenEvent `json:"events"`
	// End is "EOF" or the error Next returned.
	End string `json:"end"`
}

func decodeAll(dec StreamDecoder) ([]llm.Event, error) {
	var evs []llm.Event
	for {
		var ev llm.Event
		err := dec.Next(&ev)
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
		if len(evs) > 10000 {
			return evs, errors.New("runaway decoder")
		}
	}
}

// TestStreamGolden decodes testdata/stream/*.in.sse.
func TestStreamGolden(t *testing.T) {
	p := newGemini(t, "")
	for _, name := range goldenCases(t, "stream", "sse") {
		t.Run(name, func(t *testing.T) {
			body := readFile(t, filepath.Join("testdata", "stream", name+".in.sse"))
			evs, err := decodeAll(p.NewStreamDecoder(bytes.NewReader(body)))
			res := streamResult{End: "EOF"}
			if !errors.Is(err, io.EOF) {
				res.End = err.Error()
			}
			for i := range evs {
				res.Events = append(res.Events, toGolden(&evs[i]))
			}
			checkGolden(t, filepath.Join("testdata", "stream", name+".want.json"), res)
		})
	}
}

// TestStreamUsageIsLastNotSum checks the one rule golden files could hide:
// usageMetadata is cumulative, so the final EventUsage equals the last
// chunk's counts, never their sum.
func TestStreamUsageIsLastNotSum(t *testing.T) {
	p := newGemini(t, "")
	body := readFile(t, filepath.Join("testdata", "stream", "text_cumulative.in.sse"))
	evs, err := decodeAll(p.NewStreamDecoder(bytes.NewReader(body)))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Next() = %v, want io.EOF", err)
	}
	var usages []llm.Usage
	for _, ev := range evs {
		if ev.Type == llm.EventUsage {
			usages = append(usages, ev.Usage)
		}
	}
	// Last chunk: prompt 7 (4 cached), candidates 3, thoughts 5.
	want := llm.Usage{InputTokens: 7, OutputTokens: 8, CachedTokens: 4, ReasoningTokens: 5}
	if len(usages) != 1 || usages[0] != want {
		t.Errorf("EventUsage = %+v, want exactly one %+v (the last usageMetadata; the sum would be input 21)", usages, want)
	}
	if last := evs[len(evs)-1]; last.Type != llm.EventStop || last.StopReason != llm.StopEndTurn {
		t.Errorf("last event = %+v, want EventStop end_turn", last)
	}
	if evs[len(evs)-2].Type != llm.EventUsage {
		t.Errorf("event before Stop = %v, want EventUsage", evs[len(evs)-2].Type)
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func staticToken(tok string) oauth2.TokenSource {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})
}
