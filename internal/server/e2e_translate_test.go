package server_test

// End-to-end tests of the translated paths: the official OpenAI and
// Anthropic Go SDKs talk to the gateway, which talks to the fake Anthropic,
// Bedrock, Gemini, Vertex and Claude-on-Vertex upstreams in their own wire
// formats. Every answer is checked against the client API's published spec,
// and what the gateway sends the Anthropic fake against Anthropic's.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/server"
	"github.com/multipolar/multipolar/internal/testutil/fakeanthropic"
	"github.com/multipolar/multipolar/internal/testutil/fakebedrock"
	"github.com/multipolar/multipolar/internal/testutil/fakegemini"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

// Upstream credentials of the translated providers.
const (
	antKey      = "sk-ant-upstream-key"
	gemKey      = "gm-upstream-key"
	awsKeyID    = "AKIDEXAMPLEGATEWAY"
	awsSecret   = "aws-secret-example-key"
	vertexToken = "ya29.e2e-vertex-token"
)

// Cache counters the fakes report, so that usage conversion is visible.
const (
	antCacheRead, antCacheWrite = 3, 2
	brCacheRead, brCacheWrite   = 4, 1
	gmCached                    = 3
	oaCached                    = 2
)

// serviceAccountKey is one RSA key for every test's service account;
// generating it is the slow part.
var serviceAccountKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// tokenEndpoint starts a fake Google OAuth2 token endpoint that grants
// vertexToken and returns a service-account JSON whose token_uri points at
// it.
func tokenEndpoint(t *testing.T) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || r.PostForm.Get("assertion") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, vertexToken)
	}))
	t.Cleanup(ts.Close)
	key, err := serviceAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "e2e-proj",
		"private_key_id": "key-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "gateway@e2e-proj.iam.gserviceaccount.com",
		"client_id":      "1234567890",
		"token_uri":      ts.URL + "/token",
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startGatewayEnv is startGateway with extra ${VAR} values.
func startGatewayEnv(t *testing.T, yaml string, env map[string]string) *gateway {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, true
		}
		return lookupEnv(k)
	})
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, yaml)
	}
	return serveGateway(t, server.Options{Config: cfg})
}

// serve serves h on a loopback httptest server closed at cleanup, after
// closeFake releases any hung handler.
func serve(t *testing.T, h http.Handler, closeFake func()) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	t.Cleanup(closeFake)
	return ts.URL
}

// fake is one translated upstream as the tests script and inspect it.
type fake struct {
	name  string // provider name in the configuration
	yaml  string // its providers entry
	model string // the gateway's model name routed to it
	// content is the fake's default answer text.
	content string
	// usage is what an OpenAI client must see for userChat("…", "Say hello").
	prompt, completion, cached int64
	// anthUsage is what an Anthropic client must see for the same prompt:
	// input, cache_read, cache_creation, output.
	anthUsage [4]int64
	toolCall  func(name, args string)
	streamErr func(after int)
	status    func(code int, retryAfter string)
	bodies    func() [][]byte // chat request bodies received, in order
	// toolResult checks that body carries callID's result in the fake's
	// own format, after the assistant turn that called tool.
	toolResult func(t *testing.T, body []byte, tool, callID, result string)
	anth       *fakeanthropic.Server // set for the Anthropic fakes
}

func newAnthropicFake(t *testing.T, vertex bool, env map[string]string) fake {
	t.Helper()
	s := fakeanthropic.New(fakeanthropic.Options{APIKey: antKey, VertexToken: vertexToken,
		CacheReadTokens: antCacheRead, CacheCreationTokens: antCacheWrite})
	url := serve(t, s, s.Close)
	f := fake{
		name: "anth", model: "claude-sonnet-4-5", content: fakeanthropic.DefaultContent, anth: s,
		// 2 words + 4 per message, plus cache reads and writes.
		prompt: 6 + antCacheRead + antCacheWrite, completion: 5, cached: antCacheRead,
		anthUsage: [4]int64{6, antCacheRead, antCacheWrite, 5},
		yaml:      fmt.Sprintf("{name: anth, type: anthropic, base_url: %q, api_key: \"${ANT_KEY}\"}", url),
		toolCall: func(name, args string) {
			s.Enqueue(fakeanthropic.Behavior{ToolCall: &fakeanthropic.ToolCall{Name: name, Input: json.RawMessage(args)}})
		},
		streamErr: func(after int) { s.Enqueue(fakeanthropic.Behavior{StreamErrorAfter: after}) },
		status: func(code int, ra string) {
			s.Enqueue(fakeanthropic.Behavior{Status: code, RetryAfter: ra})
		},
		bodies: func() [][]byte {
			var out [][]byte
			for _, r := range s.Requests() {
				out = append(out, r.Body)
			}
			return out
		},
		toolResult: func(t *testing.T, body []byte, tool, callID, result string) {
			t.Helper()
			doc := decodeJSON(t, body)
			if got := jget(doc, "messages", -1, "content", 0, "type"); got != "tool_result" {
				t.Errorf("last message content[0].type = %v, want tool_result in %s", got, body)
			}
			if got := jget(doc, "messages", -1, "content", 0, "tool_use_id"); got != callID {
				t.Errorf("tool_result.tool_use_id = %v, want %q", got, callID)
			}
			if !bytes.Contains(body, []byte(result)) {
				t.Errorf("body %s does not carry the tool result %q", body, result)
			}
			if !hasBlock(jget(doc, "messages", -2, "content"), map[string]any{"type": "tool_use", "id": callID, "name": tool}) {
				t.Errorf("assistant turn %v, want a tool_use block %s/%s", jget(doc, "messages", -2), callID, tool)
			}
		},
	}
	if vertex {
		env["SA_JSON"] = tokenEndpoint(t)
		f.name = "vxa"
		f.yaml = fmt.Sprintf("{name: vxa, type: vertex-anthropic, base_url: %q, project: e2e-proj, region: us-east5, credentials: \"${SA_JSON}\"}", url)
	}
	return f
}

