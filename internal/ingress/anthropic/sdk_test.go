package anthropic_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/multipolar/multipolar/internal/apierr"
	ingress "github.com/multipolar/multipolar/internal/ingress/anthropic"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/proxy"
	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

var (
	_ proxy.Ingress = ingress.Translator{}
	_ proxy.Schema  = ingress.Translator{}
)

// answer is the scripted canonical answer: text, one tool call, usage with
// cache reads and writes.
func answer(req *llm.Request) *llm.Response {
	return &llm.Response{
		ID:    "chatcmpl-1",
		Model: "upstream-model",
		Content: []llm.Part{
			{Type: llm.PartText, Text: "Echo: " + req.Messages[0].Content[0].Text},
			{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}},
		},
		StopReason: llm.StopToolUse,
		Usage:      llm.Usage{InputTokens: 120, OutputTokens: 9, CachedTokens: 100, CacheWriteTokens: 7},
	}
}

// events is answer as a canonical stream, OpenAI-style: usage only at the end.
func events(resp *llm.Response) []llm.Event {
	return []llm.Event{
		{Type: llm.EventStart, ID: resp.ID, Model: resp.Model},
		{Type: llm.EventBlockStart, Index: 0, Block: llm.PartText},
		{Type: llm.EventTextDelta, Index: 0, Text: resp.Content[0].Text[:3]},
		{Type: llm.EventTextDelta, Index: 0, Text: resp.Content[0].Text[3:]},
		{Type: llm.EventBlockStop, Index: 0},
		{Type: llm.EventBlockStart, Index: 1, Block: llm.PartToolCall, ToolCallID: "call_1", ToolName: "get_weather"},
		{Type: llm.EventToolArgsDelta, Index: 1, Text: `{"city":`},
		{Type: llm.EventToolArgsDelta, Index: 1, Text: `"Paris"}`},
		{Type: llm.EventBlockStop, Index: 1},
		{Type: llm.EventUsage, Usage: resp.Usage},
		{Type: llm.EventStop, StopReason: llm.StopToolUse},
	}
}

func server(t *testing.T) *httptest.Server {
	t.Helper()
	tr := ingress.Translator{}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := r.Header.Get("X-Fail-Status"); s != "" {
			st, _ := strconv.Atoi(s)
			tr.WriteError(w, errorFor(st))
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, err := ingress.DecodeMessages(body)
		if err != nil {
			tr.WriteError(w, apierr.From(err))
			return
		}
		resp := answer(req)
		if !req.Stream {
			out := tr.EncodeResponse(nil, req, resp)
			oapispec.Anthropic(t).ValidateResponse(t, "POST", "/v1/messages", 200, http.Header{"Content-Type": {"application/json"}}, out)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(out)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		enc := tr.NewStreamEncoder(req)
		var buf []byte
		for _, ev := range events(resp) {
			buf = enc.Encode(buf[:0], &ev)
			_, _ = w.Write(buf)
			w.(http.Flusher).Flush()
		}
	}))
}

func errorFor(status int) *apierr.Error {
	switch status {
	case 400:
		return apierr.New(apierr.BadRequest, "bad")
	case 401:
		return apierr.New(apierr.Unauthorized, "who")
	case 403:
		return apierr.New(apierr.Forbidden, "no")
	case 404:
		return apierr.New(apierr.NotFound, "where")
	case 413:
		return apierr.New(apierr.TooLarge, "big")
	case 429:
		return &apierr.Error{Kind: apierr.RateLimited, Message: "slow", RetryAfter: "1"}
	case 529:
		return apierr.New(apierr.UpstreamUnavailable, "busy").WithCode(ingress.CodeOverloaded)
	}
	return apierr.New(apierr.Internal, "oops")
}

func client(ts *httptest.Server, opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{
		option.WithBaseURL(ts.URL), option.WithAPIKey("k"), option.WithMaxRetries(0), option.WithHTTPClient(ts.Client()),
	}, opts...)...)
}

func params() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather",
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}}}}},
	}
}

func TestSDKNonStreamAndStreamAgree(t *testing.T) {
	ts := server(t)
	defer ts.Close()
	c := client(ts)
	plain, err := c.Messages.New(t.Context(), params())
	if err != nil {
		t.Fatalf("Messages.New: %v", err)
	}
	stream := c.Messages.NewStreaming(t.Context(), params())
	var acc anthropic.Message
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatalf("Accumulate: %v", err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	for name, m := range map[string]*anthropic.Message{"New": plain, "stream": &acc} {
		if len(m.Content) != 2 {
			t.Fatalf("%s: content = %s", name, m.RawJSON())
		}
		if got := m.Content[0].Text; got != "Echo: hello" {
			t.Errorf("%s: text = %q, want %q", name, got, "Echo: hello")
		}
		var in map[string]string
		if err := json.Unmarshal(m.Content[1].Input, &in); err != nil || in["city"] != "Paris" || m.Content[1].Name != "get_weather" || m.Content[1].ID != "call_1" {
			t.Errorf("%s: tool_use = %+v input %s (%v)", name, m.Content[1], m.Content[1].Input, err)
		}
		u := m.Usage
		if u.InputTokens != 13 || u.CacheReadInputTokens != 100 || u.CacheCreationInputTokens != 7 || u.OutputTokens != 9 {
			t.Errorf("%s: usage = in %d read %d write %d out %d, want 13 100 7 9", name, u.InputTokens, u.CacheReadInputTokens, u.CacheCreationInputTokens, u.OutputTokens)
		}
		if m.StopReason != anthropic.StopReasonToolUse || m.Model != "claude-sonnet-4-5" {
			t.Errorf("%s: stop_reason %q model %q", name, m.StopReason, m.Model)
		}
	}
}

func TestSDKErrors(t *testing.T) {
	ts := server(t)
	defer ts.Close()
	for _, status := range []int{400, 401, 403, 404, 413, 429, 500, 529} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			c := client(ts, option.WithHeader("X-Fail-Status", strconv.Itoa(status)))
			_, err := c.Messages.New(t.Context(), params())
			var ae *anthropic.Error
			if !errors.As(err, &ae) {
				t.Fatalf("Messages.New error = %v, want *anthropic.Error", err)
			}
			if ae.StatusCode != status {
				t.Errorf("StatusCode = %d, want %d", ae.StatusCode, status)
			}
		})
	}
}

func TestSDKMissingMaxTokens(t *testing.T) {
	ts := server(t)
	defer ts.Close()
	resp, err := ts.Client().Post(ts.URL+"/v1/messages", "application/json",
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !json.Valid(body) {
		t.Errorf("missing max_tokens = %d %s, want 400", resp.StatusCode, body)
	}
}
