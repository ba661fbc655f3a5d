package bedrock

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/testutil/fakebedrock"
)

const (
	testAKID   = "AKIAFAKEBEDROCK00001"
	testSecret = "fakeSecretKeyForTheFakeBedrock/0123456789"
	testModel  = "anthropic.claude-sonnet-4-5-20250929-v1:0"
)

// startFake serves a fake Bedrock that requires testAKID/testSecret in
// region, and returns a Provider pointed at it that signs with secret.
func startFake(t *testing.T, opts fakebedrock.Options, region, secret string) (*fakebedrock.Server, *Provider) {
	t.Helper()
	opts.AccessKeyID, opts.SecretAccessKey = testAKID, testSecret
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	fake := fakebedrock.New(opts)
	ts := httptest.NewServer(fake)
	t.Cleanup(func() {
		fake.Close()
		ts.Close()
	})
	u, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(context.Background(), Options{Name: "bedrock-test", Region: region, BaseURL: u,
		Credentials: StaticCredentials(testAKID, secret, "")})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return fake, p
}

func chatRequest(model string, stream bool) *llm.Request {
	return &llm.Request{
		UpstreamModel: model,
		Stream:        stream,
		System:        []llm.Part{{Type: llm.PartText, Text: "You are terse."}},
		Messages: []llm.Message{
			{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "Say hello"}}},
		},
		MaxTokens: 100,
		Tools: []llm.Tool{{Name: "get_weather", Description: "Weather for a city.",
			Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"}}}`)}},
	}
}

// do sends r through p and returns the answer; the caller closes its body.
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

func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// streamResult is what a stream decodes to, reassembled.
type streamResult struct {
	text     string
	toolID   string
	toolName string
	toolArgs string
	usage    llm.Usage
	stop     llm.StopReason
	errEv    error // Err of an EventError
	err      error // Next's final non-EOF error
	types    []llm.EventType
}

func decodeStream(t *testing.T, dec StreamDecoder) streamResult {
	t.Helper()
	var res streamResult
	for range 10000 {
		var ev llm.Event
		err := dec.Next(&ev)
		if errors.Is(err, io.EOF) {
			return res
		}
		if err != nil {
			res.err = err
			return res
		}
		res.types = append(res.types, ev.Type)
		switch ev.Type {
		case llm.EventBlockStart:
			if ev.Block == llm.PartToolCall {
				res.toolID, res.toolName = ev.ToolCallID, ev.ToolName
			}
		// Copy: ev.Text aliases the decoder's buffer, and "" + s is s.
		case llm.EventTextDelta:
			res.text += strings.Clone(ev.Text)
		case llm.EventToolArgsDelta:
			res.toolArgs += strings.Clone(ev.Text)
		case llm.EventUsage:
			res.usage = ev.Usage
		case llm.EventStop:
			res.stop = ev.StopReason
			if ev.Usage != res.usage {
				t.Errorf("EventStop.Usage = %+v, want the last EventUsage %+v", ev.Usage, res.usage)
			}
		case llm.EventError:
			res.errEv = ev.Err
		}
	}
	t.Fatal("stream did not end")
	return res
}

func kindOf(err error) apierr.Kind {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae.Kind
	}
	return apierr.Internal
}

// wantInputTokens is the fake's count for chatRequest: 4 per message + 2
// words + 3 system words.
const wantInputTokens = 4 + 2 + 3

