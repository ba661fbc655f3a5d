package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/testutil/fakegemini"
)

func startFake(t *testing.T, o fakegemini.Options) (*fakegemini.Server, string) {
	t.Helper()
	fake := fakegemini.New(o)
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { fake.Close(); srv.Close() })
	return fake, srv.URL
}

func userRequest(text string, stream bool) *llm.Request {
	return &llm.Request{
		Model: "flash", UpstreamModel: "gemini-2.5-flash", Stream: stream,
		System:   []llm.Part{{Type: llm.PartText, Text: "Be brief."}},
		Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: text}}}},
	}
}

// do sends r through p to the fake and returns the raw answer.
func do(t *testing.T, p *Provider, r *llm.Request) *http.Response {
	t.Helper()
	req, err := p.NewChatRequest(context.Background(), r)
	if err != nil {
		t.Fatalf("NewChatRequest() = %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("Do() = %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// chat runs a non-streamed exchange.
func chat(t *testing.T, p *Provider, r *llm.Request) (*llm.Response, *apierr.Error) {
	t.Helper()
	resp := do(t, p, r)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, p.DecodeError(resp, body)
	}
	out, err := p.DecodeChat(resp, body)
	if err != nil {
		t.Fatalf("DecodeChat() = %v", err)
	}
	return out, nil
}

// streamText runs a streamed exchange and gathers it.
type streamed struct {
	text      strings.Builder
	calls     []llm.ToolCall
	usage     []llm.Usage
	stop      *llm.Event
	errEvent  *llm.Event
	end       error
	numEvents int
}

func stream(t *testing.T, p *Provider, r *llm.Request) *streamed {
	t.Helper()
	resp := do(t, p, r)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var s streamed
	dec := p.NewStreamDecoder(resp.Body)
	var cur *llm.ToolCall
	for {
		var ev llm.Event
		err := dec.Next(&ev)
		if err != nil {
			s.end = err
			return &s
		}
		s.numEvents++
		switch ev.Type {
		case llm.EventTextDelta:
			s.text.WriteString(ev.Text)
		case llm.EventBlockStart:
			if ev.Block == llm.PartToolCall {
				s.calls = append(s.calls, llm.ToolCall{ID: ev.ToolCallID, Name: ev.ToolName})
				cur = &s.calls[len(s.calls)-1]
			}
		case llm.EventToolArgsDelta:
			cur.Arguments += ev.Text
		case llm.EventUsage:
			s.usage = append(s.usage, ev.Usage)
		case llm.EventStop:
			e := ev
			s.stop = &e
		case llm.EventError:
			e := ev
			s.errEvent = &e
		}
	}
}

func TestFakeGeminiAPIKey(t *testing.T) {
	fake, base := startFake(t, fakegemini.Options{APIKey: "k-123", CachedTokens: 2})
	p, err := New(Options{Name: "gemini-fake", APIKey: "k-123", BaseURL: mustURL(t, base)})
	if err != nil {
		t.Fatal(err)
	}
	out, aerr := chat(t, p, userRequest("say hello now", false))
	if aerr != nil {
		t.Fatalf("chat error %v", aerr)
	}
	if got := textOf(out); got != fakegemini.DefaultContent {
		t.Errorf("text = %q, want %q", got, fakegemini.DefaultContent)
	}
	// Prompt: 3 + 2 words, plus 2 cached (included); 5 pieces out.
	want := llm.Usage{InputTokens: 7, OutputTokens: 5, CachedTokens: 2}
	if out.Usage != want || out.StopReason != llm.StopEndTurn {
		t.Errorf("usage, stop = %+v, %v; want %+v, end_turn", out.Usage, out.StopReason, want)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Backend != fakegemini.BackendGemini || r.Path != "/v1beta/models/gemini-2.5-flash:generateContent" {
		t.Errorf("request %s %s, want gemini /v1beta/models/gemini-2.5-flash:generateContent", r.Backend, r.Path)
	}
	if got := r.Header.Get("x-goog-api-key"); got != "k-123" {
		t.Errorf("x-goog-api-key = %q, want k-123", got)
	}
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q, want none on the Gemini API", got)
	}
	if r.RawQuery != "" {
		t.Errorf("query = %q, want none (the key travels in a header, not ?key=)", r.RawQuery)
	}
}

func TestFakeVertexBearerStream(t *testing.T) {
	fake, base := startFake(t, fakegemini.Options{VertexToken: "ya29.vertex", ThoughtsTokens: 4})
	p := newVertex(t, base, staticToken("ya29.vertex"))
	s := stream(t, p, userRequest("tell me something", true))
	if !errors.Is(s.end, io.EOF) {
		t.Fatalf("stream end = %v, want io.EOF", s.end)
	}
	if got := s.text.String(); got != fakegemini.DefaultContent {
		t.Errorf("text = %q, want %q", got, fakegemini.DefaultContent)
	}
	// Prompt 3 + 2 words; 5 pieces; 4 thoughts on the last chunk only.
	want := llm.Usage{InputTokens: 5, OutputTokens: 9, ReasoningTokens: 4}
	if len(s.usage) != 1 || s.usage[0] != want {
		t.Errorf("usage events = %+v, want one %+v", s.usage, want)
	}
	if s.stop == nil || s.stop.StopReason != llm.StopEndTurn {
		t.Errorf("stop = %+v, want end_turn", s.stop)
	}
	r := fake.Requests()[0]
	if r.Backend != fakegemini.BackendVertex || r.Project != "my-proj" || r.Location != "us-central1" || r.Model != "gemini-2.5-flash" {
		t.Errorf("request = %s %s/%s/%s, want vertex my-proj/us-central1/gemini-2.5-flash", r.Backend, r.Project, r.Location, r.Model)
	}
	if !strings.HasSuffix(r.Path, ":streamGenerateContent") || r.RawQuery != "alt=sse" {
		t.Errorf("path, query = %s, %s; want :streamGenerateContent, alt=sse", r.Path, r.RawQuery)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer ya29.vertex" {
		t.Errorf("Authorization = %q, want Bearer ya29.vertex", got)
	}
	if got := r.Header.Get("x-goog-api-key"); got != "" {
		t.Errorf("x-goog-api-key = %q, want none on Vertex", got)
	}
}

func TestFakeFunctionCall(t *testing.T) {
	fake, base := startFake(t, fakegemini.Options{})
	p := newGemini(t, base)
	args := `{"city": "Paris", "days": [1, 2]}`
	wantArgs := `{"city":"Paris","days":[1,2]}`
	fake.SetDefault(fakegemini.Behavior{FunctionCall: &fakegemini.FunctionCall{Name: "get_weather", Args: args}})
	r := userRequest("weather?", false)
	r.Tools = []llm.Tool{{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)}}

	out, aerr := chat(t, p, r)
	if aerr != nil {
		t.Fatal(aerr)
	}
	if len(out.Content) != 1 || out.Content[0].Type != llm.PartToolCall {
		t.Fatalf("content = %+v, want one tool call", out.Content)
	}
	tc := out.Content[0].ToolCall
	if tc.Name != "get_weather" || tc.Arguments != wantArgs || tc.ID != "call_0" {
		t.Errorf("tool call = %+v, want get_weather %s call_0", tc, wantArgs)
	}
	if out.StopReason != llm.StopToolUse {
		t.Errorf("stop = %v, want tool_use", out.StopReason)
	}

	r.Stream = true
	s := stream(t, p, r)
	if !errors.Is(s.end, io.EOF) {
		t.Fatalf("stream end = %v", s.end)
	}
	if len(s.calls) != 1 || s.calls[0] != (llm.ToolCall{ID: "call_0", Name: "get_weather", Arguments: wantArgs}) {
		t.Errorf("streamed calls = %+v, want get_weather %s", s.calls, wantArgs)
	}
	if s.stop == nil || s.stop.StopReason != llm.StopToolUse {
		t.Errorf("stop = %+v, want tool_use", s.stop)
	}

	// The answer goes back with the result; the fake validates the turns.
	r.Stream = false
	r.Messages = append(r.Messages,
		llm.Message{Role: llm.RoleAssistant, Content: out.Content},
		llm.Message{Role: llm.RoleTool, Content: []llm.Part{{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "call_0", Content: []llm.Part{{Type: llm.PartText, Text: "sunny"}}}}}})
	fake.SetDefault(fakegemini.Behavior{})
	if _, aerr := chat(t, p, r); aerr != nil {
		t.Fatalf("follow-up = %v", aerr)
	}
	reqs := fake.Requests()
	var sent struct {
		Contents []struct {
			Role  string `json:"role"`
			Parts []struct {
				FunctionResponse *struct {
					Name     string            `json:"name"`
					Response map[string]string `json:"response"`
				} `json:"functionResponse"`
			} `json:"parts"`
		} `json:"contents"`
	}
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &sent); err != nil {
		t.Fatal(err)
	}
	last := sent.Contents[len(sent.Contents)-1]
	if fr := last.Parts[0].FunctionResponse; last.Role != "user" || fr == nil || fr.Name != "get_weather" || fr.Response["output"] != "sunny" {
		t.Errorf("last turn = %+v, want user functionResponse get_weather {output: sunny}", last)
	}
}

