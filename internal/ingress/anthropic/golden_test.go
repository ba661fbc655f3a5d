package anthropic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/testutil/goldenfile"
	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

// cases returns the input files testdata/dir/*suffix.
func cases(t *testing.T, dir, suffix string) []string { return goldenfile.Files(t, dir+"/*"+suffix) }

func indent(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestDecodeMessagesGolden(t *testing.T) {
	for _, in := range cases(t, "decode", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			if name != "unsupported" { // mcp_servers is a beta field, outside the GA schema
				oapispec.Anthropic(t).ValidateRequest(t, "POST", "/v1/messages", nil, body)
			}
			r, err := DecodeMessages(body)
			if err != nil {
				t.Fatalf("DecodeMessages(%s) error: %v", in, err)
			}
			goldenfile.Check(t, strings.TrimSuffix(in, ".in.json")+".want.json", indent(t, r))
		})
	}
}

func TestEncodeResponseGolden(t *testing.T) {
	req := &llm.Request{Model: "client-model"}
	for _, in := range cases(t, "response", ".in.json") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var resp llm.Response
			if err := json.Unmarshal(b, &resp); err != nil {
				t.Fatal(err)
			}
			out := Translator{}.EncodeResponse(nil, req, &resp)
			if !json.Valid(out) {
				t.Fatalf("EncodeResponse = %s, not JSON", out)
			}
			oapispec.Anthropic(t).ValidateResponse(t, "POST", "/v1/messages", 200, jsonHeader, out)
			var pretty bytes.Buffer
			_ = json.Indent(&pretty, out, "", "  ")
			pretty.WriteByte('\n')
			goldenfile.Check(t, strings.TrimSuffix(in, ".in.json")+".want.json", pretty.Bytes())
		})
	}
}

var jsonHeader = map[string][]string{"Content-Type": {"application/json"}}

// jsonEvent is a readable form of llm.Event for golden files.
type jsonEvent struct {
	Type         string     `json:"type"`
	Index        int        `json:"index,omitempty"`
	Block        string     `json:"block,omitempty"`
	Text         string     `json:"text,omitempty"`
	ID           string     `json:"id,omitempty"`
	Model        string     `json:"model,omitempty"`
	ToolCallID   string     `json:"tool_call_id,omitempty"`
	ToolName     string     `json:"tool_name,omitempty"`
	Signature    string     `json:"signature,omitempty"`
	Usage        *llm.Usage `json:"usage,omitempty"`
	StopReason   string     `json:"stop_reason,omitempty"`
	StopSequence string     `json:"stop_sequence,omitempty"`
	Kind         string     `json:"kind,omitempty"`
	Code         string     `json:"code,omitempty"`
	Message      string     `json:"message,omitempty"`
}

var (
	eventTypes  = []string{"start", "block_start", "text", "tool_args", "block_stop", "usage", "stop", "error"}
	blockTypes  = []string{"text", "image", "tool_call", "tool_result", "thinking"}
	stopReasons = []string{"", "end_turn", "max_tokens", "tool_use", "stop_sequence", "content_filter"}
	kinds       = map[string]apierr.Kind{"upstream_unavailable": apierr.UpstreamUnavailable, "rate_limited": apierr.RateLimited, "bad_request": apierr.BadRequest}
)

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	panic("unknown name " + s)
}

func (j *jsonEvent) event() llm.Event {
	ev := llm.Event{Type: llm.EventType(index(eventTypes, j.Type)), Index: j.Index, Text: j.Text, ID: j.ID, Model: j.Model,
		ToolCallID: j.ToolCallID, ToolName: j.ToolName, Signature: j.Signature, StopSequence: j.StopSequence,
		StopReason: llm.StopReason(index(stopReasons, j.StopReason))}
	if j.Block != "" {
		ev.Block = llm.PartType(index(blockTypes, j.Block))
	}
	if j.Usage != nil {
		ev.Usage = *j.Usage
	}
	if j.Type == "error" {
		ev.Err = &apierr.Error{Kind: kinds[j.Kind], Code: j.Code, Message: j.Message}
	}
	return ev
}

func readEvents(t *testing.T, path string) []llm.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []llm.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var j jsonEvent
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		evs = append(evs, j.event())
	}
	return evs
}

