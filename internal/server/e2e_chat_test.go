package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

// compatGateway serves gpt-4o, gpt-4o-mini, llama and
// text-embedding-3-small from one openai-compatible fake named "compat".
func compatGateway(t *testing.T) (*gateway, *upstream) {
	t.Helper()
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	g := startGateway(t, fmt.Sprintf(`
providers:
  - name: compat
    type: openai-compatible
    base_url: %s/v1
    api_key: ${P1_KEY}
models:
  - {name: gpt-4o, routes: [compat]}
  - {name: gpt-4o-mini, routes: [compat]}
  - {name: llama, routes: [compat]}
  - {name: text-embedding-3-small, routes: [compat]}
`+keysYAML, u.URL))
	return g, u
}

func TestChatCompletion(t *testing.T) {
	g, u := compatGateway(t)
	c := g.client(t, keyAll)
	ctx := context.Background()

	var ids []string
	for range 2 {
		var resp *http.Response
		got, err := c.Chat.Completions.New(ctx, userChat("gpt-4o", "Say hello"), option.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("Chat.Completions.New: %v", err)
		}
		if len(got.Choices) != 1 {
			t.Fatalf("len(choices) = %d, want 1", len(got.Choices))
		}
		if c := got.Choices[0].Message.Content; c != fakeupstream.DefaultContent {
			t.Errorf("content = %q, want %q", c, fakeupstream.DefaultContent)
		}
		if fr := got.Choices[0].FinishReason; fr != "stop" {
			t.Errorf("finish_reason = %q, want stop", fr)
		}
		// The fake counts 4 per message plus 2 words; 5 content pieces.
		if u := got.Usage; u.PromptTokens != 6 || u.CompletionTokens != 5 || u.TotalTokens != 11 {
			t.Errorf("usage = %d/%d/%d, want 6/5/11", u.PromptTokens, u.CompletionTokens, u.TotalTokens)
		}
		if p := resp.Header.Get("X-Multipolar-Provider"); p != "compat" {
			t.Errorf("x-multipolar-provider = %q, want compat", p)
		}
		id := resp.Header.Get("X-Request-Id")
		if id == "" {
			t.Error("x-request-id is empty")
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] {
		t.Errorf("x-request-id = %q for both requests, want distinct ids", ids[0])
	}
	reqs := u.Requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream got %d requests, want 2", len(reqs))
	}
	for _, r := range reqs {
		if r.Path != "/v1/chat/completions" {
			t.Errorf("upstream path = %q, want /v1/chat/completions", r.Path)
		}
		if bytes.Contains(r.Body, []byte(`"stream"`)) {
			t.Errorf("upstream body %s names stream for a non-streamed request", r.Body)
		}
	}
}