func newBedrockFake(t *testing.T) fake {
	t.Helper()
	s := fakebedrock.New(fakebedrock.Options{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, Region: "us-east-1",
		CacheReadTokens: brCacheRead, CacheWriteTokens: brCacheWrite})
	url := serve(t, s, s.Close)
	return fake{
		name: "br", model: "br-claude", content: fakebedrock.DefaultContent,
		// 2 words + 4 per message; Bedrock's inputTokens exclude the cache.
		prompt: 6 + brCacheRead + brCacheWrite, completion: 5, cached: brCacheRead,
		anthUsage: [4]int64{6, brCacheRead, brCacheWrite, 5},
		yaml:      fmt.Sprintf("{name: br, type: bedrock, region: us-east-1, base_url: %q, aws: {access_key_id: \"${AWS_AK}\", secret_access_key: \"${AWS_SK}\"}}", url),
		toolCall: func(name, args string) {
			s.Enqueue(fakebedrock.Behavior{ToolCall: &fakebedrock.ToolCall{Name: name, Input: args}})
		},
		streamErr: func(after int) { s.Enqueue(fakebedrock.Behavior{StreamErrorAfter: after}) },
		status:    func(code int, _ string) { s.Enqueue(fakebedrock.Behavior{Status: code}) },
		bodies: func() [][]byte {
			var out [][]byte
			for _, r := range s.Requests() {
				out = append(out, r.Body)
			}
			return out
		},
		toolResult: func(t *testing.T, body []byte, tool, callID, result string) {
			t.Helper()
			doc := decodeJSON(t, body)
			if got := jget(doc, "messages", -1, "content", 0, "toolResult", "toolUseId"); got != callID {
				t.Errorf("last message toolResult.toolUseId = %v, want %q in %s", got, callID, body)
			}
			if !bytes.Contains(body, []byte(result)) {
				t.Errorf("body %s does not carry the tool result %q", body, result)
			}
			var found bool
			for _, b := range asSlice(jget(doc, "messages", -2, "content")) {
				if jget(b, "toolUse", "toolUseId") == callID && jget(b, "toolUse", "name") == tool {
					found = true
				}
			}
			if !found {
				t.Errorf("assistant turn %v, want a toolUse %s/%s", jget(doc, "messages", -2), callID, tool)
			}
		},
	}
}

func newGeminiFake(t *testing.T, vertex bool, env map[string]string) fake {
	t.Helper()
	s := fakegemini.New(fakegemini.Options{APIKey: gemKey, VertexToken: vertexToken, CachedTokens: gmCached})
	url := serve(t, s, s.Close)
	f := fake{
		name: "gm", model: "gemini-2.5-flash", content: fakegemini.DefaultContent,
		// 2 words, cached tokens counted inside the prompt.
		prompt: 2 + gmCached, completion: 5, cached: gmCached,
		anthUsage: [4]int64{2, gmCached, 0, 5},
		yaml:      fmt.Sprintf("{name: gm, type: gemini, base_url: %q, api_key: \"${GM_KEY}\"}", url),
		toolCall: func(name, args string) {
			s.Enqueue(fakegemini.Behavior{FunctionCall: &fakegemini.FunctionCall{Name: name, Args: args}})
		},
		streamErr: func(after int) { s.Enqueue(fakegemini.Behavior{StreamErrorAfter: after}) },
		status:    func(code int, _ string) { s.Enqueue(fakegemini.Behavior{Status: code}) },
		bodies: func() [][]byte {
			var out [][]byte
			for _, r := range s.Requests() {
				out = append(out, r.Body)
			}
			return out
		},
		toolResult: func(t *testing.T, body []byte, tool, _, result string) {
			t.Helper()
			doc := decodeJSON(t, body)
			if got := jget(doc, "contents", -1, "parts", 0, "functionResponse", "name"); got != tool {
				t.Errorf("last content functionResponse.name = %v, want %q in %s", got, tool, body)
			}
			if !bytes.Contains(body, []byte(result)) {
				t.Errorf("body %s does not carry the tool result %q", body, result)
			}
			var found bool
			for _, p := range asSlice(jget(doc, "contents", -2, "parts")) {
				if jget(p, "functionCall", "name") == tool {
					found = true
				}
			}
			if !found {
				t.Errorf("model turn %v, want a functionCall %s", jget(doc, "contents", -2), tool)
			}
		},
	}
	if vertex {
		env["SA_JSON"] = tokenEndpoint(t)
		f.name = "vx"
		f.yaml = fmt.Sprintf("{name: vx, type: vertex, base_url: %q, project: e2e-proj, region: us-central1, credentials: \"${SA_JSON}\"}", url)
	}
	return f
}

// newFake starts the fake for a provider type.
func newFake(t *testing.T, typ string, env map[string]string) fake {
	t.Helper()
	switch typ {
	case config.TypeAnthropic:
		return newAnthropicFake(t, false, env)
	case config.TypeVertexAnthropic:
		return newAnthropicFake(t, true, env)
	case config.TypeBedrock:
		return newBedrockFake(t)
	case config.TypeGemini:
		return newGeminiFake(t, false, env)
	case config.TypeVertex:
		return newGeminiFake(t, true, env)
	}
	t.Fatalf("no fake for provider type %q", typ)
	return fake{}
}

func translateEnv() map[string]string {
	return map[string]string{"ANT_KEY": antKey, "GM_KEY": gemKey, "AWS_AK": awsKeyID, "AWS_SK": awsSecret}
}

// fakeGateway serves f's model from f alone.
func fakeGateway(t *testing.T, typ string) (*gateway, fake) {
	t.Helper()
	env := translateEnv()
	f := newFake(t, typ, env)
	g := startGatewayEnv(t, fmt.Sprintf(`
providers:
  - %s
models:
  - {name: %s, routes: [%s]}
`, f.yaml, f.model, f.name)+keysYAML, env)
	t.Cleanup(func() {
		if f.anth != nil {
			validateAnthropicRequests(t, f.anth)
		}
	})
	return g, f
}

var translatedTypes = []string{config.TypeAnthropic, config.TypeBedrock, config.TypeGemini, config.TypeVertex, config.TypeVertexAnthropic}

// weatherTool is the one tool of the tool-call tests.
var weatherTool = openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: openai.String("Current weather of a city"),
	Parameters: openai.FunctionParameters{
		"type":       "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}},
		"required":   []string{"city"},
	},
})

const weatherArgs = `{"city":"Paris","unit":"celsius"}`

// TestTranslateOpenAIChat drives each translated provider with the OpenAI
// SDK: content, finish_reason and usage converted from the provider's own
// counters.
func TestTranslateOpenAIChat(t *testing.T) {
	for _, typ := range translatedTypes {
		t.Run(typ, func(t *testing.T) {
			g, f := fakeGateway(t, typ)
			var resp *http.Response
			c := g.client(t, keyAll)
			got, err := c.Chat.Completions.New(context.Background(), userChat(f.model, "Say hello"), option.WithResponseInto(&resp))
			if err != nil {
				t.Fatalf("Chat.Completions.New: %v", err)
			}
			if len(got.Choices) != 1 {
				t.Fatalf("len(choices) = %d, want 1", len(got.Choices))
			}
			if c := got.Choices[0].Message.Content; c != f.content {
				t.Errorf("content = %q, want %q", c, f.content)
			}
			if fr := got.Choices[0].FinishReason; fr != "stop" {
				t.Errorf("finish_reason = %q, want stop", fr)
			}
			if got.Model != f.model {
				t.Errorf("model = %q, want %q", got.Model, f.model)
			}
			checkOpenAIUsage(t, got.Usage, f)
			if p := resp.Header.Get("X-Multipolar-Provider"); p != f.name {
				t.Errorf("x-multipolar-provider = %q, want %q", p, f.name)
			}
			if n := len(f.bodies()); n != 1 {
				t.Errorf("upstream got %d requests, want 1", n)
			}
		})
	}
}

