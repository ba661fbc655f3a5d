package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/testutil/goldenfile"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/proxy"
	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

// Interface guards: proxy declares StreamEncoder as an alias of an unnamed
// interface type, so Translator satisfies proxy.Ingress structurally.
var (
	_ proxy.Ingress       = Translator{}
	_ proxy.StreamEncoder = (*ChunkEncoder)(nil)
)

func init() {
	now = func() time.Time { return time.Unix(1735689600, 0) }
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	goldenfile.Check(t, path, got)
}

// cases returns the case names of testdata/dir/*.in.json.
func cases(t *testing.T, dir string) []string { return goldenfile.Cases(t, dir+"/*", ".in.json") }

func TestDecodeChatGolden(t *testing.T) {
	for _, name := range cases(t, "request") {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "request", name+".in.json"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := DecodeChat(in)
			if err != nil {
				t.Fatalf("DecodeChat(%s) error: %v", name, err)
			}
			got, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("request", name+".want.json"), append(got, '\n'))
		})
	}
}

func TestDecodeChatDetails(t *testing.T) {
	r, err := DecodeChat([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":5,"stop":"END","safety_identifier":"sid","parallel_tool_calls":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxTokens != 5 || !cmp.Equal(r.Stop, []string{"END"}) || r.User != "sid" || r.ToolChoice.DisableParallel {
		t.Errorf("DecodeChat = MaxTokens %d, Stop %q, User %q, DisableParallel %v; want 5, [END], sid, false",
			r.MaxTokens, r.Stop, r.User, r.ToolChoice.DisableParallel)
	}
	r, err = DecodeChat([]byte(`{"model":"m","messages":[{"role":"user","content":"x"}],"store":true,"metadata":{"a":"b"},"service_tier":"priority","prompt_cache_key":"k","logprobs":false,"modalities":["text"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Unsupported) != 0 {
		t.Errorf("DecodeChat(ignored fields).Unsupported = %q, want none", r.Unsupported)
	}
}

func TestDecodeChatErrors(t *testing.T) {
	tests := []struct {
		name, body, param string
	}{
		{"not json", `{"model":`, ""},
		{"array body", `[1]`, ""},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, "model"},
		{"no messages", `{"model":"m"}`, "messages"},
		{"messages not array", `{"model":"m","messages":{}}`, "messages"},
		{"bad role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, "messages[0].role"},
		{"missing role", `{"model":"m","messages":[{"content":"x"}]}`, "messages[0].role"},
		{"content number", `{"model":"m","messages":[{"role":"user","content":5}]}`, "messages[0].content"},
		{"bad part type", `{"model":"m","messages":[{"role":"user","content":[{"type":"video"}]}]}`, "messages[0].content[0].type"},
		{"image no url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}`, "messages[0].content[0].image_url.url"},
		{"image bad scheme", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"image bad data url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"image in system", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]}`, "messages[0].content[0].type"},
		{"tool without id", `{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id"},
		{"tool call bad type", `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"x","function":{"name":"f"}}]}]}`, "messages[0].tool_calls[0].type"},
		{"tool no name", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{}}]}`, "tools[0].function.name"},
		{"tool bad type", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"x"}]}`, "tools[0].type"},
		{"tool_choice bad", `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}`, "tool_choice"},
		{"tool_choice no name", `{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function","function":{}}}`, "tool_choice.function.name"},
		{"stop number", `{"model":"m","messages":[{"role":"user","content":"x"}],"stop":5}`, "stop"},
		{"temperature string", `{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}`, "temperature"},
		{"n zero", `{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}`, "n"},
		{"format bad", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}`, "response_format.type"},
		{"schema no name", `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{}}}`, "response_format.json_schema.name"},
		{"stream_options without stream", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}`, "stream_options"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeChat([]byte(tc.body))
			var e *apierr.Error
			if !errors.As(err, &e) {
				t.Fatalf("DecodeChat(%s) = %v, want *apierr.Error", tc.body, err)
			}
			if e.Kind != apierr.BadRequest || e.Param != tc.param {
				t.Errorf("DecodeChat(%s) = kind %v param %q (%v), want bad_request param %q", tc.body, e.Kind, e.Param, e, tc.param)
			}
		})
	}
}

