package anthropic

import (
	"errors"
	"testing"

	"github.com/multipolar/multipolar/internal/llm"
)

func TestStreamEncoderAllocs(t *testing.T) {
	enc := Translator{}.NewStreamEncoder(&llm.Request{Model: "m"})
	buf := make([]byte, 0, 4096)
	buf = enc.Encode(buf[:0], &llm.Event{Type: llm.EventStart, ID: "msg_1"})
	buf = enc.Encode(buf[:0], &llm.Event{Type: llm.EventBlockStart, Index: 0, Block: llm.PartText})
	buf = enc.Encode(buf[:0], &llm.Event{Type: llm.EventBlockStart, Index: 1, Block: llm.PartToolCall, ToolCallID: "c", ToolName: "f"})
	text := llm.Event{Type: llm.EventTextDelta, Index: 0, Text: "Hello, \"world\"\n"}
	args := llm.Event{Type: llm.EventToolArgsDelta, Index: 1, Text: `{"a":`}
	usage := llm.Event{Type: llm.EventUsage, Usage: llm.Usage{InputTokens: 10, OutputTokens: 3}}
	if n := testing.AllocsPerRun(200, func() {
		buf = enc.Encode(buf[:0], &text)
		buf = enc.Encode(buf[:0], &args)
		buf = enc.Encode(buf[:0], &usage)
	}); n != 0 {
		t.Errorf("Encode allocates %v times per 3 events, want 0", n)
	}
	stopEnc := Translator{}.NewStreamEncoder(&llm.Request{Model: "m"})
	stop := llm.Event{Type: llm.EventStop, StopReason: llm.StopEndTurn}
	if n := testing.AllocsPerRun(1, func() { buf = stopEnc.Encode(buf[:0], &stop) }); n != 0 {
		t.Errorf("Encode(start+stop) allocates %v times, want 0", n)
	}
}

func TestStreamEncoderRandomID(t *testing.T) {
	enc := Translator{}.NewStreamEncoder(&llm.Request{Model: "m"})
	out := string(enc.Encode(nil, &llm.Event{Type: llm.EventStart}))
	names, datas := sseEvents(t, []byte(out))
	if names[0] != "message_start" || len(datas[0]) == 0 {
		t.Fatalf("first event = %q", names[0])
	}
	validateSSE(t, []byte(out))
}

func TestStreamEncoderErrorNotAPIErr(t *testing.T) {
	enc := Translator{}.NewStreamEncoder(&llm.Request{Model: "m"})
	out := enc.Encode(nil, &llm.Event{Type: llm.EventError, Err: errors.New("secret detail")})
	validateSSE(t, out)
	if got := string(out); !contains(got, `"type":"api_error","message":"internal error"`) || contains(got, "secret") {
		t.Errorf("Encode(error) = %s", got)
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func BenchmarkStreamEncoder(b *testing.B) {
	enc := Translator{}.NewStreamEncoder(&llm.Request{Model: "claude-sonnet-4-5"})
	buf := make([]byte, 0, 4096)
	buf = enc.Encode(buf, &llm.Event{Type: llm.EventStart, ID: "msg_1"})
	buf = enc.Encode(buf[:0], &llm.Event{Type: llm.EventBlockStart, Index: 0, Block: llm.PartText})
	ev := llm.Event{Type: llm.EventTextDelta, Index: 0, Text: "The quick brown fox jumps over the lazy dog."}
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.Encode(buf[:0], &ev)
	}
	_ = buf
}