func TestFakeConverse(t *testing.T) {
	fake, p := startFake(t, fakebedrock.Options{CacheReadTokens: 100, CacheWriteTokens: 20}, "us-east-1", testSecret)
	fake.Enqueue(
		fakebedrock.Behavior{Content: "Hello there, traveller."},
		fakebedrock.Behavior{Content: "Let me look.", ToolCall: &fakebedrock.ToolCall{ID: "tooluse_1", Name: "get_weather", Input: `{"city": "Paris"}`}},
	)

	resp := do(t, p, chatRequest(testModel, false))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", resp.StatusCode, readBody(t, resp))
	}
	out, err := p.DecodeChat(resp, readBody(t, resp))
	if err != nil {
		t.Fatalf("DecodeChat() = %v", err)
	}
	want := &llm.Response{
		ID:         resp.Header.Get("x-amzn-RequestId"),
		Model:      testModel,
		Content:    []llm.Part{{Type: llm.PartText, Text: "Hello there, traveller."}},
		StopReason: llm.StopEndTurn,
		Usage:      llm.Usage{InputTokens: wantInputTokens + 120, OutputTokens: 5, CachedTokens: 100, CacheWriteTokens: 20},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("DecodeChat() mismatch (-want +got):\n%s", diff)
	}

	resp = do(t, p, chatRequest(testModel, false))
	out, err = p.DecodeChat(resp, readBody(t, resp))
	if err != nil {
		t.Fatalf("DecodeChat() = %v", err)
	}
	wantContent := []llm.Part{
		{Type: llm.PartText, Text: "Let me look."},
		{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "tooluse_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}},
	}
	if diff := cmp.Diff(wantContent, out.Content); diff != "" {
		t.Errorf("DecodeChat() tool content mismatch (-want +got):\n%s", diff)
	}
	if out.StopReason != llm.StopToolUse {
		t.Errorf("DecodeChat().StopReason = %d, want StopToolUse", out.StopReason)
	}

	// The signature's credential scope names the region and service.
	for _, r := range fake.Requests() {
		auth := r.Header.Get("Authorization")
		if want := "Credential=" + testAKID + "/"; !strings.Contains(auth, want) {
			t.Errorf("Authorization = %q, want %q", auth, want)
		}
		if want := "/us-east-1/bedrock/aws4_request"; !strings.Contains(auth, want) {
			t.Errorf("Authorization = %q, want credential scope %q", auth, want)
		}
		if got := r.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", got)
		}
		if r.Model != testModel || r.Path != "/model/"+testModel+"/converse" {
			t.Errorf("fake saw model %q path %q, want %q", r.Model, r.Path, testModel)
		}
	}
}

func TestFakeConverseStream(t *testing.T) {
	const input = `{"city":"Paris","units":"metric","days":[1,2,3]}`
	fake, p := startFake(t, fakebedrock.Options{CacheReadTokens: 7, CacheWriteTokens: 3, Chunks: 4}, "us-east-1", testSecret)
	fake.Enqueue(
		fakebedrock.Behavior{Content: "Hello from the stream, friend."},
		fakebedrock.Behavior{Content: "Checking.", ToolCall: &fakebedrock.ToolCall{ID: "tooluse_9", Name: "get_weather", Input: input}},
	)

	resp := do(t, p, chatRequest(testModel, true))
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/vnd.amazon.eventstream" {
		t.Fatalf("status = %d %q, want 200 event stream", resp.StatusCode, ct)
	}
	got := decodeStream(t, p.NewStreamDecoder(resp.Body))
	if got.err != nil || got.errEv != nil {
		t.Fatalf("stream error = %v / %v", got.err, got.errEv)
	}
	if got.text != "Hello from the stream, friend." {
		t.Errorf("stream text = %q, want the scripted content", got.text)
	}
	wantTypes := []llm.EventType{llm.EventStart, llm.EventBlockStart, llm.EventTextDelta, llm.EventTextDelta,
		llm.EventTextDelta, llm.EventTextDelta, llm.EventBlockStop, llm.EventUsage, llm.EventStop}
	if diff := cmp.Diff(wantTypes, got.types); diff != "" {
		t.Errorf("event types mismatch (-want +got):\n%s", diff)
	}
	wantUsage := llm.Usage{InputTokens: wantInputTokens + 10, OutputTokens: 4, CachedTokens: 7, CacheWriteTokens: 3}
	if got.usage != wantUsage {
		t.Errorf("stream usage = %+v, want %+v", got.usage, wantUsage)
	}
	if got.stop != llm.StopEndTurn {
		t.Errorf("stream stop = %d, want StopEndTurn", got.stop)
	}

	resp = do(t, p, chatRequest(testModel, true))
	got = decodeStream(t, p.NewStreamDecoder(resp.Body))
	if got.err != nil {
		t.Fatalf("stream error = %v", got.err)
	}
	if got.toolArgs != input || got.toolID != "tooluse_9" || got.toolName != "get_weather" {
		t.Errorf("tool call = %q %q %q, want tooluse_9 get_weather %q", got.toolID, got.toolName, got.toolArgs, input)
	}
	if got.text != "Checking." || got.stop != llm.StopToolUse {
		t.Errorf("text %q stop %d, want %q StopToolUse", got.text, got.stop, "Checking.")
	}
	for _, r := range fake.Requests() {
		if got := r.Header.Get("Accept"); got != "application/vnd.amazon.eventstream" {
			t.Errorf("Accept = %q, want the event-stream type", got)
		}
	}
}