func TestChatStream(t *testing.T) {
	tests := []struct {
		name         string
		includeUsage bool
	}{
		{"with usage", true},
		{"without usage", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, u := compatGateway(t)
			c := g.client(t, keyAll)
			params := userChat("gpt-4o", "Say hello")
			if tc.includeUsage {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			var resp *http.Response
			stream := c.Chat.Completions.NewStreaming(context.Background(), params, option.WithResponseInto(&resp))
			var (
				acc    openai.ChatCompletionAccumulator
				chunks []openai.ChatCompletionChunk
			)
			for stream.Next() {
				ch := stream.Current()
				acc.AddChunk(ch)
				chunks = append(chunks, ch)
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream.Err() = %v, want nil", err)
			}
			if len(chunks) < 3 {
				t.Fatalf("got %d chunks, want at least 3", len(chunks))
			}
			if got := acc.Choices[0].Message.Content; got != fakeupstream.DefaultContent {
				t.Errorf("accumulated content = %q, want %q", got, fakeupstream.DefaultContent)
			}
			if p := resp.Header.Get("X-Multipolar-Provider"); p != "compat" {
				t.Errorf("x-multipolar-provider = %q, want compat", p)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("Content-Type = %q, want text/event-stream", ct)
			}
			last := chunks[len(chunks)-1]
			for i, ch := range chunks[:len(chunks)-1] {
				if ch.Usage.TotalTokens != 0 {
					t.Errorf("chunk %d usage.total_tokens = %d, want usage only in the last chunk", i, ch.Usage.TotalTokens)
				}
			}
			if tc.includeUsage {
				if last.Usage.PromptTokens != 6 || last.Usage.CompletionTokens != 5 || last.Usage.TotalTokens != 11 {
					t.Errorf("last chunk usage = %s, want 6/5/11", last.Usage.RawJSON())
				}
				if len(last.Choices) != 0 {
					t.Errorf("usage chunk has %d choices, want 0", len(last.Choices))
				}
			} else {
				for i, ch := range chunks {
					if strings.Contains(ch.RawJSON(), `"usage"`) {
						t.Errorf("chunk %d = %s, want no usage without include_usage", i, ch.RawJSON())
					}
				}
				if fr := last.Choices[0].FinishReason; fr != "stop" {
					t.Errorf("last chunk finish_reason = %q, want stop", fr)
				}
			}
			reqs := u.Requests()
			if len(reqs) != 1 {
				t.Fatalf("upstream got %d requests, want 1", len(reqs))
			}
			if !bytes.Contains(reqs[0].Body, []byte(`"stream":true`)) {
				t.Errorf("upstream body = %s, want \"stream\":true", reqs[0].Body)
			}
			if got := reqs[0].Header.Get("Accept"); got != "text/event-stream" {
				t.Errorf("upstream Accept = %q, want text/event-stream", got)
			}
		})
	}
}

// TestPassthrough checks that the upstream receives the client's bytes
// exactly when no model rewrite applies, odd formatting included.
func TestPassthrough(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"plain", `{ "messages" : [ {"role":"user","content":"héllo \u00e9 \"q\""} ],` + "\n\t" + `"model":"gpt-4o", "temperature": 0.50, "extra_vendor_field": {"x":[1,2,3]} }`},
		{"stream", `{"stream":true,"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`},
		{"escaped key", `{"mod\u0065l":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`},
	}
	g, u := compatGateway(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.do(t, http.MethodPost, "/v1/chat/completions", keyAll, []byte(tc.body))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", resp.StatusCode, body)
			}
			reqs := u.Requests()
			if len(reqs) != i+1 {
				t.Fatalf("upstream got %d requests, want %d", len(reqs), i+1)
			}
			if got := string(reqs[i].Body); got != tc.body {
				t.Errorf("upstream body = %s, want the client's bytes %s", got, tc.body)
			}
		})
	}
}

// TestModelRewrite checks that a route naming an upstream model changes the
// model value and nothing else.
func TestModelRewrite(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{})
	g := startGateway(t, fmt.Sprintf(`
providers:
  - {name: compat, type: openai-compatible, base_url: %s/v1}
models:
  - name: gpt-4o
    routes: [{provider: compat, model: upstream-name}]
`+keysYAML, u.URL))
	tests := []struct{ name, body, extra string }{
		{"compact", `{"model":"gpt-4o","messages":[{"role":"user","content":"say \"model\":\"gpt-4o\""}],"n":1}`, ""},
		// A stream whose client did not ask for usage also gets the
		// gateway's stream_options, so the ledger has the real counts.
		{"spaced stream", `{"messages": [{"role": "user", "content": "hi"}],  "model":"gpt-4o" , "stream": true}`, `"stream_options":{"include_usage":true},`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.do(t, http.MethodPost, "/v1/chat/completions", keyAll, []byte(tc.body))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", resp.StatusCode, body)
			}
			// Only the top-level model value changes; the escaped copy
			// inside the message content stays.
			want := "{" + tc.extra + strings.Replace(tc.body[1:], `"model":"gpt-4o"`, `"model":"upstream-name"`, 1)
			got := string(u.Requests()[i].Body)
			if got != want {
				t.Errorf("upstream body = %s, want %s", got, want)
			}
		})
	}
}

