package openai

import (
	"net/url"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/llm"
)

const usageChunk = `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":2}}}` + "\n\n"

func streamEvents(withUsageNull bool) []string {
	u := ""
	if withUsageNull {
		u = `,"usage":null`
	}
	return []string{
		`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]` + u + "}\n\n",
		`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]` + u + "}\n\n",
		`data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]` + u + "}\n\n",
	}
}

func newTestProvider(t *testing.T) *Provider {
	t.Helper()
	p, err := New(Options{Name: "p", BaseURL: mustParse(t, "http://up/v1")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMeterInjectedUsageIsKeptFromTheClient(t *testing.T) {
	p := newTestProvider(t)
	m := p.Meter(&llm.RawRequest{Op: llm.OpChat, Stream: true, Body: []byte(`{"model":"m","stream":true}`)})
	var out strings.Builder
	for _, ev := range append(streamEvents(true), usageChunk, "data: [DONE]\n\n") {
		out.Write(m.Event([]byte(ev)))
	}
	want := strings.Join(append(streamEvents(false), "data: [DONE]\n\n"), "")
	if out.String() != want {
		t.Errorf("client stream:\n%s\nwant exactly the stream it asked for:\n%s", out.String(), want)
	}
	u, reported := m.Usage()
	if !reported || u != (llm.Usage{InputTokens: 12, OutputTokens: 5, CachedTokens: 8, ReasoningTokens: 2}) {
		t.Errorf("Usage() = %+v, %v", u, reported)
	}
}

func TestMeterClientAskedKeepsUsageChunk(t *testing.T) {
	p := newTestProvider(t)
	m := p.Meter(&llm.RawRequest{Op: llm.OpChat, Stream: true, IncludeUsage: true})
	events := append(streamEvents(true), usageChunk)
	var out strings.Builder
	for _, ev := range events {
		out.Write(m.Event([]byte(ev)))
	}
	if out.String() != strings.Join(events, "") {
		t.Errorf("a client that asked for usage must get the stream unchanged; got %s", out.String())
	}
	if u, ok := m.Usage(); !ok || u.InputTokens != 12 {
		t.Errorf("Usage() = %+v, %v", u, ok)
	}
}

func TestMeterBodyAndEstimate(t *testing.T) {
	p := newTestProvider(t)
	m := p.Meter(&llm.RawRequest{Op: llm.OpChat, Body: make([]byte, 400)})
	m.Body([]byte("{\n  \"choices\": [{\"message\": {\"content\": \"\\\"usage\\\": {}\"}}],\n  \"usage\": {\n    \"prompt_tokens\": 9,\n    \"completion_tokens\": 3\n  }\n}"))
	if u, ok := m.Usage(); !ok || u.InputTokens != 9 || u.OutputTokens != 3 {
		t.Errorf("Usage() from a pretty body = %+v, %v", u, ok)
	}
	// A stream cut before its usage chunk: estimated, and said so.
	cut := p.Meter(&llm.RawRequest{Op: llm.OpChat, Stream: true, Body: make([]byte, 400)})
	for _, ev := range streamEvents(true) {
		cut.Event([]byte(ev))
	}
	if u, ok := cut.Usage(); ok || u.InputTokens != 100 || u.OutputTokens != 3 {
		t.Errorf("cut stream Usage() = %+v, reported %v; want an estimate (100 in, 3 out)", u, ok)
	}
}

func TestStreamUsageByAzureVersion(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    bool
	}{{"", true}, {"2024-10-21", true}, {"2024-09-01-preview", true}, {"2024-02-01", false}} {
		p, err := New(Options{Name: "az", Flavor: FlavorAzure, BaseURL: mustParse(t, "https://x.openai.azure.com"), APIKey: "k", APIVersion: tc.version})
		if err != nil {
			t.Fatal(err)
		}
		if p.streamUsage != tc.want {
			t.Errorf("api_version %q: streamUsage = %v, want %v", tc.version, p.streamUsage, tc.want)
		}
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