func checkOpenAIUsage(t *testing.T, u openai.CompletionUsage, f fake) {
	t.Helper()
	got := [4]int64{u.PromptTokens, u.CompletionTokens, u.TotalTokens, u.PromptTokensDetails.CachedTokens}
	want := [4]int64{f.prompt, f.completion, f.prompt + f.completion, f.cached}
	if got != want {
		t.Errorf("usage prompt/completion/total/cached = %v, want %v (%s)", got, want, u.RawJSON())
	}
}

// TestTranslateOpenAIStream streams from each translated provider, with and
// without stream_options.include_usage.
func TestTranslateOpenAIStream(t *testing.T) {
	for _, typ := range translatedTypes {
		for _, includeUsage := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/include_usage=%t", typ, includeUsage), func(t *testing.T) {
				g, f := fakeGateway(t, typ)
				params := userChat(f.model, "Say hello")
				if includeUsage {
					params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
				}
				var resp *http.Response
				c := g.client(t, keyAll)
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
				_ = stream.Close()
				if len(chunks) < 3 {
					t.Fatalf("got %d chunks, want at least 3", len(chunks))
				}
				if got := acc.Choices[0].Message.Content; got != f.content {
					t.Errorf("accumulated content = %q, want %q", got, f.content)
				}
				if fr := acc.Choices[0].FinishReason; fr != "stop" {
					t.Errorf("finish_reason = %q, want stop", fr)
				}
				if p := resp.Header.Get("X-Multipolar-Provider"); p != f.name {
					t.Errorf("x-multipolar-provider = %q, want %q", p, f.name)
				}
				last := chunks[len(chunks)-1]
				if includeUsage {
					for i, ch := range chunks[:len(chunks)-1] {
						if ch.JSON.Usage.Valid() && ch.Usage.TotalTokens != 0 {
							t.Errorf("chunk %d usage = %s, want usage only in the last chunk", i, ch.Usage.RawJSON())
						}
					}
					if len(last.Choices) != 0 {
						t.Errorf("usage chunk has %d choices, want 0", len(last.Choices))
					}
					checkOpenAIUsage(t, last.Usage, f)
				} else {
					for i, ch := range chunks {
						if strings.Contains(ch.RawJSON(), `"usage"`) {
							t.Errorf("chunk %d = %s, want no usage without include_usage", i, ch.RawJSON())
						}
					}
				}
			})
		}
	}
}

// TestTranslateOpenAIToolCall has each translated provider call a tool,
// plain and streamed, then sends the result back in a second turn.
func TestTranslateOpenAIToolCall(t *testing.T) {
	for _, typ := range translatedTypes {
		for _, streamed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%t", typ, streamed), func(t *testing.T) {
				g, f := fakeGateway(t, typ)
				c := g.client(t, keyAll)
				ctx := context.Background()
				f.toolCall("get_weather", weatherArgs)
				params := userChat(f.model, "What is the weather in Paris?")
				params.Tools = []openai.ChatCompletionToolUnionParam{weatherTool}

				var msg openai.ChatCompletionMessage
				var finish string
				if streamed {
					stream := c.Chat.Completions.NewStreaming(ctx, params)
					var acc openai.ChatCompletionAccumulator
					var finished []openai.FinishedChatCompletionToolCall
					for stream.Next() {
						acc.AddChunk(stream.Current())
						if tc, ok := acc.JustFinishedToolCall(); ok {
							finished = append(finished, tc)
						}
					}
					if err := stream.Err(); err != nil {
						t.Fatalf("stream.Err() = %v, want nil", err)
					}
					_ = stream.Close()
					if len(finished) != 1 || finished[0].Name != "get_weather" {
						t.Errorf("JustFinishedToolCall = %+v, want one get_weather call", finished)
					}
					msg, finish = acc.Choices[0].Message, acc.Choices[0].FinishReason
				} else {
					got, err := c.Chat.Completions.New(ctx, params)
					if err != nil {
						t.Fatalf("Chat.Completions.New: %v", err)
					}
					msg, finish = got.Choices[0].Message, got.Choices[0].FinishReason
				}
				if finish != "tool_calls" {
					t.Errorf("finish_reason = %q, want tool_calls", finish)
				}
				if len(msg.ToolCalls) != 1 {
					t.Fatalf("tool_calls = %+v, want 1", msg.ToolCalls)
				}
				call := msg.ToolCalls[0]
				if call.Function.Name != "get_weather" {
					t.Errorf("tool call name = %q, want get_weather", call.Function.Name)
				}
				if !jsonEqual(call.Function.Arguments, weatherArgs) {
					t.Errorf("tool call arguments = %s, want %s", call.Function.Arguments, weatherArgs)
				}
				if call.ID == "" {
					t.Error("tool call id is empty")
				}

				// Second turn: the tool's result goes back.
				const result = "Sunny, 24 degrees"
				params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage(result, call.ID))
				got, err := c.Chat.Completions.New(ctx, params)
				if err != nil {
					t.Fatalf("second turn: %v", err)
				}
				if c := got.Choices[0].Message.Content; c != f.content {
					t.Errorf("second turn content = %q, want %q", c, f.content)
				}
				bodies := f.bodies()
				if len(bodies) != 2 {
					t.Fatalf("upstream got %d requests, want 2", len(bodies))
				}
				f.toolResult(t, bodies[1], "get_weather", call.ID, result)
			})
		}
	}
}

// anthClient returns an Anthropic SDK client for the gateway that never
// retries and checks every answer against Anthropic's spec.
func (g *gateway) anthClient(t *testing.T, key string, opts ...anthoption.RequestOption) anthropic.Client {
	t.Helper()
	base := []anthoption.RequestOption{
		anthoption.WithBaseURL(g.URL),
		anthoption.WithAPIKey(key),
		anthoption.WithMaxRetries(0),
		anthoption.WithMiddleware(anthConformance(t)),
	}
	return anthropic.NewClient(append(base, opts...)...)
}