func TestEncodeResponseGolden(t *testing.T) {
	spec := oapispec.OpenAI(t)
	for _, name := range cases(t, "response") {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "response", name+".in.json"))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Model    string
				Response llm.Response
			}
			if err := json.Unmarshal(in, &c); err != nil {
				t.Fatal(err)
			}
			got := Translator{}.EncodeResponse(nil, &llm.Request{Model: c.Model}, &c.Response)
			spec.ValidateResponse(t, "POST", "/v1/chat/completions", 200, http.Header{"Content-Type": {"application/json"}}, got)
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatalf("EncodeResponse = %s: invalid JSON: %v", got, err)
			}
			golden(t, filepath.Join("response", name+".want.json"), append(pretty.Bytes(), '\n'))
		})
	}
}

func TestEncodeResponseIDs(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"chatcmpl-abc", `"chatcmpl-abc"`},
		{"msg_1\"x", `"chatcmpl-msg_1\"x"`},
	} {
		got := Translator{}.EncodeResponse(nil, &llm.Request{}, &llm.Response{ID: tc.id})
		if !bytes.HasPrefix(got, []byte(`{"id":`+tc.want+`,`)) {
			t.Errorf("EncodeResponse(ID %q) = %s, want id %s", tc.id, got, tc.want)
		}
	}
	var c struct{ ID string }
	if err := json.Unmarshal(Translator{}.EncodeResponse(nil, &llm.Request{}, &llm.Response{}), &c); err != nil || len(c.ID) != len("chatcmpl-")+29 {
		t.Errorf("EncodeResponse(no ID) id = %q (%v), want chatcmpl- and 29 random characters", c.ID, err)
	}
}

// jsonEvent is llm.Event in golden files, with names for enums.
type jsonEvent struct {
	Type       string
	Index      int        `json:",omitempty"`
	Block      string     `json:",omitempty"`
	Text       string     `json:",omitempty"`
	ID         string     `json:",omitempty"`
	Model      string     `json:",omitempty"`
	ToolCallID string     `json:",omitempty"`
	ToolName   string     `json:",omitempty"`
	Signature  string     `json:",omitempty"`
	Usage      *llm.Usage `json:",omitempty"`
	StopReason string     `json:",omitempty"`
	Err        string     `json:",omitempty"`
}

var (
	eventTypes  = []string{"start", "block_start", "text_delta", "tool_args_delta", "block_stop", "usage", "stop", "error"}
	blockKinds  = []string{"text", "image", "tool_call", "tool_result", "thinking"}
	stopReasons = []string{"unknown", "end_turn", "max_tokens", "tool_use", "stop_sequence", "content_filter"}
)

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return 0
}

func (j jsonEvent) event() llm.Event {
	ev := llm.Event{
		Type: llm.EventType(index(eventTypes, j.Type)), Index: j.Index, Block: llm.PartType(index(blockKinds, j.Block)),
		Text: j.Text, ID: j.ID, Model: j.Model, ToolCallID: j.ToolCallID, ToolName: j.ToolName, Signature: j.Signature,
		StopReason: llm.StopReason(index(stopReasons, j.StopReason)),
	}
	if j.Usage != nil {
		ev.Usage = *j.Usage
	}
	if j.Err != "" {
		ev.Err = apierr.New(apierr.UpstreamUnavailable, "%s", j.Err)
	}
	return ev
}

func TestStreamEncoderGolden(t *testing.T) {
	spec := oapispec.OpenAI(t)
	for _, name := range cases(t, "stream") {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "stream", name+".in.json"))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Model        string
				IncludeUsage bool `json:"include_usage"`
				Events       []jsonEvent
			}
			if err := json.Unmarshal(in, &c); err != nil {
				t.Fatal(err)
			}
			enc := Translator{IncludeUsage: c.IncludeUsage}.NewStreamEncoder(&llm.Request{Model: c.Model, Stream: true})
			var out []byte
			for _, je := range c.Events {
				ev := je.event()
				out = enc.Encode(out, &ev)
			}
			checkSSE(t, spec, out, c.IncludeUsage)
			golden(t, filepath.Join("stream", name+".want.sse"), out)
		})
	}
}

