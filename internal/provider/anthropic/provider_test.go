package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/proxy"
)

var (
	_ proxy.ChatProvider = (*Provider)(nil)
	_ proxy.Upstream     = (*Provider)(nil)
)

func TestPassthrough(t *testing.T) {
	body := []byte(`{"model":"fast","max_tokens":10,"messages":[{"role":"user","content":"model"}],"stream":true}`)
	raw := &llm.RawRequest{Op: llm.OpChat, Body: body, ModelStart: 9, ModelEnd: 15, Model: "fast", UpstreamModel: "claude-haiku-4-5", Stream: true}
	p := newFirstParty(t, "https://api.anthropic.com/v1/")
	ctx := ContextWithBeta(t.Context(), "prompt-caching-2024-07-31")
	req, err := p.NewRequest(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	got := readBody(t, req.Body)
	want := `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"model"}],"stream":true}`
	if string(got) != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	if req.URL.String() != "https://api.anthropic.com/v1/messages" || req.Header.Get("X-Api-Key") != "sk-ant-test" ||
		req.Header.Get("Anthropic-Version") != DefaultVersion || req.Header.Get("Anthropic-Beta") != "prompt-caching-2024-07-31" ||
		req.Header.Get("Accept") != "text/event-stream" {
		t.Errorf("request = %s %v", req.URL, req.Header)
	}
	raw.UpstreamModel = "fast"
	req, _ = p.NewRequest(t.Context(), raw)
	if got := readBody(t, req.Body); &got[0] != &body[0] && !bytes.Equal(got, body) {
		t.Errorf("same model rewrote the body")
	}

	v := newVertex(t, "https://us-east5-aiplatform.googleapis.com")
	raw.UpstreamModel = "claude-haiku-4-5@20251001"
	body2 := []byte(`{ "anthropic_version":"old", "model" : "fast","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"stream":true}`)
	raw.Body = body2
	req, err = v.NewRequest(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	got = readBody(t, req.Body)
	want = `{"max_tokens":10,"messages":[{"role":"user","content":"hi"}],"stream":true,"anthropic_version":"vertex-2023-10-16"}`
	if string(got) != want {
		t.Errorf("vertex body = %s, want %s", got, want)
	}
	if !strings.HasSuffix(req.URL.Path, "/models/claude-haiku-4-5@20251001:streamRawPredict") || req.Header.Get("Authorization") != "Bearer ya29.token" || req.Header.Get("X-Api-Key") != "" {
		t.Errorf("vertex request = %s %v", req.URL, req.Header)
	}
}

func TestNewValidation(t *testing.T) {
	if _, err := New(Options{Name: "v", Vertex: true, Region: "us-east5"}); err == nil {
		t.Error("New(vertex without project/token) succeeded")
	}
	p, err := New(Options{Name: "g", Vertex: true, Project: "p", Region: "global", TokenSource: staticToken})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := p.NewChatRequest(t.Context(), chatRequest(false))
	if req.URL.Host != "aiplatform.googleapis.com" {
		t.Errorf("global host = %s", req.URL.Host)
	}
	failing := func(context.Context) (string, error) { return "", errors.New("no creds") }
	p, _ = New(Options{Name: "v", Vertex: true, Project: "p", Region: "r", TokenSource: failing})
	if _, err := p.NewChatRequest(t.Context(), chatRequest(false)); err == nil {
		t.Error("token failure not reported")
	}
}

func TestRefusals(t *testing.T) {
	p := newFirstParty(t, "https://api.anthropic.com")
	seed, pen := int64(1), 0.5
	tests := []struct {
		name    string
		mod     func(r *llm.Request)
		feature string
	}{
		{"unsupported", func(r *llm.Request) { r.Unsupported = []string{"audio", "x"} }, "audio"},
		{"n", func(r *llm.Request) { r.N = 2 }, "n"},
		{"seed", func(r *llm.Request) { r.Seed = &seed }, "seed"},
		{"presence", func(r *llm.Request) { r.PresencePenalty = &pen }, "presence_penalty"},
		{"frequency", func(r *llm.Request) { r.FrequencyPenalty = &pen }, "frequency_penalty"},
		{"json_object", func(r *llm.Request) { r.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONObject} }, "response_format"},
		{"effort", func(r *llm.Request) { r.ReasoningEffort = "extreme" }, "reasoning_effort"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := chatRequest(false)
			tc.mod(r)
			_, err := p.NewChatRequest(t.Context(), r)
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Kind != apierr.BadRequest {
				t.Fatalf("NewChatRequest = %v, want bad_request", err)
			}
			want := `feature "` + tc.feature + `" is not supported by provider "claude"`
			if ae.Message != want {
				t.Errorf("message = %q, want %q", ae.Message, want)
			}
		})
	}
}