// anthConformance is conformance for Anthropic's spec: JSON answers whole,
// streams event by event against the component schemas.
func anthConformance(t *testing.T) anthoption.Middleware {
	return func(req *http.Request, next anthoption.MiddlewareNext) (*http.Response, error) {
		resp, err := next(req)
		if err != nil || resp == nil {
			return resp, err
		}
		method, path, status, header := req.Method, req.URL.Path, resp.StatusCode, resp.Header
		resp.Body = &anthCheckedBody{rc: resp.Body, check: func(b []byte) {
			t.Helper()
			validateAnthropic(t, method, path, status, header, b)
		}}
		return resp, nil
	}
}

// anthCheckedBody checks the body at EOF, or at Close once message_stop or
// an error event was read.
type anthCheckedBody struct {
	rc              io.ReadCloser
	buf             bytes.Buffer
	checked, failed bool
	check           func([]byte)
}

func (c *anthCheckedBody) Read(p []byte) (int, error) {
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

func (c *anthCheckedBody) Close() error {

	if b := c.buf.Bytes(); bytes.Contains(b, []byte("event: message_stop")) || bytes.Contains(b, []byte("event: error")) {
		c.finish()
	}
	return c.rc.Close()
}

func (c *anthCheckedBody) finish() {
	if !c.checked && !c.failed {
		c.checked = true
		c.check(c.buf.Bytes())
	}
}

// validateAnthropic checks one gateway answer against Anthropic's spec.
func validateAnthropic(t *testing.T, method, path string, status int, header http.Header, body []byte) {
	t.Helper()
	spec := oapispec.Anthropic(t)
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "text/event-stream" {
		spec.ValidateResponse(t, method, path, status, header, body)
		return
	}
	for _, ev := range sseEvents(body) {
		lines := strings.Split(string(ev), "\n")
		name, ok1 := strings.CutPrefix(lines[0], "event: ")
		data, ok2 := strings.CutPrefix(lines[len(lines)-1], "data: ")
		if len(lines) != 2 || !ok1 || !ok2 {
			t.Errorf("malformed Anthropic SSE event %q", ev)
			continue
		}
		switch name {
		case "ping":
		case "error":
			spec.ValidateSchema(t, "ErrorResponse", []byte(data))
		default:
			spec.ValidateSchema(t, "MessageStreamEvent", []byte(data))
			if typ := jget(decodeJSON(t, []byte(data)), "type"); typ != name {
				t.Errorf("event %q carries type %v", name, typ)
			}
		}
	}
}

// validateAnthropicRequests checks every messages request the fake got
// against Anthropic's spec; Vertex bodies are first turned back into the
// first-party body they stand for.
func validateAnthropicRequests(t *testing.T, s *fakeanthropic.Server) {
	t.Helper()
	spec := oapispec.Anthropic(t)
	for _, r := range s.Requests() {
		if r.Method != http.MethodPost {
			continue
		}
		path, body := r.Path, r.Body
		if i := strings.Index(path, "/publishers/anthropic/models/"); i >= 0 {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Errorf("vertex body %s: %v", body, err)
				continue
			}
			if m["anthropic_version"] != fakeanthropic.VertexVersion {
				t.Errorf("vertex body anthropic_version = %v, want %s", m["anthropic_version"], fakeanthropic.VertexVersion)
			}
			delete(m, "anthropic_version")
			seg := path[strings.LastIndex(path, "/")+1:]
			m["model"], _, _ = strings.Cut(seg, ":")
			path = "/v1/messages"
			var err error
			if body, err = json.Marshal(m); err != nil {
				t.Fatal(err)
			}
		}
		spec.ValidateRequest(t, r.Method, path, r.Header, body)
	}
}

// anthFake is a translated upstream as seen by an Anthropic client.
type anthTarget struct {
	typ      string
	setup    func(t *testing.T, env map[string]string) fake
	hasTools bool
}

// newOpenAIFake is the OpenAI fake as a translation target for Anthropic
// clients.
func newOpenAIFake(t *testing.T, _ map[string]string) fake {
	t.Helper()
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key, CachedTokens: oaCached})
	return fake{
		name: "oa", model: "gpt-4o", content: fakeupstream.DefaultContent,
		// 4 per message + 2 words, cached tokens inside the prompt.
		prompt: 6, completion: 5, cached: oaCached,
		anthUsage: [4]int64{6 - oaCached, oaCached, 0, 5},
		yaml:      fmt.Sprintf("{name: oa, type: openai, base_url: %q, api_key: \"${P1_KEY}\"}", u.URL+"/v1"),
		status: func(code int, ra string) {
			u.Enqueue(fakeupstream.Behavior{Status: code, RetryAfter: ra})
		},
		bodies: func() [][]byte {
			var out [][]byte
			for _, r := range u.Requests() {
				out = append(out, r.Body)
			}
			return out
		},
	}
}

var anthTargets = []anthTarget{
	{typ: "openai", setup: newOpenAIFake},
	{typ: config.TypeBedrock, hasTools: true, setup: func(t *testing.T, _ map[string]string) fake { return newBedrockFake(t) }},
	{typ: config.TypeGemini, hasTools: true, setup: func(t *testing.T, env map[string]string) fake { return newGeminiFake(t, false, env) }},
	{typ: config.TypeVertex, hasTools: true, setup: func(t *testing.T, env map[string]string) fake { return newGeminiFake(t, true, env) }},
}

func anthGateway(t *testing.T, tg anthTarget) (*gateway, fake) {
	t.Helper()
	env := translateEnv()
	f := tg.setup(t, env)
	g := startGatewayEnv(t, fmt.Sprintf(`
providers:
  - %s
models:
  - {name: %s, routes: [%s]}
`, f.yaml, f.model, f.name)+keysYAML, env)
	return g, f
}

func userMessage(model, text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 256,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

func checkAnthUsage(t *testing.T, u anthropic.Usage, want [4]int64) {
	t.Helper()
	got := [4]int64{u.InputTokens, u.CacheReadInputTokens, u.CacheCreationInputTokens, u.OutputTokens}
	if got != want {
		t.Errorf("usage input/cache_read/cache_creation/output = %v, want %v (%s)", got, want, u.RawJSON())
	}
}

// accumulate reads an Anthropic stream to its end.
func accumulate(t *testing.T, stream interface {
	Next() bool
	Current() anthropic.MessageStreamEventUnion
	Err() error
	Close() error
}) (anthropic.Message, error) {
	t.Helper()
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatalf("Accumulate(%s): %v", stream.Current().RawJSON(), err)
		}
	}
	err := stream.Err()
	_ = stream.Close()
	return msg, err
}

