package oapispec

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Errorf and Fatalf calls instead of
// failing, so the tests can check that bad documents are rejected.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	panic("recorder: Fatalf") // callers never expect Fatalf to return
}

// check runs f against a recorder and requires it to pass (wantErr == "") or
// to report an error containing wantErr.
func check(t *testing.T, wantErr string, f func(tb testing.TB)) {
	t.Helper()
	r := &recorder{TB: t}
	f(r)
	got := strings.Join(r.errs, "\n")
	switch {
	case wantErr == "" && len(r.errs) > 0:
		t.Errorf("validation failed, want pass:\n%s", got)
	case wantErr != "" && len(r.errs) == 0:
		t.Errorf("validation passed, want an error containing %q", wantErr)
	case wantErr != "" && !strings.Contains(got, wantErr):
		t.Errorf("validation error = %s\nwant it to contain %q", got, wantErr)
	default:
		if len(r.errs) > 0 {
			t.Logf("reported as expected:\n%s", got)
		}
	}
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

const chatCompletion = `{
  "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4.1-2025-04-14",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Hello! How can I assist you today?",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 19,
    "completion_tokens": 10,
    "total_tokens": 29,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_50cad350e4"
}`

const chatChunk = `{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,` +
	`"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb",` +
	`"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}]}`

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		load func(testing.TB) *Spec
	}{
		{"openai", OpenAI},
		{"anthropic", Anthropic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			s := tc.load(t)
			t.Logf("%s spec loaded in %v (first call per process; later calls are free)", tc.name, time.Since(start))
			if tc.load(t) != s {
				t.Errorf("%s: second call returned a different *Spec", tc.name)
			}
		})
	}
}