func TestFakeErrors(t *testing.T) {
	t.Run("wrong secret", func(t *testing.T) {
		_, p := startFake(t, fakebedrock.Options{}, "us-east-1", "not-the-secret")
		resp := do(t, p, chatRequest(testModel, false))
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status = %d, want 403", resp.StatusCode)
		}
		ae := p.DecodeError(resp, readBody(t, resp))
		if ae.Kind != apierr.UpstreamUnavailable {
			t.Errorf("DecodeError().Kind = %v, want upstream_unavailable", ae.Kind)
		}
		if strings.Contains(ae.Message, "signature") || strings.Contains(ae.Message, "Canonical") {
			t.Errorf("DecodeError().Message = %q quotes the auth failure", ae.Message)
		}
	})
	t.Run("wrong region", func(t *testing.T) {
		_, p := startFake(t, fakebedrock.Options{Region: "eu-west-1"}, "us-east-1", testSecret)
		resp := do(t, p, chatRequest(testModel, false))
		if ae := p.DecodeError(resp, readBody(t, resp)); resp.StatusCode != http.StatusForbidden || ae.Kind != apierr.UpstreamUnavailable {
			t.Errorf("status %d kind %v, want 403 upstream_unavailable", resp.StatusCode, ae.Kind)
		}
	})
	statuses := []struct {
		status int
		want   apierr.Kind
	}{
		{429, apierr.RateLimited},
		{400, apierr.BadRequest},
		{404, apierr.NotFound},
		{408, apierr.UpstreamTimeout},
		{500, apierr.UpstreamUnavailable},
		{503, apierr.UpstreamUnavailable},
	}
	for _, tc := range statuses {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			fake, p := startFake(t, fakebedrock.Options{}, "us-east-1", testSecret)
			fake.SetDefault(fakebedrock.Behavior{Status: tc.status})
			for _, stream := range []bool{false, true} {
				resp := do(t, p, chatRequest(testModel, stream))
				if resp.StatusCode != tc.status {
					t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
				}
				if ae := p.DecodeError(resp, readBody(t, resp)); ae.Kind != tc.want {
					t.Errorf("DecodeError(%d, stream=%v).Kind = %v, want %v", tc.status, stream, ae.Kind, tc.want)
				}
			}
		})
	}
}