func textOf(m anthropic.Message) string {
	var b strings.Builder
	for _, c := range m.Content {
		if c.Type == "text" {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

// TestTranslateAnthropicMessages drives the OpenAI, Bedrock and Gemini
// fakes with the Anthropic SDK: Messages.New and NewStreaming give the same
// text and usage, and a scripted tool call arrives as tool_use.
func TestTranslateAnthropicMessages(t *testing.T) {
	for _, tg := range anthTargets {
		t.Run(tg.typ, func(t *testing.T) {
			g, f := anthGateway(t, tg)
			c := g.anthClient(t, keyAll)
			ctx := context.Background()

			var resp *http.Response
			msg, err := c.Messages.New(ctx, userMessage(f.model, "Say hello"), anthoption.WithResponseInto(&resp))
			if err != nil {
				t.Fatalf("Messages.New: %v", err)
			}
			if got := textOf(*msg); got != f.content {
				t.Errorf("text = %q, want %q", got, f.content)
			}
			if msg.StopReason != anthropic.StopReasonEndTurn {
				t.Errorf("stop_reason = %q, want end_turn", msg.StopReason)
			}
			if msg.Role != "assistant" || msg.Type != "message" {
				t.Errorf("role/type = %q/%q, want assistant/message", msg.Role, msg.Type)
			}
			checkAnthUsage(t, msg.Usage, f.anthUsage)
			if p := resp.Header.Get("X-Multipolar-Provider"); p != f.name {
				t.Errorf("x-multipolar-provider = %q, want %q", p, f.name)
			}

			smsg, err := accumulate(t, c.Messages.NewStreaming(ctx, userMessage(f.model, "Say hello")))
			if err != nil {
				t.Fatalf("stream.Err() = %v, want nil", err)
			}
			if got := textOf(smsg); got != f.content {
				t.Errorf("streamed text = %q, want %q", got, f.content)
			}
			if smsg.StopReason != anthropic.StopReasonEndTurn {
				t.Errorf("streamed stop_reason = %q, want end_turn", smsg.StopReason)
			}
			checkAnthUsage(t, smsg.Usage, f.anthUsage)
		})
	}
}

func anthWeatherTool() anthropic.ToolUnionParam {
	return anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
		Name:        "get_weather",
		Description: anthropic.String("Current weather of a city"),
		InputSchema: anthropic.ToolInputSchemaParam{
			Properties: map[string]any{"city": map[string]any{"type": "string"}},
			Required:   []string{"city"},
		},
	}}
}

// TestTranslateAnthropicToolUse scripts a tool call at the Bedrock and
// Gemini fakes; the Anthropic SDK sees tool_use with the scripted input,
// plain and streamed, and the tool result goes back in the fake's format.
// (fakeupstream cannot script tool calls, so the OpenAI fake is not here.)
func TestTranslateAnthropicToolUse(t *testing.T) {
	for _, tg := range anthTargets {
		if !tg.hasTools {
			continue
		}
		for _, streamed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%t", tg.typ, streamed), func(t *testing.T) {
				g, f := anthGateway(t, tg)
				c := g.anthClient(t, keyAll)
				ctx := context.Background()
				f.toolCall("get_weather", weatherArgs)
				params := userMessage(f.model, "What is the weather in Paris?")
				params.Tools = []anthropic.ToolUnionParam{anthWeatherTool()}
				var msg anthropic.Message
				if streamed {
					var err error
					if msg, err = accumulate(t, c.Messages.NewStreaming(ctx, params)); err != nil {
						t.Fatalf("stream.Err() = %v, want nil", err)
					}
				} else {
					m, err := c.Messages.New(ctx, params)
					if err != nil {
						t.Fatalf("Messages.New: %v", err)
					}
					msg = *m
				}
				if msg.StopReason != anthropic.StopReasonToolUse {
					t.Errorf("stop_reason = %q, want tool_use", msg.StopReason)
				}
				var uses []anthropic.ContentBlockUnion
				for _, b := range msg.Content {
					if b.Type == "tool_use" {
						uses = append(uses, b)
					}
				}
				if len(uses) != 1 {
					t.Fatalf("content = %+v, want one tool_use block", msg.Content)
				}
				if uses[0].Name != "get_weather" || uses[0].ID == "" {
					t.Errorf("tool_use name/id = %q/%q, want get_weather and an id", uses[0].Name, uses[0].ID)
				}
				if !jsonEqual(string(uses[0].Input), weatherArgs) {
					t.Errorf("tool_use input = %s, want %s", uses[0].Input, weatherArgs)
				}

				const result = "Sunny, 24 degrees"
				params.Messages = append(params.Messages, msg.ToParam(),
					anthropic.NewUserMessage(anthropic.NewToolResultBlock(uses[0].ID, result, false)))
				m2, err := c.Messages.New(ctx, params)
				if err != nil {
					t.Fatalf("second turn: %v", err)
				}
				if got := textOf(*m2); got != f.content {
					t.Errorf("second turn text = %q, want %q", got, f.content)
				}
				bodies := f.bodies()
				if len(bodies) != 2 {
					t.Fatalf("upstream got %d requests, want 2", len(bodies))
				}
				f.toolResult(t, bodies[1], "get_weather", uses[0].ID, result)
			})
		}
	}
}

// bodyCapture is Anthropic SDK middleware keeping the bytes of each
// request body it sends.
type bodyCapture struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (bc *bodyCapture) middleware(req *http.Request, next anthoption.MiddlewareNext) (*http.Response, error) {
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		bc.mu.Lock()
		bc.bodies = append(bc.bodies, b)
		bc.mu.Unlock()
	}
	return next(req)
}

func (bc *bodyCapture) all() [][]byte {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	return slices.Clone(bc.bodies)
}

