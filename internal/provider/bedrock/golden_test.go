package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/testutil/goldenfile"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// newTestProvider returns a provider with static credentials and no network.
func newTestProvider(t testing.TB, base string) *Provider {
	t.Helper()
	var u *url.URL
	if base != "" {
		var err error
		if u, err = url.Parse(base); err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(context.Background(), Options{
		Name:        "bedrock-test",
		Region:      "us-east-1",
		BaseURL:     u,
		Credentials: StaticCredentials(testAKID, testSecret, ""),
	})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return p
}

// goldenCases returns the case names of testdata/<prefix>*.in.json.
func goldenCases(t *testing.T, prefix string) []string {
	return goldenfile.Cases(t, prefix+"*", ".in.json")
}

// checkGolden compares got (indented JSON of v) with testdata/name.want.json,
// or rewrites it under -update.
func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".want.json")
	goldenfile.Check(t, path, got)
}

func readIn(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".in.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// errorView is how golden files record an *apierr.Error.
type errorView struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
}

func viewError(err error) *errorView {
	if err == nil {
		return nil
	}
	var ae *apierr.Error
	if !errors.As(err, &ae) {
		return &errorView{Kind: "not an *apierr.Error", Message: err.Error()}
	}
	return &errorView{Kind: ae.Kind.String(), Message: ae.Message, Code: ae.Code}
}

