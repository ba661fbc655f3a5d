package openai

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
	"testing"

	"github.com/multipolar/multipolar/internal/testutil/goldenfile"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/proxy"
	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

// Interface guards: proxy declares StreamDecoder as an alias of an unnamed
// interface type, so *Provider satisfies proxy.ChatProvider structurally.
var (
	_ proxy.ChatProvider  = (*Provider)(nil)
	_ proxy.StreamDecoder = (*ChunkDecoder)(nil)
)

func newProvider(t testing.TB, o Options) *Provider {
	t.Helper()
	if o.Name == "" {
		o.Name = "openai-test"
	}
	if o.BaseURL == nil {
		o.BaseURL = &url.URL{Scheme: "https", Host: "api.openai.com", Path: "/v1"}
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	goldenfile.Check(t, path, got)
}

// cases returns the case names of testdata/dir/*.in.ext.
func cases(t *testing.T, dir, ext string) []string { return goldenfile.Cases(t, dir+"/*", ".in."+ext) }

func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return append(buf.Bytes(), '\n')
}

// TestNewChatRequestGolden encodes canonical requests (the OpenAI ingress's
// decoded goldens plus Anthropic-shaped ones) as upstream bodies. A refused
// request's golden holds the error.
func TestNewChatRequestGolden(t *testing.T) {
	spec := oapispec.OpenAI(t)
	p := newProvider(t, Options{APIKey: "sk-test"})
	for _, name := range cases(t, "request", "json") {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "request", name+".in.json"))
			if err != nil {
				t.Fatal(err)
			}
			var r llm.Request
			if err := json.Unmarshal(in, &r); err != nil {
				t.Fatal(err)
			}
			req, err := p.NewChatRequest(context.Background(), &r)
			if err != nil {
				var e *apierr.Error
				if !errors.As(err, &e) || e.Kind != apierr.BadRequest {
					t.Fatalf("NewChatRequest error = %v, want BadRequest", err)
				}
				got, _ := json.MarshalIndent(map[string]string{"error": e.Message, "param": e.Param}, "", "  ")
				golden(t, filepath.Join("request", name+".want.json"), append(got, '\n'))
				return
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				t.Fatal(err)
			}
			if req.ContentLength != int64(len(body)) {
				t.Errorf("ContentLength = %d, want %d", req.ContentLength, len(body))
			}
			spec.ValidateRequest(t, "POST", "/v1/chat/completions", req.Header, body)
			golden(t, filepath.Join("request", name+".want.json"), indent(t, body))
		})
	}
}

func TestNewChatRequestRules(t *testing.T) {
	p := newProvider(t, Options{})
	user := []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}}
	tests := []struct {
		name string
		r    llm.Request
		want map[string]any // top-level fields expected (nil value: absent)
	}{
		{"max_tokens for gpt-4o", llm.Request{UpstreamModel: "gpt-4o", MaxTokens: 10, ThinkingBudget: 5000},
			map[string]any{"max_tokens": 10.0, "max_completion_tokens": nil, "reasoning_effort": nil}},
		{"max_completion_tokens for gpt-5", llm.Request{UpstreamModel: "gpt-5-mini", MaxTokens: 10, ThinkingBudget: 1024},
			map[string]any{"max_tokens": nil, "max_completion_tokens": 10.0, "reasoning_effort": "low"}},
		{"budget high", llm.Request{UpstreamModel: "o3", ThinkingBudget: 31999},
			map[string]any{"reasoning_effort": "high"}},
		{"explicit effort wins", llm.Request{UpstreamModel: "o3", ThinkingBudget: 31999, ReasoningEffort: "minimal"},
			map[string]any{"reasoning_effort": "minimal"}},
		{"stream asks for usage", llm.Request{UpstreamModel: "gpt-4o", Stream: true},
			map[string]any{"stream": true, "stream_options": map[string]any{"include_usage": true}}},
		{"no tool_choice without tools", llm.Request{UpstreamModel: "gpt-4o", ToolChoice: llm.ToolChoice{Mode: llm.ToolChoiceRequired, DisableParallel: true}},
			map[string]any{"tool_choice": nil, "parallel_tool_calls": nil}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.Messages = user
			req, err := p.NewChatRequest(context.Background(), &tc.r)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(req.Body)
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want {
				if got := m[k]; !cmp.Equal(got, want) {
					t.Errorf("body %s: %s = %v, want %v", body, k, got, want)
				}
			}
		})
	}
}