func TestDefaultMaxTokens(t *testing.T) {
	for model, want := range map[string]int{
		"claude-3-haiku-20240307": 4096, "claude-3-5-sonnet-20241022": 8192, "claude-sonnet-4-5": 8192,
		"claude-opus-4-1@20250805": 8192, "my-custom": 4096,
	} {
		if got := defaultMax(model); got != want {
			t.Errorf("defaultMax(%q) = %d, want %d", model, got, want)
		}
	}
}

func TestDecodeErrorShapes(t *testing.T) {
	p := newFirstParty(t, "https://api.anthropic.com")
	google := `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`
	e := p.DecodeError(&http.Response{StatusCode: 401, Header: http.Header{}}, []byte(google))
	if e.Kind != apierr.UpstreamUnavailable || strings.Contains(e.Message, "credentials.") {
		t.Errorf("vertex 401 = %v", e)
	}
	e = p.DecodeError(&http.Response{StatusCode: 429, Header: http.Header{"Retry-After-Ms": {"1500"}}}, []byte("not json"))
	if e.Kind != apierr.RateLimited || e.RetryAfter != "2" {
		t.Errorf("429 = %v retry %q", e, e.RetryAfter)
	}
	e = p.DecodeError(&http.Response{StatusCode: 400, Header: http.Header{}}, []byte(`{"type":"error","error":{"type":"invalid_request_error","message":"messages: bad"}}`))
	if e.Kind != apierr.BadRequest || e.Message != "claude: messages: bad" {
		t.Errorf("400 = %v", e)
	}
}

func TestDecodeCountTokens(t *testing.T) {
	if n, err := DecodeCountTokens([]byte(`{"input_tokens":42}`)); n != 42 || err != nil {
		t.Errorf("DecodeCountTokens = %d, %v", n, err)
	}
	if _, err := DecodeCountTokens([]byte(`{}`)); err == nil {
		t.Error("DecodeCountTokens({}) succeeded")
	}
}

func TestStreamDecoderLimits(t *testing.T) {
	p := newFirstParty(t, "https://api.anthropic.com")
	long := "data: " + strings.Repeat("x", MaxLineSize+10) + "\n\n"
	var ev llm.Event
	if err := p.NewStreamDecoder(strings.NewReader(long)).Next(&ev); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("long line: Next = %v, want ErrLineTooLong", err)
	}
	cut := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"x\",\"usage\":{}}}\n\n"
	d := p.NewStreamDecoder(strings.NewReader(cut))
	for {
		err := d.Next(&ev)
		if err == nil {
			continue
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut stream: Next = %v, want io.ErrUnexpectedEOF", err)
		}
		break
	}
	if err := p.NewStreamDecoder(strings.NewReader("data: {bad\n\n")).Next(&ev); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("malformed data: Next = %v", err)
	}
}

const benchEvent = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"The quick brown fox \\\"jumps\\\" over the lazy dog.\"}}\n\n"

// repeatReader yields the same event forever.
type repeatReader struct {
	s string
	i int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.i:])
		n += c
		r.i = (r.i + c) % len(r.s)
	}
	return n, nil
}

func TestStreamDecoderAllocs(t *testing.T) {
	p := newFirstParty(t, "https://api.anthropic.com")
	d := p.NewStreamDecoder(&repeatReader{s: benchEvent})
	var ev llm.Event
	for range 10 {
		_ = d.Next(&ev)
	}
	if n := testing.AllocsPerRun(500, func() {
		if err := d.Next(&ev); err != nil || ev.Text == "" {
			t.Fatalf("Next = %v %+v", err, ev)
		}
	}); n != 0 {
		t.Errorf("Next allocates %v times per event, want 0", n)
	}
}

func BenchmarkStreamDecoder(b *testing.B) {
	p, _ := New(Options{Name: "b"})
	d := p.NewStreamDecoder(&repeatReader{s: benchEvent})
	var ev llm.Event
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	for b.Loop() {
		if err := d.Next(&ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewChatRequest(b *testing.B) {
	p, _ := New(Options{Name: "b"})
	r := chatRequest(true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.NewChatRequest(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzStreamDecoder(f *testing.F) {
	f.Add([]byte(benchEvent))
	f.Add([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\\u00e9\",\"usage\":{\"input_tokens\":1}}}\n\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"x\\ud83d\\ude00\"}}\n\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"o\"}}\n\n"))
	f.Add([]byte("data: {\"type\":\"content_block_delta\",\"index\":99,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"\\\\\\u12\"}}\n\n"))
	p, _ := New(Options{Name: "f"})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := p.NewStreamDecoder(bytes.NewReader(in))
		var ev llm.Event
		for range 10000 {
			if err := d.Next(&ev); err != nil {
				return
			}
			_ = json.Valid([]byte(ev.Text))
		}
		t.Fatal("decoder did not end")
	})
}
