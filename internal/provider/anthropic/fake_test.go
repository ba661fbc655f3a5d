package anthropic

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/testutil/fakeanthropic"
)

func startFake(t *testing.T, opts fakeanthropic.Options) (*fakeanthropic.Server, *httptest.Server) {
	t.Helper()
	fake := fakeanthropic.New(opts)
	ts := httptest.NewServer(fake)
	t.Cleanup(func() { fake.Close(); ts.Close() })
	return fake, ts
}

func chatRequest(stream bool) *llm.Request {
	return &llm.Request{
		Model: "gpt-4o", UpstreamModel: "claude-sonnet-4-5", Stream: stream,
		System:   []llm.Part{{Type: llm.PartText, Text: "Be brief."}},
		Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "Weather in Paris?"}}}},
		Tools:    []llm.Tool{{Name: "get_weather", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}}}`)}},
	}
}

// collect drains a stream into text, tool calls and the final usage.
// Event strings alias the decoder's buffer: they are copied through a
// strings.Builder (text += ev.Text would keep the alias when text is empty).
func collect(t *testing.T, d StreamDecoder) (text, args string, calls []string, stop llm.StopReason, u llm.Usage) {
	t.Helper()
	var ev llm.Event
	var tb, ab strings.Builder
	for {
		err := d.Next(&ev)
		if errors.Is(err, io.EOF) {
			return tb.String(), ab.String(), calls, stop, u
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		switch ev.Type {
		case llm.EventTextDelta:
			tb.WriteString(ev.Text)
		case llm.EventToolArgsDelta:
			ab.WriteString(ev.Text)
		case llm.EventBlockStart:
			if ev.Block == llm.PartToolCall {
				calls = append(calls, strings.Clone(ev.ToolName))
			}
		case llm.EventUsage:
			u = ev.Usage
		case llm.EventStop:
			stop = ev.StopReason
		case llm.EventError:
			t.Fatalf("stream error: %v", ev.Err)
		}
	}
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

func TestFakeChat(t *testing.T) {
	fake, ts := startFake(t, fakeanthropic.Options{APIKey: "sk-ant-test", CacheReadTokens: 30, CacheCreationTokens: 4})
	p := newFirstParty(t, ts.URL)
	fake.Enqueue(
		fakeanthropic.Behavior{Content: "Sunny in Paris"},
		fakeanthropic.Behavior{ToolCall: &fakeanthropic.ToolCall{Name: "get_weather", Input: json.RawMessage(`{"city":"Paris"}`)}},
	)
	for i, wantTool := range []bool{false, true} {
		req, err := p.NewChatRequest(t.Context(), chatRequest(false))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		got, err := p.DecodeChat(resp, body)
		if err != nil {
			t.Fatal(err)
		}
		if got.Usage.CachedTokens != 30 || got.Usage.CacheWriteTokens != 4 || got.Usage.InputTokens <= 34 || got.Usage.OutputTokens == 0 {
			t.Errorf("call %d usage = %+v", i, got.Usage)
		}
		if wantTool {
			if got.StopReason != llm.StopToolUse || got.Content[0].ToolCall == nil || got.Content[0].ToolCall.Arguments != `{"city":"Paris"}` {
				t.Errorf("tool answer = %+v", got)
			}
		} else if got.Content[0].Text != "Sunny in Paris" || got.StopReason != llm.StopEndTurn {
			t.Errorf("text answer = %+v", got)
		}
	}
	r := fake.Requests()[0]
	if r.Path != "/v1/messages" || r.Header.Get("x-api-key") != "sk-ant-test" || r.Header.Get("anthropic-version") != DefaultVersion {
		t.Errorf("request = %s %v", r.Path, r.Header)
	}
}

func TestFakeStream(t *testing.T) {
	fake, ts := startFake(t, fakeanthropic.Options{CacheReadTokens: 30, CacheCreationTokens: 4, Chunks: 3})
	p := newFirstParty(t, ts.URL)
	fake.Enqueue(
		fakeanthropic.Behavior{Content: "Sunny in Paris today"},
		fakeanthropic.Behavior{Content: "Let me look.", ToolCall: &fakeanthropic.ToolCall{Name: "get_weather", Input: json.RawMessage(`{"city":"Paris"}`)}},
	)
	req, _ := p.NewChatRequest(t.Context(), chatRequest(true))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, _, _, stop, u := collect(t, p.NewStreamDecoder(resp.Body))
	resp.Body.Close()
	if text != "Sunny in Paris today" || stop != llm.StopEndTurn || u.OutputTokens != 3 || u.CachedTokens != 30 || u.CacheWriteTokens != 4 {
		t.Errorf("stream = %q %v %+v", text, stop, u)
	}
	req, _ = p.NewChatRequest(t.Context(), chatRequest(true))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, args, calls, stop, u := collect(t, p.NewStreamDecoder(resp.Body))
	resp.Body.Close()
	if text != "Let me look." || args != `{"city":"Paris"}` || len(calls) != 1 || stop != llm.StopToolUse || u.OutputTokens != 6 {
		t.Errorf("tool stream = %q %q %v %v %+v", text, args, calls, stop, u)
	}
	if got := fake.Requests()[0].Header.Get("Accept"); got != "text/event-stream" {
		t.Errorf("Accept = %q", got)
	}
}

func TestFakeStreamError(t *testing.T) {
	fake, ts := startFake(t, fakeanthropic.Options{})
	p := newFirstParty(t, ts.URL)
	fake.Enqueue(fakeanthropic.Behavior{StreamErrorAfter: 2})
	req, _ := p.NewChatRequest(t.Context(), chatRequest(true))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	d := p.NewStreamDecoder(resp.Body)
	var ev llm.Event
	for {
		if err := d.Next(&ev); err != nil {
			t.Fatalf("Next = %v before the error event", err)
		}
		if ev.Type == llm.EventError {
			break
		}
	}
	var ae *apierr.Error
	if !errors.As(ev.Err, &ae) || ae.Kind != apierr.UpstreamUnavailable || ae.Code != CodeOverloaded {
		t.Errorf("error event = %v", ev.Err)
	}
	if err := d.Next(&ev); !errors.Is(err, io.EOF) {
		t.Errorf("Next after error = %v, want io.EOF", err)
	}
}

func TestFakeVertex(t *testing.T) {
	fake, ts := startFake(t, fakeanthropic.Options{VertexToken: "ya29.token", CacheReadTokens: 2})
	p := newVertex(t, ts.URL)
	for _, stream := range []bool{false, true} {
		req, err := p.NewChatRequest(t.Context(), chatRequest(stream))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			body, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if stream {
			text, _, _, _, u := collect(t, p.NewStreamDecoder(resp.Body))
			if text != fakeanthropic.DefaultContent || u.CachedTokens != 2 {
				t.Errorf("vertex stream = %q %+v", text, u)
			}
		} else {
			body, _ := io.ReadAll(resp.Body)
			got, err := p.DecodeChat(resp, body)
			if err != nil || got.Content[0].Text != fakeanthropic.DefaultContent {
				t.Errorf("vertex answer = %+v, %v", got, err)
			}
		}
		resp.Body.Close()
	}
	base := "/v1/projects/proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5"
	for i, r := range fake.Requests() {
		want := base + []string{":rawPredict", ":streamRawPredict"}[i]
		if r.Path != want || r.Header.Get("Authorization") != "Bearer ya29.token" || r.Header.Get("x-api-key") != "" {
			t.Errorf("request %d = %s %v, want %s with bearer", i, r.Path, r.Header, want)
		}
	}
	var ae *apierr.Error
	if _, err := p.CountTokens(t.Context(), chatRequest(false)); !errors.As(err, &ae) || ae.Kind != apierr.BadRequest {
		t.Errorf("CountTokens on Vertex = %v, want a BadRequest the engine passes over", err)
	}
}

func TestFakeCountTokens(t *testing.T) {
	_, ts := startFake(t, fakeanthropic.Options{})
	p := newFirstParty(t, ts.URL)
	r := chatRequest(false)
	r.MaxTokens, r.Temperature = 100, new(float64)
	req, err := p.CountTokens(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("count_tokens %d: %s", resp.StatusCode, body)
	}
	n, err := DecodeCountTokens(body)
	if err != nil || n <= 0 {
		t.Errorf("DecodeCountTokens(%s) = %d, %v", body, n, err)
	}
}

func TestFakeErrors(t *testing.T) {
	fake, ts := startFake(t, fakeanthropic.Options{})
	p := newFirstParty(t, ts.URL)
	tests := []struct {
		status int
		kind   apierr.Kind
		code   string
		retry  string
	}{
		{400, apierr.BadRequest, "", ""},
		{401, apierr.UpstreamUnavailable, "", ""},
		{403, apierr.UpstreamUnavailable, "", ""},
		{404, apierr.NotFound, "", ""},
		{413, apierr.TooLarge, "", ""},
		{429, apierr.RateLimited, "", "7"},
		{500, apierr.UpstreamUnavailable, "", ""},
		{504, apierr.UpstreamTimeout, "", ""},
		{529, apierr.UpstreamUnavailable, CodeOverloaded, ""},
	}
	for _, tc := range tests {
		fake.Enqueue(fakeanthropic.Behavior{Status: tc.status, RetryAfter: tc.retry})
		req, _ := p.NewChatRequest(t.Context(), chatRequest(false))
		resp, body := do(t, req)
		e := p.DecodeError(resp, body)
		if e.Kind != tc.kind || e.Code != tc.code || e.RetryAfter != tc.retry {
			t.Errorf("DecodeError(%d %s) = %v code %q retry %q, want %v %q %q", tc.status, body, e, e.Code, e.RetryAfter, tc.kind, tc.code, tc.retry)
		}
		if (tc.status == 401 || tc.status == 403) && e.Message != `provider "claude" rejected the gateway's credentials` {
			t.Errorf("auth error message = %q", e.Message)
		}
		if tc.status == 400 && (len(e.Message) < 8 || e.Message[:8] != "claude: ") {
			t.Errorf("400 message = %q, want the provider prefix", e.Message)
		}
	}
}
