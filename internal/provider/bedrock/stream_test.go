package bedrock

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/multipolar/multipolar/internal/llm"
)

// FuzzStreamDecoder feeds arbitrary bytes to the event-stream decoder: it
// must not panic, must end, and must refuse oversized messages before
// buffering them.
func FuzzStreamDecoder(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "stream_*.in.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var in streamInput
		if err := json.Unmarshal(b, &in); err != nil {
			f.Fatal(err)
		}
		f.Add(encodeStream(f, in.Messages))
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	p := newTestProvider(f, "")
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := p.NewStreamDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			if i > len(data)+10 {
				t.Fatalf("decoder produced more than %d events from %d bytes", i, len(data))
			}
			var ev llm.Event
			if err := dec.Next(&ev); err != nil {
				return
			}
		}
	})
}

// FuzzParseDelta checks the allocation-free delta parser against
// encoding/json: whatever it accepts must decode to the same index and text.
func FuzzParseDelta(f *testing.F) {
	for _, s := range []string{
		`{"contentBlockIndex":0,"delta":{"text":"Hello"},"p":"abcd"}`,
		`{"contentBlockIndex":12,"delta":{"text":"a\"b\\c\n\u00e9\ud83d\ude00"}}`,
		`{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":"}},"p":"ab"}`,
		`{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"x"}},"p":"ab"}`,
		`{"contentBlockIndex":0,"delta":{"text":"\ud800"},"p":"ab"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		idx, kind, text, _, ok := parseDelta(payload, nil)
		if !ok {
			return
		}
		var e streamEvent
		if err := json.Unmarshal(payload, &e); err != nil {
			t.Fatalf("parseDelta(%q) ok, but encoding/json: %v", payload, err)
		}
		want := ""
		switch {
		case kind == deltaText && e.Delta.Text != nil:
			want = *e.Delta.Text
		case kind == deltaToolInput && e.Delta.ToolUse != nil:
			want = e.Delta.ToolUse.Input
		default:
			t.Fatalf("parseDelta(%q) kind %d, encoding/json %+v", payload, kind, e.Delta)
		}
		if idx != e.ContentBlockIndex || text != want {
			t.Fatalf("parseDelta(%q) = %d %q, encoding/json %d %q", payload, idx, text, e.ContentBlockIndex, want)
		}
	})
}

// TestStreamMessageLimit checks a declared length over MaxStreamMessage is
// refused without reading the message.
func TestStreamMessageLimit(t *testing.T) {
	var prelude [12]byte
	binary.BigEndian.PutUint32(prelude[0:], MaxStreamMessage+1)
	p := newTestProvider(t, "")
	dec := p.NewStreamDecoder(io.MultiReader(bytes.NewReader(prelude[:]), neverEnding{}))
	var ev llm.Event
	if err := dec.Next(&ev); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("Next() = %v, want ErrMessageTooLarge", err)
	}
	if err := dec.Next(&ev); !errors.Is(err, io.EOF) {
		t.Errorf("Next() after an error = %v, want io.EOF", err)
	}
}

// TestStreamInconsistentPrelude checks headers longer than the message are
// refused, not read as a ~4 GiB payload.
func TestStreamInconsistentPrelude(t *testing.T) {
	var prelude [12]byte
	binary.BigEndian.PutUint32(prelude[0:], 32)
	binary.BigEndian.PutUint32(prelude[4:], 100)
	p := newTestProvider(t, "")
	dec := p.NewStreamDecoder(io.MultiReader(bytes.NewReader(prelude[:]), neverEnding{}))
	var ev llm.Event
	if err := dec.Next(&ev); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("Next() = %v, want a malformed-prelude error", err)
	}
}

// neverEnding reads zeros forever.
type neverEnding struct{}

func (neverEnding) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// benchStream is a typical answer: start, n text deltas, stop, metadata.
func benchStream(b *testing.B, n int) []byte {
	b.Helper()
	head := func(typ string) map[string]string {
		return map[string]string{":event-type": typ, ":content-type": "application/json", ":message-type": "event"}
	}
	msgs := []streamMessage{{Headers: head("messageStart"), Payload: json.RawMessage(`{"p":"abcdefgh","role":"assistant"}`)}}
	for range n {
		msgs = append(msgs, streamMessage{Headers: head("contentBlockDelta"),
			Payload: json.RawMessage(`{"contentBlockIndex":0,"delta":{"text":" some words of text"},"p":"abcdefghijklmnopq"}`)})
	}
	msgs = append(msgs,
		streamMessage{Headers: head("contentBlockStop"), Payload: json.RawMessage(`{"contentBlockIndex":0,"p":"abcdefghijk"}`)},
		streamMessage{Headers: head("messageStop"), Payload: json.RawMessage(`{"p":"abc","stopReason":"end_turn"}`)},
		streamMessage{Headers: head("metadata"), Payload: json.RawMessage(`{"metrics":{"latencyMs":312},"p":"abcdef","usage":{"inputTokens":14,"outputTokens":100,"totalTokens":114}}`)},
	)
	return encodeStream(b, msgs)
}

// BenchmarkStreamDecoder reports the cost per decoded event.
func BenchmarkStreamDecoder(b *testing.B) {
	const deltas = 100
	raw := benchStream(b, deltas)
	p := newTestProvider(b, "")
	r := bytes.NewReader(raw)
	var ev llm.Event
	events := 0
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for b.Loop() {
		r.Reset(raw)
		dec := p.NewStreamDecoder(r)
		for {
			ev.Reset()
			err := dec.Next(&ev)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			events++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
	allocs := testing.AllocsPerRun(20, func() {
		r.Reset(raw)
		dec := p.NewStreamDecoder(r)
		for dec.Next(&ev) == nil {
		}
	})
	b.ReportMetric(allocs/float64(deltas+5), "allocs/event")
}

// BenchmarkSDKFrames is the floor BenchmarkStreamDecoder stands on: the
// same stream through the SDK's eventstream.Decoder alone, without
// translation.
func BenchmarkSDKFrames(b *testing.B) {
	const deltas = 100
	raw := benchStream(b, deltas)
	r := bytes.NewReader(raw)
	dec := eventstream.NewDecoder()
	buf := make([]byte, 0, 4<<10)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(raw)
		for {
			if _, err := dec.Decode(r, buf); err != nil {
				break
			}
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		r.Reset(raw)
		for {
			if _, err := dec.Decode(r, buf); err != nil {
				break
			}
		}
	})
	b.ReportMetric(allocs/float64(deltas+4), "allocs/message")
}