// TestAnthropicPassthrough: an Anthropic client reaching the Anthropic fake
// gets its own bytes forwarded, with the provider's key in x-api-key and
// its anthropic-beta passed on; count_tokens goes through as well, and
// count_tokens for a model only Bedrock serves is a clear 400.
func TestAnthropicPassthrough(t *testing.T) {
	env := translateEnv()
	a := newAnthropicFake(t, false, env)
	b := newBedrockFake(t)
	g := startGatewayEnv(t, fmt.Sprintf(`
providers:
  - %s
  - %s
models:
  - {name: claude-sonnet-4-5, routes: [anth]}
  - {name: br-claude, routes: [br]}
`, a.yaml, b.yaml)+keysYAML, env)
	t.Cleanup(func() { validateAnthropicRequests(t, a.anth) })
	var capt bodyCapture
	const beta = "prompt-caching-2024-07-31"
	c := g.anthClient(t, keyAll, anthoption.WithMiddleware(capt.middleware), anthoption.WithHeader("anthropic-beta", beta))
	ctx := context.Background()

	params := userMessage("claude-sonnet-4-5", "Say hello")
	params.System = []anthropic.TextBlockParam{{Text: "Be brief."}}
	var resp *http.Response
	msg, err := c.Messages.New(ctx, params, anthoption.WithResponseInto(&resp))
	if err != nil {
		t.Fatalf("Messages.New: %v", err)
	}
	if got := textOf(*msg); got != fakeanthropic.DefaultContent {
		t.Errorf("text = %q, want %q", got, fakeanthropic.DefaultContent)
	}
	// 2 + 2 words + 4 per message.
	checkAnthUsage(t, msg.Usage, [4]int64{8, antCacheRead, antCacheWrite, 5})
	if p := resp.Header.Get("X-Multipolar-Provider"); p != "anth" {
		t.Errorf("x-multipolar-provider = %q, want anth", p)
	}
	smsg, err := accumulate(t, c.Messages.NewStreaming(ctx, params))
	if err != nil {
		t.Fatalf("stream.Err() = %v, want nil", err)
	}
	if got := textOf(smsg); got != fakeanthropic.DefaultContent {
		t.Errorf("streamed text = %q, want %q", got, fakeanthropic.DefaultContent)
	}
	checkAnthUsage(t, smsg.Usage, [4]int64{8, antCacheRead, antCacheWrite, 5})

	count, err := c.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
		Model:    "claude-sonnet-4-5",
		Messages: params.Messages,
	})
	if err != nil {
		t.Fatalf("CountTokens: %v", err)
	}
	if count.InputTokens != 6 {
		t.Errorf("count_tokens input_tokens = %d, want 6", count.InputTokens)
	}

	sent := capt.all()
	reqs := a.anth.Requests()
	if len(reqs) != 3 || len(sent) != 3 {
		t.Fatalf("fake got %d requests, client sent %d; want 3 and 3", len(reqs), len(sent))
	}
	wantPaths := []string{"/v1/messages", "/v1/messages", "/v1/messages/count_tokens"}
	for i, r := range reqs {
		if r.Path != wantPaths[i] {
			t.Errorf("request %d path = %q, want %q", i, r.Path, wantPaths[i])
		}
		if !bytes.Equal(r.Body, sent[i]) {
			t.Errorf("request %d body =\n%s\nwant the client's bytes\n%s", i, r.Body, sent[i])
		}
		if k := r.Header.Get("X-Api-Key"); k != antKey {
			t.Errorf("request %d x-api-key = %q, want the provider key", i, k)
		}
		if v := r.Header.Get("Authorization"); v != "" {
			t.Errorf("request %d Authorization = %q, want none", i, v)
		}
		if got := r.Header.Get("Anthropic-Beta"); got != beta {
			t.Errorf("request %d anthropic-beta = %q, want %q", i, got, beta)
		}
		if got := r.Header.Get("Anthropic-Version"); got == "" {
			t.Errorf("request %d has no anthropic-version", i)
		}
	}

	_, err = c.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "br-claude", Messages: params.Messages})
	var ae *anthropic.Error
	if !errors.As(err, &ae) {
		t.Fatalf("count_tokens on bedrock: error = %v (%T), want *anthropic.Error", err, err)
	}
	if ae.StatusCode != http.StatusBadRequest || ae.Type() != anthropic.ErrorTypeInvalidRequestError {
		t.Errorf("count_tokens on bedrock = %d %s, want 400 invalid_request_error (%s)", ae.StatusCode, ae.Type(), ae.RawJSON())
	}
	if n := len(b.bodies()); n != 0 {
		t.Errorf("bedrock got %d requests, want none", n)
	}
}