// checkSSE validates every chunk against the spec and checks the
// include_usage rules: usage:null on every chunk but the last, which has
// choices:[] and usage; no usage key at all otherwise.
func checkSSE(t *testing.T, spec *oapispec.Spec, out []byte, includeUsage bool) {
	t.Helper()
	// The spec has no in-stream error event: a transcript with one is
	// checked chunk by chunk only.
	if !bytes.Contains(out, []byte(`data: {"error"`)) {
		spec.ValidateResponse(t, "POST", "/v1/chat/completions", 200, http.Header{"Content-Type": {"text/event-stream"}}, out)
	}
	events := strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n")
	done := events[len(events)-1] == "data: [DONE]"
	for i, e := range events {
		data, ok := strings.CutPrefix(e, "data: ")
		if !ok {
			t.Fatalf("event %d = %q, want a data line", i, e)
		}
		if data == "[DONE]" {
			if i != len(events)-1 {
				t.Errorf("[DONE] at %d of %d events", i, len(events))
			}
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatalf("event %d data %s: %v", i, data, err)
		}
		if _, isErr := m["error"]; isErr {
			spec.ValidateSchema(t, "ErrorResponse", []byte(data))
			continue
		}
		spec.ValidateSchema(t, "CreateChatCompletionStreamResponse", []byte(data))
		usage, has := m["usage"]
		last := done && i == len(events)-2
		switch {
		case !includeUsage && has:
			t.Errorf("chunk %d has usage without include_usage: %s", i, data)
		case includeUsage && !has:
			t.Errorf("chunk %d lacks usage with include_usage: %s", i, data)
		case includeUsage && last && (string(usage) == "null" || string(m["choices"]) != "[]"):
			t.Errorf("last chunk %s, want choices [] and usage", data)
		case includeUsage && !last && string(usage) != "null":
			t.Errorf("chunk %d usage = %s, want null", i, usage)
		}
	}
}

func TestStreamEncoderToolIndexes(t *testing.T) {
	enc := NewChunkEncoder("m", false)
	var out []byte
	for _, ev := range []llm.Event{
		{Type: llm.EventStart, ID: "x"},
		{Type: llm.EventBlockStart, Index: 0, Block: llm.PartThinking},
		{Type: llm.EventBlockStart, Index: 1, Block: llm.PartText},
		{Type: llm.EventBlockStart, Index: 2, Block: llm.PartToolCall, ToolCallID: "a", ToolName: "f"},
		{Type: llm.EventBlockStart, Index: 3, Block: llm.PartToolCall, ToolCallID: "b", ToolName: "g"},
		{Type: llm.EventToolArgsDelta, Index: 3, Text: "{}"},
	} {
		out = enc.Encode(out, &ev)
	}
	for _, want := range []string{`"tool_calls":[{"index":0,"id":"a"`, `"tool_calls":[{"index":1,"id":"b"`, `"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("stream %s\nlacks %s", out, want)
		}
	}
}

// streamEvents is a steady-state mix of the events a stream is made of.
var streamEvents = []llm.Event{
	{Type: llm.EventTextDelta, Index: 0, Text: "Hello, world"},
	{Type: llm.EventToolArgsDelta, Index: 1, Text: `{"city":"Paris"}`},
	{Type: llm.EventUsage, Usage: llm.Usage{InputTokens: 10, OutputTokens: 3}},
	{Type: llm.EventTextDelta, Index: 0, Text: ` "quoted" and more`},
}

func primedEncoder() *ChunkEncoder {
	enc := NewChunkEncoder("gpt-4o", true)
	var out []byte
	for _, ev := range []llm.Event{
		{Type: llm.EventStart, ID: "chatcmpl-123"},
		{Type: llm.EventBlockStart, Index: 0, Block: llm.PartText},
		{Type: llm.EventBlockStart, Index: 1, Block: llm.PartToolCall, ToolCallID: "c", ToolName: "f"},
	} {
		out = enc.Encode(out, &ev)
	}
	return enc
}

func TestStreamEncoderAllocs(t *testing.T) {
	enc := primedEncoder()
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		for i := range streamEvents {
			buf = enc.Encode(buf[:0], &streamEvents[i])
		}
	})
	if allocs != 0 {
		t.Errorf("ChunkEncoder.Encode allocates %.1f times per %d events, want 0", allocs, len(streamEvents))
	}
}

func BenchmarkStreamEncoder(b *testing.B) {
	enc := primedEncoder()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = enc.Encode(buf[:0], &streamEvents[i%len(streamEvents)])
	}
}

func FuzzDecodeChat(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "request", "*.in.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"model":"m","messages":[{"role":"assistant","content":[{"type":"refusal","refusal":"no"}],"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{"}}]}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:;base64,"}}]}],"tool_choice":{"type":"allowed_tools"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeChat(body)
		if err != nil {
			var e *apierr.Error
			if !errors.As(err, &e) || e.Kind != apierr.BadRequest {
				t.Fatalf("DecodeChat error %v, want a BadRequest *apierr.Error", err)
			}
			return
		}
		if r.Model == "" {
			t.Fatalf("DecodeChat(%q) = %+v with no model", body, r)
		}
		_ = Translator{}.EncodeResponse(nil, r, &llm.Response{})
	})
}