func TestNewChatRequestUnsupported(t *testing.T) {
	p := newProvider(t, Options{Name: "oai"})
	for _, tc := range []struct {
		r    llm.Request
		want string
	}{
		{llm.Request{Unsupported: []string{"logit_bias", "audio"}}, `feature "logit_bias" is not supported by provider "oai"`},
		{llm.Request{N: 2}, `feature "n" is not supported by provider "oai"`},
		{llm.Request{Messages: []llm.Message{{Role: llm.RoleTool, Content: []llm.Part{{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{
			Content: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{URL: "https://x"}}}}}}}}},
			`feature "images in tool results" is not supported by provider "oai"`},
	} {
		_, err := p.NewChatRequest(context.Background(), &tc.r)
		var e *apierr.Error
		if !errors.As(err, &e) || e.Kind != apierr.BadRequest || e.Message != tc.want {
			t.Errorf("NewChatRequest(%+v) = %v, want BadRequest %q", tc.r, err, tc.want)
		}
	}
}

// TestNewChatRequestURLs checks that the translating path reuses
// NewRequest's URL, header and deployment rules.
func TestNewChatRequestURLs(t *testing.T) {
	base := &url.URL{Scheme: "https", Host: "res.openai.azure.com"}
	r := llm.Request{UpstreamModel: "gpt-4o", Stream: true, Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "x"}}}}}
	tests := []struct {
		name              string
		o                 Options
		url, model, key   string
		keyHeader, accept string
	}{
		{"openai", Options{APIKey: "k"}, "https://api.openai.com/v1/chat/completions", "gpt-4o", "Bearer k", "Authorization", "text/event-stream"},
		{"azure v1", Options{Flavor: FlavorAzure, BaseURL: base, APIKey: "k", Deployments: map[string]string{"gpt-4o": "prod-4o"}},
			"https://res.openai.azure.com/openai/v1/chat/completions", "prod-4o", "k", "Api-Key", "text/event-stream"},
		{"azure classic", Options{Flavor: FlavorAzure, BaseURL: base, APIKey: "k", APIVersion: "2024-10-21", Deployments: map[string]string{"gpt-4o": "prod-4o"}},
			"https://res.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21", "gpt-4o", "k", "Api-Key", "text/event-stream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := newProvider(t, tc.o).NewChatRequest(context.Background(), &r)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(req.Body)
			var m struct{ Model string }
			_ = json.Unmarshal(body, &m)
			if req.URL.String() != tc.url || m.Model != tc.model || req.Header.Get(tc.keyHeader) != tc.key || req.Header.Get("Accept") != tc.accept {
				t.Errorf("NewChatRequest = %s model %q %s %q Accept %q, want %s model %q key %q Accept %q",
					req.URL, m.Model, tc.keyHeader, req.Header.Get(tc.keyHeader), req.Header.Get("Accept"), tc.url, tc.model, tc.key, tc.accept)
			}
		})
	}
}

func TestDecodeChatGolden(t *testing.T) {
	p := newProvider(t, Options{})
	for _, name := range cases(t, "response", "json") {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "response", name+".in.json"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := p.DecodeChat(&http.Response{StatusCode: 200}, in)
			if err != nil {
				t.Fatalf("DecodeChat error: %v", err)
			}
			got, _ := json.MarshalIndent(resp, "", "  ")
			golden(t, filepath.Join("response", name+".want.json"), append(got, '\n'))
		})
	}
}

func TestDecodeChatErrors(t *testing.T) {
	p := newProvider(t, Options{})
	for _, body := range []string{`{`, `{"choices":[]}`, `[]`} {
		_, err := p.DecodeChat(&http.Response{StatusCode: 200}, []byte(body))
		var e *apierr.Error
		if !errors.As(err, &e) || e.Kind != apierr.UpstreamUnavailable {
			t.Errorf("DecodeChat(%s) = %v, want UpstreamUnavailable", body, err)
		}
	}
}