// requestGolden is the .want.json of a request case: the Converse request
// as sent, or the refusal.
type requestGolden struct {
	Method string          `json:"method,omitempty"`
	Path   string          `json:"path,omitempty"`
	Accept string          `json:"accept,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
	Error  *errorView      `json:"error,omitempty"`
}

// TestRequestGolden encodes testdata/request_*.in.json (an llm.Request) into
// the Converse request of request_*.want.json.
func TestRequestGolden(t *testing.T) {
	p := newTestProvider(t, "")
	for _, name := range goldenCases(t, "request_") {
		t.Run(name, func(t *testing.T) {
			var r llm.Request
			if err := json.Unmarshal(readIn(t, name), &r); err != nil {
				t.Fatal(err)
			}
			var g requestGolden
			req, err := p.NewChatRequest(context.Background(), &r)
			if err != nil {
				g.Error = viewError(err)
			} else {
				body, err := io.ReadAll(req.Body)
				if err != nil {
					t.Fatal(err)
				}
				var ind bytes.Buffer
				if err := json.Indent(&ind, body, "    ", "  "); err != nil {
					t.Fatalf("body is not JSON: %v\n%s", err, body)
				}
				g.Method, g.Path, g.Accept, g.Body = req.Method, req.URL.EscapedPath(), req.Header.Get("Accept"), ind.Bytes()
			}
			checkGolden(t, name, g)
		})
	}
}

// TestResponseGolden decodes testdata/response_*.in.json (a Converse
// answer) into the llm.Response of response_*.want.json.
func TestResponseGolden(t *testing.T) {
	p := newTestProvider(t, "")
	for _, name := range goldenCases(t, "response_") {
		t.Run(name, func(t *testing.T) {
			resp := &http.Response{
				StatusCode: http.StatusOK,
				Header:     http.Header{"X-Amzn-Requestid": {"req-" + name}},
				Request:    &http.Request{URL: &url.URL{Path: "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/converse", RawPath: "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"}},
			}
			out, err := p.DecodeChat(resp, readIn(t, name))
			if err != nil {
				checkGolden(t, name, map[string]any{"error": viewError(err)})
				return
			}
			checkGolden(t, name, out)
		})
	}
}

// streamMessage is one event-stream message of a stream golden input:
// headers as strings and a JSON payload.
type streamMessage struct {
	Headers map[string]string `json:"headers"`
	Payload json.RawMessage   `json:"payload"`
}

// streamInput is a stream golden input.
type streamInput struct {
	Messages []streamMessage `json:"messages"`
	// Truncate drops this many bytes from the end of the encoded stream.
	Truncate int `json:"truncate,omitempty"`
}

// headerOrder is the order Bedrock writes headers in.
var headerOrder = []string{":event-type", ":exception-type", ":error-code", ":error-message", ":content-type", ":message-type"}

// encodeStream builds the binary event stream of in.
func encodeStream(t testing.TB, msgs []streamMessage) []byte {
	t.Helper()
	enc := eventstream.NewEncoder()
	var buf bytes.Buffer
	for _, m := range msgs {
		var h eventstream.Headers
		for _, k := range headerOrder {
			if v, ok := m.Headers[k]; ok {
				h.Set(k, eventstream.StringValue(v))
			}
		}
		if err := enc.Encode(&buf, eventstream.Message{Headers: h, Payload: m.Payload}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// eventView is how golden files record an llm.Event.
type eventView struct {
	Type         string     `json:"type"`
	Index        int        `json:"index,omitempty"`
	Block        string     `json:"block,omitempty"`
	Text         string     `json:"text,omitempty"`
	ToolCallID   string     `json:"tool_call_id,omitempty"`
	ToolName     string     `json:"tool_name,omitempty"`
	Signature    string     `json:"signature,omitempty"`
	Usage        *llm.Usage `json:"usage,omitempty"`
	StopReason   string     `json:"stop_reason,omitempty"`
	StopSequence string     `json:"stop_sequence,omitempty"`
	Error        *errorView `json:"error,omitempty"`
}

var (
	eventNames = [...]string{"start", "block_start", "text_delta", "tool_args_delta", "block_stop", "usage", "stop", "error"}
	blockNames = [...]string{"text", "image", "tool_call", "tool_result", "thinking"}
	stopNames  = [...]string{"unknown", "end_turn", "max_tokens", "tool_use", "stop_sequence", "content_filter"}
)

// viewEvent copies ev's strings, which are valid only until the next Next.
func viewEvent(ev *llm.Event) eventView {
	v := eventView{Type: eventNames[ev.Type], Index: ev.Index, Text: strings.Clone(ev.Text), ToolCallID: strings.Clone(ev.ToolCallID),
		ToolName: strings.Clone(ev.ToolName), Signature: strings.Clone(ev.Signature), StopSequence: strings.Clone(ev.StopSequence),
		Error: viewError(ev.Err)}
	switch ev.Type {
	case llm.EventBlockStart:
		v.Block = blockNames[ev.Block]
	case llm.EventUsage, llm.EventStop:
		u := ev.Usage
		v.Usage = &u
	}
	if ev.Type == llm.EventStop {
		v.StopReason = stopNames[ev.StopReason]
	}
	return v
}

// streamGolden is the .want.json of a stream case.
type streamGolden struct {
	Events []eventView `json:"events"`
	// End is "EOF" or the error Next returned.
	End string `json:"end"`
}

// drain reads every event of dec.
func drain(t testing.TB, dec StreamDecoder) streamGolden {
	t.Helper()
	var g streamGolden
	for range 10000 {
		var ev llm.Event
		err := dec.Next(&ev)
		if errors.Is(err, io.EOF) {
			g.End = "EOF"
			return g
		}
		if err != nil {
			g.End = err.Error()
			return g
		}
		g.Events = append(g.Events, viewEvent(&ev))
	}
	t.Fatal("decoder did not end")
	return g
}

// TestStreamGolden decodes testdata/stream_*.in.json (event-stream messages
// encoded here with the SDK's encoder) into the events of
// stream_*.want.json.
func TestStreamGolden(t *testing.T) {
	p := newTestProvider(t, "")
	for _, name := range goldenCases(t, "stream_") {
		t.Run(name, func(t *testing.T) {
			var in streamInput
			if err := json.Unmarshal(readIn(t, name), &in); err != nil {
				t.Fatal(err)
			}
			raw := encodeStream(t, in.Messages)
			raw = raw[:len(raw)-in.Truncate]
			checkGolden(t, name, drain(t, p.NewStreamDecoder(bytes.NewReader(raw))))
		})
	}
}

// TestErrorDecode maps Bedrock error answers.
func TestErrorDecode(t *testing.T) {
	p := newTestProvider(t, "")
	const ns = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
	tests := []struct {
		name       string
		status     int
		typ        string
		body       string
		retryAfter string
		want       errorView
		wantRetry  string
	}{
		{"throttling", 429, "ThrottlingException" + ns, `{"message":"Too many requests, please wait before trying again."}`, "3",
			errorView{Kind: "rate_limited", Message: "the upstream provider is rate limiting requests"}, "3"},
		{"validation", 400, "ValidationException" + ns, `{"message":"Malformed input request, please reformat your input and try again."}`, "",
			errorView{Kind: "bad_request", Message: "bedrock-test: Malformed input request, please reformat your input and try again."}, ""},
		{"access denied", 403, "AccessDeniedException" + ns, `{"message":"You don't have access to the model with the specified model ID."}`, "",
			errorView{Kind: "upstream_unavailable", Message: "the upstream provider rejected the gateway's credentials"}, ""},
		{"bad signature", 403, "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/",
			`{"message":"The request signature we calculated does not match... The Canonical String for this request should have been 'POST /model/x'"}`, "",
			errorView{Kind: "upstream_unavailable", Message: "the upstream provider rejected the gateway's credentials"}, ""},
		{"unrecognized client", 403, "UnrecognizedClientException", `{"Message":"The security token included in the request is invalid."}`, "",
			errorView{Kind: "upstream_unavailable", Message: "the upstream provider rejected the gateway's credentials"}, ""},
		{"not found", 404, "ResourceNotFoundException" + ns, `{"message":"Could not resolve the foundation model"}`, "",
			errorView{Kind: "not_found", Message: "the model was not found at the upstream provider"}, ""},
		{"model timeout", 408, "ModelTimeoutException" + ns, `{"message":"Model has timed out"}`, "",
			errorView{Kind: "upstream_timeout", Message: "the upstream model timed out"}, ""},
		{"internal", 500, "InternalServerException" + ns, `{"message":"boom"}`, "",
			errorView{Kind: "upstream_unavailable", Message: "the upstream provider is not available"}, ""},
		{"unavailable", 503, "ServiceUnavailableException" + ns, `{"message":"Bedrock is unable to process your request."}`, "",
			errorView{Kind: "upstream_unavailable", Message: "the upstream provider is not available"}, ""},
		{"model not ready", 429, "ModelNotReadyException" + ns, `{"message":"Model is not ready"}`, "",
			errorView{Kind: "upstream_unavailable", Message: "the upstream provider is not available"}, ""},
		{"status only 429", 429, "", `not json`, "7",
			errorView{Kind: "rate_limited", Message: "the upstream provider is rate limiting requests"}, "7"},
		{"status only 400", 400, "", ``, "",
			errorView{Kind: "bad_request", Message: "bedrock-test: the upstream provider rejected the request"}, ""},
		{"status only 403", 403, "", `{"message":"secret detail"}`, "",
			errorView{Kind: "upstream_unavailable", Message: "the upstream provider rejected the gateway's credentials"}, ""},
		{"status only 502", 502, "", ``, "",
			errorView{Kind: "upstream_unavailable", Message: "the upstream provider is not available"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			if tc.typ != "" {
				resp.Header.Set("x-amzn-ErrorType", tc.typ)
			}
			if tc.retryAfter != "" {
				resp.Header.Set("Retry-After", tc.retryAfter)
			}
			ae := p.DecodeError(resp, []byte(tc.body))
			if got := *viewError(ae); got != tc.want {
				t.Errorf("DecodeError(%d %s) = %+v, want %+v", tc.status, tc.typ, got, tc.want)
			}
			if ae.RetryAfter != tc.wantRetry {
				t.Errorf("DecodeError(%d %s).RetryAfter = %q, want %q", tc.status, tc.typ, ae.RetryAfter, tc.wantRetry)
			}
			if ae.Cause == nil {
				t.Errorf("DecodeError(%d %s).Cause = nil, want Bedrock's message for logs", tc.status, tc.typ)
			}
		})
	}
}

// TestModelPath checks the escaping of model IDs, inference profiles and
// ARNs in the request path.
func TestModelPath(t *testing.T) {
	p := newTestProvider(t, "https://example.test/prefix/")
	tests := []struct{ model, want string }{
		{"anthropic.claude-3-haiku-20240307-v1:0", "/prefix/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "/prefix/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0",
			"/prefix/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.meta.llama3-2-1b-instruct-v1%3A0/converse"},
	}
	for _, tc := range tests {
		r := &llm.Request{UpstreamModel: tc.model, Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Text: "hi"}}}}}
		req, err := p.NewChatRequest(context.Background(), r)
		if err != nil {
			t.Fatalf("NewChatRequest(%q) = %v", tc.model, err)
		}
		if got := req.URL.EscapedPath(); got != tc.want {
			t.Errorf("NewChatRequest(%q).URL path = %q, want %q", tc.model, got, tc.want)
		}
		if got := modelFromPath(req.URL.EscapedPath()); got != tc.model {
			t.Errorf("modelFromPath(%q) = %q, want %q", req.URL.EscapedPath(), got, tc.model)
		}
		if req.URL.Host != "example.test" || req.Host != "example.test" {
			t.Errorf("NewChatRequest(%q) host = %q/%q, want example.test", tc.model, req.URL.Host, req.Host)
		}
	}
}

func ExampleStaticCredentials() {
	p, err := New(context.Background(), Options{
		Name:        "bedrock",
		Region:      "eu-west-1",
		Credentials: StaticCredentials("AKIDEXAMPLE", "secret", ""),
	})
	if err != nil {
		panic(err)
	}
	req, err := p.NewChatRequest(context.Background(), &llm.Request{
		UpstreamModel: "eu.anthropic.claude-3-haiku-20240307-v1:0",
		Messages:      []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Text: "Hello"}}}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(req.URL)
	// Output: https://bedrock-runtime.eu-west-1.amazonaws.com/model/eu.anthropic.claude-3-haiku-20240307-v1%3A0/converse
}