func TestEmbeddings(t *testing.T) {
	g, u := compatGateway(t)
	c := g.client(t, keyAll)
	const input = "the quick brown fox"
	want := fakeupstream.Vector(input)

	t.Run("float", func(t *testing.T) {
		got, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
			Model:          "text-embedding-3-small",
			Input:          openai.EmbeddingNewParamsInputUnion{OfString: openai.String(input)},
			EncodingFormat: openai.EmbeddingNewParamsEncodingFormatFloat,
		})
		if err != nil {
			t.Fatalf("Embeddings.New: %v", err)
		}
		if len(got.Data) != 1 {
			t.Fatalf("len(data) = %d, want 1", len(got.Data))
		}
		vec := make([]float32, len(got.Data[0].Embedding))
		for i, f := range got.Data[0].Embedding {
			vec[i] = float32(f)
		}
		if diff := cmp.Diff(want, vec); diff != "" {
			t.Errorf("embedding mismatch (-want +got):\n%s", diff)
		}
		if got.Usage.PromptTokens != 4 {
			t.Errorf("usage.prompt_tokens = %d, want 4", got.Usage.PromptTokens)
		}
	})
	t.Run("base64", func(t *testing.T) {
		got, err := c.Embeddings.New(context.Background(), openai.EmbeddingNewParams{
			Model:          "text-embedding-3-small",
			Input:          openai.EmbeddingNewParamsInputUnion{OfString: openai.String(input)},
			EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64,
		})
		if err != nil {
			t.Fatalf("Embeddings.New: %v", err)
		}
		if len(got.Data) != 1 {
			t.Fatalf("len(data) = %d, want 1", len(got.Data))
		}
		var s string
		if err := json.Unmarshal([]byte(got.Data[0].JSON.Embedding.Raw()), &s); err != nil {
			t.Fatalf("embedding = %s, want a base64 string: %v", got.Data[0].JSON.Embedding.Raw(), err)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("decode base64 embedding: %v", err)
		}
		vec := make([]float32, len(raw)/4)
		for i := range vec {
			vec[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		if diff := cmp.Diff(want, vec); diff != "" {
			t.Errorf("embedding mismatch (-want +got):\n%s", diff)
		}
	})
	for _, r := range u.Requests() {
		if r.Path != "/v1/embeddings" {
			t.Errorf("upstream path = %q, want /v1/embeddings", r.Path)
		}
	}
}

func TestModelsList(t *testing.T) {
	g, u := compatGateway(t)
	tests := []struct {
		name string
		key  string
		want []string
	}{
		{"globs", keyGPT, []string{"gpt-4o", "gpt-4o-mini"}},
		{"no globs", keyAll, []string{"gpt-4o", "gpt-4o-mini", "llama", "text-embedding-3-small"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := g.client(t, tc.key)
			page, err := c.Models.List(context.Background())
			if err != nil {
				t.Fatalf("Models.List: %v", err)
			}
			var got []string
			for _, m := range page.Data {
				got = append(got, m.ID)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("model ids mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if n := len(u.Requests()); n != 0 {
		t.Errorf("upstream got %d requests for /v1/models, want 0", n)
	}
}

// TestUpstreamRequest checks the URL, query, credentials and body each
// provider type receives.
func TestUpstreamRequest(t *testing.T) {
	classic := newUpstream(t, fakeupstream.Options{Flavor: fakeupstream.FlavorAzure, APIKey: azKey})
	v1 := newUpstream(t, fakeupstream.Options{Flavor: fakeupstream.FlavorAzure, APIKey: azKey})
	compat := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	g := startGateway(t, fmt.Sprintf(`
providers:
  - name: az-classic
    type: azure-openai
    base_url: %s
    api_key: ${AZ_KEY}
    api_version: "2024-10-21"
    deployments: {gpt-4o: gpt4o-prod}
  - name: az-v1
    type: azure-openai
    base_url: %s
    api_key: ${AZ_KEY}
    deployments: {gpt-4o: gpt4o-v1}
  - name: compat
    type: openai-compatible
    base_url: %s/v1
    api_key: ${P1_KEY}
models:
  - {name: gpt-4o, routes: [az-classic]}
  - {name: gpt-4o-mini, routes: [az-classic]}
  - {name: v1-gpt-4o, routes: [{provider: az-v1, model: gpt-4o}]}
  - {name: v1-mini, routes: [{provider: az-v1, model: gpt-4o-mini}]}
  - {name: compat-gpt, routes: [compat]}
`+keysYAML, classic.URL, v1.URL, compat.URL))

	tests := []struct {
		name      string
		model     string
		up        *upstream
		provider  string
		wantPath  string
		wantQuery string
		wantModel string // the body's model the upstream sees
		apiKey    string // want api-key header
		authz     string // want Authorization header
	}{
		{"azure classic mapped", "gpt-4o", classic, "az-classic", "/openai/deployments/gpt4o-prod/chat/completions", "api-version=2024-10-21", "gpt-4o", azKey, ""},
		{"azure classic unmapped", "gpt-4o-mini", classic, "az-classic", "/openai/deployments/gpt-4o-mini/chat/completions", "api-version=2024-10-21", "gpt-4o-mini", azKey, ""},
		{"azure v1 mapped", "v1-gpt-4o", v1, "az-v1", "/openai/v1/chat/completions", "", "gpt4o-v1", azKey, ""},
		{"azure v1 unmapped", "v1-mini", v1, "az-v1", "/openai/v1/chat/completions", "", "gpt-4o-mini", azKey, ""},
		{"openai-compatible", "compat-gpt", compat, "compat", "/v1/chat/completions", "", "compat-gpt", "", "Bearer " + p1Key},
	}
	c := g.client(t, keyAll)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.up.Requests())
			var resp *http.Response
			got, err := c.Chat.Completions.New(context.Background(), userChat(tc.model, "hi"), option.WithResponseInto(&resp))
			if err != nil {
				t.Fatalf("Chat.Completions.New: %v", err)
			}
			if got.Choices[0].Message.Content != fakeupstream.DefaultContent {
				t.Errorf("content = %q, want %q", got.Choices[0].Message.Content, fakeupstream.DefaultContent)
			}
			if p := resp.Header.Get("X-Multipolar-Provider"); p != tc.provider {
				t.Errorf("x-multipolar-provider = %q, want %q", p, tc.provider)
			}
			reqs := tc.up.Requests()
			if len(reqs) != before+1 {
				t.Fatalf("upstream got %d new requests, want 1", len(reqs)-before)
			}
			r := reqs[before]
			if r.Path != tc.wantPath {
				t.Errorf("upstream path = %q, want %q", r.Path, tc.wantPath)
			}
			if r.RawQuery != tc.wantQuery {
				t.Errorf("upstream query = %q, want %q", r.RawQuery, tc.wantQuery)
			}
			if got := r.Header.Get("Api-Key"); got != tc.apiKey {
				t.Errorf("upstream api-key = %q, want %q", got, tc.apiKey)
			}
			if got := r.Header.Get("Authorization"); got != tc.authz {
				t.Errorf("upstream Authorization = %q, want %q", got, tc.authz)
			}
			var body struct{ Model string }
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatalf("upstream body %s: %v", r.Body, err)
			}
			if body.Model != tc.wantModel {
				t.Errorf("upstream body model = %q, want %q", body.Model, tc.wantModel)
			}
			for k, vs := range r.Header {
				for _, v := range vs {
					if strings.Contains(v, keyAll) {
						t.Errorf("upstream header %s = %q carries the client's virtual key", k, v)
					}
				}
			}
			if bytes.Contains(r.Body, []byte(keyAll)) {
				t.Errorf("upstream body carries the client's virtual key")
			}
		})
	}
}