func TestFakeStreamFailures(t *testing.T) {
	tests := []struct {
		exception string
		want      apierr.Kind
	}{
		{"throttlingException", apierr.RateLimited},
		{"modelStreamErrorException", apierr.UpstreamUnavailable},
		{"internalServerException", apierr.UpstreamUnavailable},
		{"serviceUnavailableException", apierr.UpstreamUnavailable},
		{"validationException", apierr.BadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.exception, func(t *testing.T) {
			fake, p := startFake(t, fakebedrock.Options{}, "us-east-1", testSecret)
			fake.Enqueue(fakebedrock.Behavior{StreamErrorAfter: 2, StreamException: tc.exception})
			resp := do(t, p, chatRequest(testModel, true))
			got := decodeStream(t, p.NewStreamDecoder(resp.Body))
			if got.err != nil {
				t.Fatalf("Next() = %v, want an EventError then io.EOF", got.err)
			}
			if got.errEv == nil || kindOf(got.errEv) != tc.want {
				t.Fatalf("EventError.Err = %v, want kind %v", got.errEv, tc.want)
			}
			if last := got.types[len(got.types)-1]; last != llm.EventError {
				t.Errorf("last event = %d, want EventError", last)
			}
		})
	}
	t.Run("cut", func(t *testing.T) {
		fake, p := startFake(t, fakebedrock.Options{}, "us-east-1", testSecret)
		fake.Enqueue(fakebedrock.Behavior{CutAfter: 2})
		resp := do(t, p, chatRequest(testModel, true))
		got := decodeStream(t, p.NewStreamDecoder(resp.Body))
		if got.err == nil {
			t.Fatalf("Next() after a cut = io.EOF, want an error (events %v)", got.types)
		}
		if got.stop != llm.StopUnknown || got.text == "" {
			t.Errorf("cut stream: text %q stop %d, want partial text and no stop", got.text, got.stop)
		}
	})
}

func TestFakeModelIDs(t *testing.T) {
	models := []string{
		"us.anthropic.claude-sonnet-4-5-20250929-v1:0",
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
		"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
	}
	fake, p := startFake(t, fakebedrock.Options{}, "us-east-1", testSecret)
	for _, m := range models {
		for _, stream := range []bool{false, true} {
			resp := do(t, p, chatRequest(m, stream))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("model %q stream=%v: status %d: %s", m, stream, resp.StatusCode, readBody(t, resp))
			}
			if stream {
				if got := decodeStream(t, p.NewStreamDecoder(resp.Body)); got.err != nil || got.text != fakebedrock.DefaultContent {
					t.Errorf("model %q stream: text %q err %v", m, got.text, got.err)
				}
			} else if out, err := p.DecodeChat(resp, readBody(t, resp)); err != nil || out.Model != m {
				t.Errorf("model %q: DecodeChat().Model = %q, %v", m, out.Model, err)
			}
		}
	}
	reqs := fake.Requests()
	if len(reqs) != 2*len(models) {
		t.Fatalf("fake saw %d requests, want %d", len(reqs), 2*len(models))
	}
	for i, r := range reqs {
		if want := models[i/2]; r.Model != want {
			t.Errorf("request %d: fake saw model %q, want %q", i, r.Model, want)
		}
	}
}

func TestFakeRegionScope(t *testing.T) {
	fake, p := startFake(t, fakebedrock.Options{Region: "ap-southeast-2"}, "ap-southeast-2", testSecret)
	resp := do(t, p, chatRequest(testModel, false))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	auth := fake.Requests()[0].Header.Get("Authorization")
	if want := "/ap-southeast-2/bedrock/aws4_request"; !strings.Contains(auth, want) {
		t.Errorf("Authorization = %q, want credential scope %q", auth, want)
	}
}

func TestFakeSessionToken(t *testing.T) {
	fake := fakebedrock.New(fakebedrock.Options{AccessKeyID: testAKID, SecretAccessKey: testSecret, SessionToken: "session-tok"})
	ts := httptest.NewServer(fake)
	defer ts.Close()
	defer fake.Close()
	u, _ := url.Parse(ts.URL)
	p, err := New(context.Background(), Options{Name: "b", Region: "us-east-1", BaseURL: u,
		Credentials: StaticCredentials(testAKID, testSecret, "session-tok"), Headers: map[string]string{"x-team": "ml"}})
	if err != nil {
		t.Fatal(err)
	}
	resp := do(t, p, chatRequest(testModel, false))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d: %s", resp.StatusCode, readBody(t, resp))
	}
	h := fake.Requests()[0].Header
	if h.Get("X-Amz-Security-Token") != "session-tok" || h.Get("X-Team") != "ml" {
		t.Errorf("headers = %v, want the session token and X-Team", h)
	}
}