// sseEvents splits an SSE transcript into (event name, data) pairs.
func sseEvents(t *testing.T, b []byte) (names []string, datas [][]byte) {
	t.Helper()
	for _, chunk := range bytes.Split(bytes.TrimSuffix(b, []byte("\n\n")), []byte("\n\n")) {
		lines := bytes.Split(chunk, []byte("\n"))
		if len(lines) != 2 || !bytes.HasPrefix(lines[0], []byte("event: ")) || !bytes.HasPrefix(lines[1], []byte("data: ")) {
			t.Fatalf("malformed SSE event %q", chunk)
		}
		names = append(names, string(lines[0][7:]))
		datas = append(datas, lines[1][6:])
	}
	return names, datas
}

var eventSchema = map[string]string{
	"message_start":       "MessageStartEvent",
	"content_block_start": "ContentBlockStartEvent",
	"content_block_delta": "ContentBlockDeltaEvent",
	"content_block_stop":  "ContentBlockStopEvent",
	"message_delta":       "MessageDeltaEvent",
	"message_stop":        "MessageStopEvent",
	"error":               "ErrorResponse",
}

// validateSSE checks every event's data against its component schema and
// that the data's type matches the event name.
func validateSSE(t *testing.T, out []byte) {
	t.Helper()
	names, datas := sseEvents(t, out)
	spec := oapispec.Anthropic(t)
	for i, name := range names {
		var typ struct{ Type string }
		if err := json.Unmarshal(datas[i], &typ); err != nil || typ.Type != name {
			t.Errorf("event %d %q has data type %q (%v)", i, name, typ.Type, err)
		}
		if name == "ping" {
			continue
		}
		spec.ValidateSchema(t, eventSchema[name], datas[i])
	}
}

func TestStreamEncoderGolden(t *testing.T) {
	req := &llm.Request{Model: "client-model"}
	for _, in := range cases(t, "stream", ".in.jsonl") {
		name := strings.TrimSuffix(filepath.Base(in), ".in.jsonl")
		t.Run(name, func(t *testing.T) {
			enc := Translator{}.NewStreamEncoder(req)
			var out []byte
			for _, ev := range readEvents(t, in) {
				out = enc.Encode(out, &ev)
			}
			validateSSE(t, out)
			goldenfile.Check(t, strings.TrimSuffix(in, ".in.jsonl")+".want.sse", out)
		})
	}
}

func TestDecodeMessagesErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"not json", `{"model":`, "not valid JSON"},
		{"not object", `[]`, "JSON object"},
		{"no model", `{"max_tokens":1,"messages":[]}`, "model: Field required"},
		{"no messages", `{"model":"m","max_tokens":1}`, "messages: Field required"},
		{"no max_tokens", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "max_tokens: Field required"},
		{"zero max_tokens", `{"model":"m","max_tokens":0,"messages":[]}`, "greater than or equal to 1"},
		{"bad role", `{"model":"m","max_tokens":1,"messages":[{"role":"bot","content":"hi"}]}`, "messages.0.role"},
		{"content number", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":3}]}`, "messages.0.content"},
		{"tool_use in user", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"b","input":{}}]}]}`, "only allowed in assistant"},
		{"tool_result in assistant", `{"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"a"}]}]}`, "only allowed in user"},
		{"budget too small", `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":10},"messages":[]}`, "budget_tokens"},
		{"budget over max", `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":4000},"messages":[]}`, "must be greater than"},
		{"bad tool_choice", `{"model":"m","max_tokens":1,"tool_choice":{"type":"some"},"messages":[]}`, "tool_choice.type"},
		{"temperature string", `{"model":"m","max_tokens":1,"temperature":"hot","messages":[]}`, "temperature: invalid value: expected a number"},
		{"image no source", `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image"}]}]}`, "source: Field required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMessages([]byte(tc.body))
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Kind != apierr.BadRequest {
				t.Fatalf("DecodeMessages(%s) = %v, want a bad_request *apierr.Error", tc.body, err)
			}
			if !strings.Contains(ae.Message, tc.want) {
				t.Errorf("DecodeMessages(%s) message = %q, want it to contain %q", tc.body, ae.Message, tc.want)
			}
		})
	}
}

func TestDecodeCountTokens(t *testing.T) {
	r, err := DecodeCountTokens([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatalf("DecodeCountTokens error: %v", err)
	}
	if r.Model != "m" || len(r.Messages) != 1 || r.MaxTokens != 0 {
		t.Errorf("DecodeCountTokens = %+v", r)
	}
}