func TestFakeErrors(t *testing.T) {
	fake, base := startFake(t, fakegemini.Options{APIKey: "good"})
	p, err := New(Options{Name: "gemini-fake", APIKey: "good", BaseURL: mustURL(t, base)})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("429 then retry", func(t *testing.T) {
		fake.Enqueue(fakegemini.Behavior{Status: http.StatusTooManyRequests})
		_, aerr := chat(t, p, userRequest("hi", false))
		if aerr == nil || aerr.Kind != apierr.RateLimited {
			t.Fatalf("error = %v, want rate_limited", aerr)
		}
		out, aerr := chat(t, p, userRequest("hi", false))
		if aerr != nil || textOf(out) != fakegemini.DefaultContent {
			t.Errorf("retry = %v, %v; want the answer", out, aerr)
		}
	})
	for _, tc := range []struct {
		status int
		want   apierr.Kind
	}{
		{http.StatusServiceUnavailable, apierr.UpstreamUnavailable},
		{http.StatusInternalServerError, apierr.UpstreamUnavailable},
		{http.StatusGatewayTimeout, apierr.UpstreamTimeout},
		{http.StatusNotFound, apierr.NotFound},
		{http.StatusBadRequest, apierr.BadRequest},
		{http.StatusForbidden, apierr.UpstreamUnavailable},
	} {
		fake.Enqueue(fakegemini.Behavior{Status: tc.status})
		if _, aerr := chat(t, p, userRequest("hi", false)); aerr == nil || aerr.Kind != tc.want {
			t.Errorf("status %d: error = %v, want %v", tc.status, aerr, tc.want)
		}
	}
	t.Run("wrong key", func(t *testing.T) {
		bad, err := New(Options{Name: "gemini-fake", APIKey: "bad", BaseURL: mustURL(t, base)})
		if err != nil {
			t.Fatal(err)
		}
		_, aerr := chat(t, bad, userRequest("hi", false))
		if aerr == nil || aerr.Kind != apierr.UpstreamUnavailable || strings.Contains(aerr.Message, "API key") {
			t.Errorf("error = %v, want upstream_unavailable with a generic message", aerr)
		}
	})
	t.Run("stream error chunk", func(t *testing.T) {
		fake.Enqueue(fakegemini.Behavior{StreamErrorAfter: 2, StreamErrorStatus: http.StatusTooManyRequests})
		s := stream(t, p, userRequest("hi", true))
		if s.errEvent == nil || apierr.From(s.errEvent.Err).Kind != apierr.RateLimited || !errors.Is(s.end, io.EOF) {
			t.Errorf("error event, end = %+v, %v; want rate_limited then io.EOF", s.errEvent, s.end)
		}
	})
	t.Run("cut stream", func(t *testing.T) {
		fake.Enqueue(fakegemini.Behavior{CutAfter: 2})
		s := stream(t, p, userRequest("hi", true))
		if s.end == nil || errors.Is(s.end, io.EOF) || s.stop != nil {
			t.Errorf("end = %v, stop = %+v; want a decoder error and no stop", s.end, s.stop)
		}
	})
}

func textOf(r *llm.Response) string {
	var b strings.Builder
	for _, p := range r.Content {
		if p.Type == llm.PartText {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}