func TestOpenAIResponses(t *testing.T) {
	s := OpenAI(t)
	noChoices := strings.Replace(chatCompletion, `"choices"`, `"choices_removed"`, 1)
	noRefusal := strings.Replace(chatCompletion, `"refusal": null,`, ``, 1)
	for _, tc := range []struct {
		name         string
		method, path string
		status       int
		header       http.Header
		body         string
		wantErr      string
	}{
		{"chat completion", "POST", "/v1/chat/completions", 200, jsonHeader, chatCompletion, ""},
		{"chat completion without /v1", "POST", "/chat/completions", 200, jsonHeader, chatCompletion, ""},
		{"chat completion charset", "POST", "/v1/chat/completions", 200,
			http.Header{"Content-Type": {"application/json; charset=utf-8"}}, chatCompletion, ""},
		{"chat completion missing choices", "POST", "/v1/chat/completions", 200, jsonHeader, noChoices,
			`"": missing property 'choices'`},
		{"chat completion missing refusal", "POST", "/v1/chat/completions", 200, jsonHeader, noRefusal,
			`"/choices/0/message": missing property 'refusal'`},
		{"chat completion wrong content type", "POST", "/v1/chat/completions", 200,
			http.Header{"Content-Type": {"text/plain"}}, chatCompletion, `Content-Type "text/plain" is not declared`},
		{"chat completion not JSON", "POST", "/v1/chat/completions", 200, jsonHeader, `{"id":`, "not valid JSON"},
		{"unknown path", "POST", "/v1/chat/nope", 200, jsonHeader, `{}`, "no operation POST /v1/chat/nope"},
		{"chat completion stream", "POST", "/v1/chat/completions", 200,
			http.Header{"Content-Type": {"text/event-stream"}},
			"data: " + chatChunk + "\n\ndata: [DONE]\n\n", ""},
		{"chat completion broken stream", "POST", "/v1/chat/completions", 200,
			http.Header{"Content-Type": {"text/event-stream"}},
			"data: " + chatChunk + "\n\ndata: {\"id\":\"x\"}\n\ndata: [DONE]\n\n", "SSE event 1"},
		{"error 400", "POST", "/v1/chat/completions", 400, jsonHeader,
			`{"error":{"message":"x","type":"invalid_request_error","param":null,"code":null}}`, ""},
		{"error 401", "POST", "/v1/chat/completions", 401, jsonHeader,
			`{"error":{"message":"x","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, ""},
		{"error 429 declared", "POST", "/v1/chat/completions", 429, jsonHeader,
			`{"error":{"message":"x","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, ""},
		{"error 500 flat", "POST", "/v1/chat/completions", 500, jsonHeader, `{"message":"x"}`,
			`"": missing property 'error'`},
		{"error 429 flat", "POST", "/v1/chat/completions", 429, jsonHeader, `{"message":"x"}`, "missing property"},
		{"undeclared success status", "POST", "/v1/chat/completions", 201, jsonHeader, chatCompletion,
			"status 201 is not declared"},
		{"embeddings", "POST", "/v1/embeddings", 200, jsonHeader, `{
  "object": "list",
  "data": [{"object": "embedding", "embedding": [0.0023064255, -0.009327292, -0.0028842222], "index": 0}],
  "model": "text-embedding-3-small",
  "usage": {"prompt_tokens": 8, "total_tokens": 8}
}`, ""},
		{"embeddings without usage", "POST", "/v1/embeddings", 200, jsonHeader,
			`{"object":"list","data":[],"model":"m"}`, "missing property 'usage'"},
		{"models", "GET", "/v1/models", 200, jsonHeader, `{
  "object": "list",
  "data": [
    {"id": "gpt-4.1", "object": "model", "created": 1744316542, "owned_by": "system"},
    {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "system"}
  ]
}`, ""},
		{"model", "GET", "/v1/models/gpt-4.1", 200, jsonHeader,
			`{"id": "gpt-4.1", "object": "model", "created": 1744316542, "owned_by": "system"}`, ""},
		{"model bad object", "GET", "/v1/models/gpt-4.1", 200, jsonHeader,
			`{"id": "gpt-4.1", "object": "models", "created": 1744316542, "owned_by": "system"}`, `"/object"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.wantErr, func(tb testing.TB) {
				s.ValidateResponse(tb, tc.method, tc.path, tc.status, tc.header, []byte(tc.body))
			})
		})
	}
}

func TestOpenAISchemas(t *testing.T) {
	s := OpenAI(t)
	for _, tc := range []struct {
		name, component, doc, wantErr string
	}{
		{"chunk", "CreateChatCompletionStreamResponse", chatChunk, ""},
		{"usage chunk", "CreateChatCompletionStreamResponse",
			`{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini",` +
				`"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}`, ""},
		{"chunk with wrong object", "CreateChatCompletionStreamResponse",
			strings.Replace(chatChunk, `"chat.completion.chunk"`, `"chat.completion"`, 1), `"/object"`},
		{"chunk without delta", "CreateChatCompletionStreamResponse",
			strings.Replace(chatChunk, `"delta"`, `"deltas"`, 1), `"/choices/0": missing property 'delta'`},
		{"error", "ErrorResponse", `{"error":{"message":"x","type":"invalid_request_error","param":null,"code":null}}`, ""},
		{"flat error", "ErrorResponse", `{"message":"x"}`, "missing property 'error'"},
		{"error without param", "ErrorResponse", `{"error":{"message":"x","type":"t","code":null}}`,
			`"/error": missing property 'param'`},
		{"unknown component", "NoSuchSchema", `{}`, `no component schema "NoSuchSchema"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.wantErr, func(tb testing.TB) { s.ValidateSchema(tb, tc.component, []byte(tc.doc)) })
		})
	}
}

func TestOpenAIRequests(t *testing.T) {
	s := OpenAI(t)
	for _, tc := range []struct {
		name, body, wantErr string
	}{
		{"chat with nullable fields", `{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":null,"stream":true,"stream_options":{"include_usage":true}}`, ""},
		{"chat without messages", `{"model":"gpt-4.1"}`, "missing property 'messages'"},
		{"chat bad role", `{"model":"gpt-4.1","messages":[{"role":"robot","content":"hi"}]}`, `"/messages/0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.wantErr, func(tb testing.TB) {
				s.ValidateRequest(tb, "POST", "/v1/chat/completions", jsonHeader, []byte(tc.body))
			})
		})
	}
}

const anthropicMessage = `{
  "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
  "type": "message",
  "role": "assistant",
  "model": "claude-sonnet-4-5-20250929",
  "content": [{"type": "text", "text": "Hi! My name is Claude.", "citations": null}],
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "stop_details": null,
  "diagnostics": null,
  "container": null,
  "usage": {
    "input_tokens": 2095,
    "output_tokens": 503,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "cache_creation": null,
    "server_tool_use": null,
    "service_tier": "standard",
    "inference_geo": null,
    "output_tokens_details": null,
    "speed": null
  }
}`

func TestAnthropic(t *testing.T) {
	s := Anthropic(t)
	request := func(body string) func(testing.TB) {
		return func(tb testing.TB) { s.ValidateRequest(tb, "POST", "/v1/messages", jsonHeader, []byte(body)) }
	}
	response := func(status int, body string) func(testing.TB) {
		return func(tb testing.TB) { s.ValidateResponse(tb, "POST", "/v1/messages", status, jsonHeader, []byte(body)) }
	}
	for _, tc := range []struct {
		name    string
		f       func(testing.TB)
		wantErr string
	}{
		{"request", request(`{"model":"claude-sonnet-4-5","max_tokens":1024,` +
			`"system":"Be brief.","messages":[{"role":"user","content":"Hello, Claude"}],"stream":false}`), ""},
		{"request with blocks", request(`{"model":"claude-sonnet-4-5","max_tokens":1024,` +
			`"messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]},` +
			`{"role":"assistant","content":[{"type":"text","text":"Hi"}]},{"role":"user","content":"Go on"}]}`), ""},
		{"request without max_tokens", request(`{"model":"claude-sonnet-4-5",` +
			`"messages":[{"role":"user","content":"Hello, Claude"}]}`), "missing property 'max_tokens'"},
		{"request bad role", request(`{"model":"claude-sonnet-4-5","max_tokens":1,` +
			`"messages":[{"role":"robot","content":"Hello"}]}`), `"/messages/0/role"`},
		{"response", response(200, anthropicMessage), ""},
		{"response without usage", response(200, strings.Replace(anthropicMessage, `"usage"`, `"usage_x"`, 1)),
			"missing property 'usage'"},
		{"text block without citations", response(200, strings.Replace(anthropicMessage, `, "citations": null`, ``, 1)),
			`"/content/0": missing property 'citations' (schema #/components/schemas/ResponseTextBlock)`},
		{"error response", response(400, `{"type":"error","error":{"type":"invalid_request_error",`+
			`"message":"max_tokens: Field required"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`), ""},
		{"overloaded response", response(529, `{"type":"error","error":{"type":"overloaded_error",`+
			`"message":"Overloaded"},"request_id":null}`), ""},
		{"flat error response", response(400, `{"message":"x"}`), "missing properties 'error', 'request_id', 'type'"},
		{"schema", func(tb testing.TB) { s.ValidateSchema(tb, "Message", []byte(anthropicMessage)) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.wantErr, tc.f) })
	}
}

func TestECMARegexp(t *testing.T) {
	for _, tc := range []struct {
		pattern, in string
		want        bool
	}{
		{`^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$`, "plain title", true},
		{`^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$`, "line\u2028sep", false},
		{`^\\u0041$`, `\u0041`, true}, // escaped backslash, then a literal "u0041"
		{`^\u0041$`, "A", true},
	} {
		re, err := ecmaRegexp(tc.pattern)
		if err != nil {
			t.Errorf("ecmaRegexp(%q) error: %v", tc.pattern, err)
			continue
		}
		if got := re.MatchString(tc.in); got != tc.want {
			t.Errorf("ecmaRegexp(%q).MatchString(%q) = %v, want %v", tc.pattern, tc.in, got, tc.want)
		}
	}
}

func TestMatchTemplate(t *testing.T) {
	for _, tc := range []struct {
		tmpl, path string
		want       int
		ok         bool
	}{
		{"/models", "/models", 0, true},
		{"/models/{model}", "/models/gpt-4.1", 1, true},
		{"/models/{model}", "/models/", 0, false},
		{"/models/{model}", "/models", 0, false},
		{"/chat/completions", "/chat/completion", 0, false},
	} {
		got, ok := matchTemplate(tc.tmpl, tc.path)
		if got != tc.want || ok != tc.ok {
			t.Errorf("matchTemplate(%q, %q) = %d, %v, want %d, %v", tc.tmpl, tc.path, got, ok, tc.want, tc.ok)
		}
	}
}