// TestAnthropicPassthroughVertex: an Anthropic client reaching Claude on
// Vertex gets its body with the model moved to the URL, a Google bearer
// token instead of a key, and a clear 400 for count_tokens, which the
// adapter does not speak on Vertex.
func TestAnthropicPassthroughVertex(t *testing.T) {
	g, f := fakeGateway(t, config.TypeVertexAnthropic)
	c := g.anthClient(t, keyAll)
	ctx := context.Background()
	msg, err := c.Messages.New(ctx, userMessage(f.model, "Say hello"))
	if err != nil {
		t.Fatalf("Messages.New: %v", err)
	}
	if got := textOf(*msg); got != f.content {
		t.Errorf("text = %q, want %q", got, f.content)
	}
	if !strings.HasPrefix(msg.ID, "msg_vrtx_") {
		t.Errorf("id = %q, want Vertex's msg_vrtx_ prefix passed through", msg.ID)
	}
	checkAnthUsage(t, msg.Usage, f.anthUsage)
	smsg, err := accumulate(t, c.Messages.NewStreaming(ctx, userMessage(f.model, "Say hello")))
	if err != nil {
		t.Fatalf("stream.Err() = %v, want nil", err)
	}
	if got := textOf(smsg); got != f.content {
		t.Errorf("streamed text = %q, want %q", got, f.content)
	}
	checkAnthUsage(t, smsg.Usage, f.anthUsage)

	_, err = c.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: anthropic.Model(f.model), Messages: userMessage(f.model, "hi").Messages})
	var ae *anthropic.Error
	if !errors.As(err, &ae) {
		t.Fatalf("count_tokens: error = %v (%T), want *anthropic.Error", err, err)
	}
	if ae.StatusCode != http.StatusBadRequest || ae.Type() != anthropic.ErrorTypeInvalidRequestError || !strings.Contains(ae.RawJSON(), `\"vxa\"`) {
		t.Errorf("count_tokens = %d %s %s, want 400 invalid_request_error naming vxa", ae.StatusCode, ae.Type(), ae.RawJSON())
	}

	reqs := f.anth.Requests()
	if len(reqs) != 2 {
		t.Fatalf("fake got %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		want := "/v1/projects/e2e-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5:" + []string{"rawPredict", "streamRawPredict"}[i]
		if r.Path != want {
			t.Errorf("request %d path = %q, want %q", i, r.Path, want)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+vertexToken {
			t.Errorf("request %d Authorization = %q, want the Vertex token", i, got)
		}
		if got := r.Header.Get("X-Api-Key"); got != "" {
			t.Errorf("request %d x-api-key = %q, want none", i, got)
		}
		if m := jget(decodeJSON(t, r.Body), "model"); m != nil {
			t.Errorf("request %d body model = %v, want none on Vertex", i, m)
		}
	}
}

// TestTranslateErrors maps upstream failures on translated paths to each
// SDK's error type and status.
func TestTranslateErrors(t *testing.T) {
	t.Run("429 to OpenAI client", func(t *testing.T) {
		g, f := fakeGateway(t, config.TypeAnthropic)
		f.status(http.StatusTooManyRequests, "7")
		var resp *http.Response
		_, err := ptr(g.client(t, keyAll)).Chat.Completions.New(context.Background(), userChat(f.model, "hi"), option.WithResponseInto(&resp))
		e := apiError(t, err)
		if e.StatusCode != http.StatusTooManyRequests {
			t.Errorf("status = %d, want 429", e.StatusCode)
		}
		if ra := e.Response.Header.Get("Retry-After"); ra != "7" {
			t.Errorf("Retry-After = %q, want 7", ra)
		}
	})
	t.Run("429 to Anthropic client", func(t *testing.T) {
		for _, tg := range anthTargets[:3] {
			t.Run(tg.typ, func(t *testing.T) {
				g, f := anthGateway(t, tg)
				f.status(http.StatusTooManyRequests, "9")
				_, err := ptr(g.anthClient(t, keyAll)).Messages.New(context.Background(), userMessage(f.model, "hi"))
				var ae *anthropic.Error
				if !errors.As(err, &ae) {
					t.Fatalf("error = %v (%T), want *anthropic.Error", err, err)
				}
				if ae.StatusCode != http.StatusTooManyRequests || ae.Type() != anthropic.ErrorTypeRateLimitError {
					t.Errorf("error = %d %s, want 429 rate_limit_error", ae.StatusCode, ae.Type())
				}
				if tg.typ == "openai" { // the only fake of the three that sends Retry-After
					if ra := ae.Response.Header.Get("Retry-After"); ra != "9" {
						t.Errorf("Retry-After = %q, want 9", ra)
					}
				}
			})
		}
	})
	t.Run("bedrock validation to OpenAI client", func(t *testing.T) {
		g, f := fakeGateway(t, config.TypeBedrock)
		f.status(http.StatusBadRequest, "")
		_, err := ptr(g.client(t, keyAll)).Chat.Completions.New(context.Background(), userChat(f.model, "hi"))
		e := apiError(t, err)
		if e.StatusCode != http.StatusBadRequest || e.Type != "invalid_request_error" {
			t.Errorf("error = %d %s, want 400 invalid_request_error", e.StatusCode, e.Type)
		}
		if !strings.Contains(e.Message, "br") {
			t.Errorf("message = %q, want it to name provider br", e.Message)
		}
	})
	t.Run("anthropic 529 only route", func(t *testing.T) {
		g, f := fakeGateway(t, config.TypeAnthropic)
		f.status(529, "")
		f.status(529, "")
		_, err := ptr(g.client(t, keyAll)).Chat.Completions.New(context.Background(), userChat(f.model, "hi"))
		if e := apiError(t, err); e.StatusCode != http.StatusBadGateway {
			t.Errorf("OpenAI client status = %d, want 502", e.StatusCode)
		}
		// An Anthropic client reaches the same fake by passthrough: every
		// route overloaded is Anthropic's own 529 overloaded_error.
		_, err = ptr(g.anthClient(t, keyAll)).Messages.New(context.Background(), userMessage(f.model, "hi"))
		var ae *anthropic.Error
		if !errors.As(err, &ae) {
			t.Fatalf("error = %v (%T), want *anthropic.Error", err, err)
		}
		if ae.StatusCode != 529 || ae.Type() != anthropic.ErrorTypeOverloadedError {
			t.Errorf("Anthropic client error = %d %s, want 529 overloaded_error", ae.StatusCode, ae.Type())
		}
	})
	t.Run("anthropic 529 fails over", func(t *testing.T) {
		env := translateEnv()
		a := newAnthropicFake(t, false, env)
		b := newBedrockFake(t)
		g := startGatewayEnv(t, fmt.Sprintf(`
providers:
  - %s
  - %s
models:
  - {name: claude-sonnet-4-5, routes: [anth, {provider: br, model: anthropic.claude-sonnet-4-5-v1:0}]}
`, a.yaml, b.yaml)+keysYAML, env)
		a.status(529, "")
		a.status(529, "")
		var resp *http.Response
		got, err := ptr(g.client(t, keyAll)).Chat.Completions.New(context.Background(), userChat("claude-sonnet-4-5", "hi"), option.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("OpenAI client: %v", err)
		}
		if got.Choices[0].Message.Content != fakebedrock.DefaultContent || resp.Header.Get("X-Multipolar-Provider") != "br" {
			t.Errorf("answer %q from %q, want bedrock's", got.Choices[0].Message.Content, resp.Header.Get("X-Multipolar-Provider"))
		}
		msg, err := ptr(g.anthClient(t, keyAll)).Messages.New(context.Background(), userMessage("claude-sonnet-4-5", "hi"), anthoption.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("Anthropic client: %v", err)
		}
		if textOf(*msg) != fakebedrock.DefaultContent || resp.Header.Get("X-Multipolar-Provider") != "br" {
			t.Errorf("answer %q from %q, want bedrock's", textOf(*msg), resp.Header.Get("X-Multipolar-Provider"))
		}
		if n := len(b.bodies()); n != 2 {
			t.Errorf("bedrock got %d requests, want 2", n)
		}
		if m, _ := json.Marshal(jget(decodeJSON(t, b.bodies()[0]), "messages")); !strings.Contains(string(m), "hi") {
			t.Errorf("bedrock messages = %s, want the prompt", m)
		}
	})
	t.Run("mid-stream error", func(t *testing.T) {
		for _, typ := range []string{config.TypeAnthropic, config.TypeBedrock} {
			t.Run("OpenAI client/"+typ, func(t *testing.T) {
				g, f := fakeGateway(t, typ)
				f.streamErr(2)
				stream := ptr(g.client(t, keyAll)).Chat.Completions.NewStreaming(context.Background(), userChat(f.model, "Say hello"))
				var text string
				for stream.Next() {
					if ch := stream.Current(); len(ch.Choices) > 0 {
						text += ch.Choices[0].Delta.Content
					}
				}
				if err := stream.Err(); err == nil {
					t.Errorf("stream.Err() = nil after %q, want the upstream's error", text)
				}
				_ = stream.Close()
			})
			t.Run("Anthropic client/"+typ, func(t *testing.T) {
				g, f := fakeGateway(t, typ)
				f.streamErr(2)
				msg, err := accumulate(t, ptr(g.anthClient(t, keyAll)).Messages.NewStreaming(context.Background(), userMessage(f.model, "Say hello")))
				if err == nil {
					t.Errorf("stream.Err() = nil after %q, want the upstream's error", textOf(msg))
				}
			})
		}
	})
}

// TestTranslateUnsupportedFeature: a feature Anthropic cannot honour is
// refused by name, and another route that can serves it.
func TestTranslateUnsupportedFeature(t *testing.T) {
	env := translateEnv()
	a := newAnthropicFake(t, false, env)
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	g := startGatewayEnv(t, fmt.Sprintf(`
providers:
  - %s
  - {name: compat, type: openai-compatible, base_url: %q, api_key: "${P1_KEY}"}
models:
  - {name: claude-only, routes: [{provider: anth, model: claude-sonnet-4-5}]}
  - {name: claude-or-compat, routes: [{provider: anth, model: claude-sonnet-4-5}, compat]}
`, a.yaml, u.URL+"/v1")+keysYAML, env)
	c := g.client(t, keyAll)
	tests := []struct {
		feature string
		set     func(p *openai.ChatCompletionNewParams)
	}{
		{"n", func(p *openai.ChatCompletionNewParams) { p.N = openai.Int(2) }},
		{"logit_bias", func(p *openai.ChatCompletionNewParams) { p.LogitBias = map[string]int64{"50256": -100} }},
	}
	for _, tc := range tests {
		t.Run(tc.feature, func(t *testing.T) {
			params := userChat("claude-only", "Say hello")
			tc.set(&params)
			_, err := c.Chat.Completions.New(context.Background(), params)
			e := apiError(t, err)
			if e.StatusCode != http.StatusBadRequest || e.Type != "invalid_request_error" {
				t.Errorf("error = %d %s, want 400 invalid_request_error", e.StatusCode, e.Type)
			}
			for _, want := range []string{fmt.Sprintf("feature %q", tc.feature), `"anth"`} {
				if !strings.Contains(e.Message, want) {
					t.Errorf("message = %q, want it to contain %s", e.Message, want)
				}
			}

			params.Model = "claude-or-compat"
			var resp *http.Response
			got, err := c.Chat.Completions.New(context.Background(), params, option.WithResponseInto(&resp))
			if err != nil {
				t.Fatalf("with a second route: %v", err)
			}
			if p := resp.Header.Get("X-Multipolar-Provider"); p != "compat" {
				t.Errorf("x-multipolar-provider = %q, want compat", p)
			}
			if len(got.Choices) == 0 || got.Choices[0].Message.Content != fakeupstream.DefaultContent {
				t.Errorf("choices = %+v, want the compat fake's answer", got.Choices)
			}
		})
	}
	if n := len(a.anth.Requests()); n != 0 {
		t.Errorf("anthropic fake got %d requests, want none: refusals send nothing", n)
	}
	if n := len(u.Requests()); n != len(tests) {
		t.Errorf("compat fake got %d requests, want %d", n, len(tests))
	}
}

// TestModelsAllTypes lists the models of a gateway with a provider of
// every type, in OpenAI's shape and in Anthropic's.
func TestModelsAllTypes(t *testing.T) {
	env := translateEnv()
	var yaml strings.Builder
	yaml.WriteString("providers:\n")
	u := newUpstream(t, fakeupstream.Options{APIKey: p1Key})
	fmt.Fprintf(&yaml, "  - {name: oa, type: openai, base_url: %q, api_key: \"${P1_KEY}\"}\n", u.URL+"/v1")
	fmt.Fprintf(&yaml, "  - {name: az, type: azure-openai, base_url: %q, api_key: \"${AZ_KEY}\", api_version: 2024-10-21}\n", u.URL)
	fmt.Fprintf(&yaml, "  - {name: compat, type: openai-compatible, base_url: %q}\n", u.URL+"/v1")
	models := []string{"gpt-4o", "gpt-az", "llama"}
	routes := []string{"oa", "az", "compat"}
	for _, typ := range translatedTypes {
		f := newFake(t, typ, env)
		yaml.WriteString("  - " + f.yaml + "\n")
		models = append(models, f.model+"-"+f.name)
		routes = append(routes, f.name)
	}
	yaml.WriteString("models:\n")
	for i, m := range models {
		fmt.Fprintf(&yaml, "  - {name: %s, routes: [%s]}\n", m, routes[i])
	}
	g := startGatewayEnv(t, yaml.String()+keysYAML, env)
	want := slices.Sorted(slices.Values(models))

	ids := func(key string) []string {
		page, err := ptr(g.client(t, key)).Models.List(context.Background())
		if err != nil {
			t.Fatalf("Models.List: %v", err)
		}
		var out []string
		for _, m := range page.Data {
			if m.Object != "model" {
				t.Errorf("model %q object = %q, want model", m.ID, m.Object)
			}
			out = append(out, m.ID)
		}
		return out
	}
	if diff := cmp.Diff(want, ids(keyAll)); diff != "" {
		t.Errorf("OpenAI Models.List (key all) ids (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"gpt-4o", "gpt-az"}, ids(keyGPT)); diff != "" {
		t.Errorf("OpenAI Models.List (key gpt-only) ids (-want +got):\n%s", diff)
	}

	page, err := ptr(g.anthClient(t, keyAll)).Models.List(context.Background(), anthropic.ModelListParams{})
	if err != nil {
		t.Fatalf("Anthropic Models.List: %v", err)
	}
	var got []string
	for _, m := range page.Data {
		if m.Type != "model" || m.DisplayName == "" || m.CreatedAt.IsZero() {
			t.Errorf("model %+v, want type model, a display name and created_at", m)
		}
		got = append(got, m.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Anthropic Models.List ids (-want +got):\n%s", diff)
	}
	if page.HasMore || page.FirstID != want[0] || page.LastID != want[len(want)-1] {
		t.Errorf("page has_more/first_id/last_id = %t/%q/%q, want false/%q/%q", page.HasMore, page.FirstID, page.LastID, want[0], want[len(want)-1])
	}
}

// decodeJSON decodes b into generic values.
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// jget walks v by object keys and array indexes (negative from the end);
// nil when the path does not exist.
func jget(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if k < 0 {
				k += len(a)
			}
			if !ok || k < 0 || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func asSlice(v any) []any { a, _ := v.([]any); return a }

// hasBlock reports whether the array blocks holds an object with every
// member of want.
func hasBlock(blocks any, want map[string]any) bool {
	for _, b := range asSlice(blocks) {
		m, ok := b.(map[string]any)
		if !ok {
			continue
		}
		all := true
		for k, v := range want {
			if m[k] != v {
				all = false
			}
		}
		if all {
			return true
		}
	}
	return false
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return cmp.Equal(x, y)
}

// ptr makes an SDK client value addressable, for its pointer methods.
func ptr[T any](v T) *T { return &v }
