package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

var (
	eventTypes  = []string{"start", "block_start", "text_delta", "tool_args_delta", "block_stop", "usage", "stop", "error"}
	blockKinds  = []string{"text", "image", "tool_call", "tool_result", "thinking"}
	stopReasons = []string{"unknown", "end_turn", "max_tokens", "tool_use", "stop_sequence", "content_filter"}
)

// eventJSON renders ev as one golden line, with enum names and without
// zero fields.
func eventJSON(ev *llm.Event) []byte {
	m := map[string]any{"Type": eventTypes[ev.Type]}
	if ev.Type == llm.EventBlockStart || ev.Type == llm.EventTextDelta || ev.Type == llm.EventToolArgsDelta || ev.Type == llm.EventBlockStop {
		m["Index"] = ev.Index
	}
	if ev.Type == llm.EventBlockStart {
		m["Block"] = blockKinds[ev.Block]
	}
	for k, v := range map[string]string{"Text": ev.Text, "ID": ev.ID, "Model": ev.Model, "ToolCallID": ev.ToolCallID, "ToolName": ev.ToolName, "Signature": ev.Signature} {
		if v != "" {
			m[k] = v
		}
	}
	if ev.Usage != (llm.Usage{}) {
		m["Usage"] = ev.Usage
	}
	if ev.Type == llm.EventStop {
		m["StopReason"] = stopReasons[ev.StopReason]
	}
	if ev.Err != nil {
		e := apierr.From(ev.Err)
		m["Err"] = e.Kind.String() + ": " + e.Message
	}
	b, _ := json.Marshal(m)
	return b
}

// drain decodes body to its golden transcript: one event per line, then
// "EOF" or "error: …".
func drain(t testing.TB, p *Provider, body io.Reader) ([]byte, []llm.Event) {
	d := p.NewStreamDecoder(body)
	var (
		out    []byte
		events []llm.Event
		ev     llm.Event
	)
	for range 10000 {
		err := d.Next(&ev)
		if errors.Is(err, io.EOF) {
			return append(out, "EOF\n"...), events
		}
		if err != nil {
			e := apierr.From(err)
			return append(out, "error: "+e.Kind.String()+": "+e.Message+"\n"...), events
		}
		events = append(events, ev)
		out = append(append(out, eventJSON(&ev)...), '\n')
	}
	t.Fatal("decoder does not end")
	return nil, nil
}

func TestStreamDecoderGolden(t *testing.T) {
	p := newProvider(t, Options{Name: "oai"})
	for _, name := range cases(t, "stream", "sse") {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "stream", name+".in.sse"))
			if err != nil {
				t.Fatal(err)
			}
			got, events := drain(t, p, bytes.NewReader(in))
			checkWellFormed(t, events)
			golden(t, filepath.Join("stream", name+".want.jsonl"), got)
		})
	}
}

// checkWellFormed checks the canonical stream grammar: Start first; every
// delta inside an open block; Usage before Stop; Stop or Error last.
func checkWellFormed(t *testing.T, events []llm.Event) {
	t.Helper()
	open := map[int]bool{}
	for i, ev := range events {
		switch {
		case i == 0 && ev.Type != llm.EventStart && ev.Type != llm.EventError:
			t.Errorf("event 0 is %s, want start", eventTypes[ev.Type])
		case ev.Type == llm.EventBlockStart:
			open[ev.Index] = true
		case ev.Type == llm.EventTextDelta || ev.Type == llm.EventToolArgsDelta:
			if !open[ev.Index] {
				t.Errorf("event %d: delta for block %d that is not open", i, ev.Index)
			}
		case ev.Type == llm.EventBlockStop:
			delete(open, ev.Index)
		case ev.Type == llm.EventStop || ev.Type == llm.EventError:
			if i != len(events)-1 {
				t.Errorf("event %d: %s before the end", i, eventTypes[ev.Type])
			}
			if ev.Type == llm.EventStop && len(open) > 0 {
				t.Errorf("stop with blocks %v open", open)
			}
		}
	}
}

func TestStreamDecoderLongLine(t *testing.T) {
	p := newProvider(t, Options{})
	big := strings.Repeat("x", 200<<10) // longer than the buffer, within the limit
	body := `data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"` + big + `"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"
	_, events := drain(t, p, strings.NewReader(body))
	if len(events) != 5 || events[2].Text != big {
		t.Fatalf("decoded %d events, want start, block start, the 200 KiB delta, block stop, stop", len(events))
	}
	tooBig := "data: " + strings.Repeat("x", maxLine+10) + "\n\n"
	got, _ := drain(t, p, strings.NewReader(tooBig))
	if !strings.HasPrefix(string(got), "error: upstream_unavailable") {
		t.Errorf("a %d-byte line gives %q, want an error", len(tooBig), got)
	}
}

// sseTranscript is a steady-state stream for the benchmark: a role chunk,
// then n content chunks shaped as OpenAI sends them.
func sseTranscript(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n")
	for range n {
		b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","service_tier":"default","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n")
	}
	b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}` + "\n\ndata: [DONE]\n\n")
	return b.Bytes()
}

// allocsPerEvent measures steady-state allocations per content event.
func allocsPerEvent(p *Provider, body []byte) float64 {
	const n = 1000
	r := bytes.NewReader(body)
	var ev llm.Event
	// Warm up: the decoder, its buffers and the first chunks.
	d := p.NewChunkDecoder(r)
	for range 10 {
		_ = d.Next(&ev)
	}
	allocs := testing.AllocsPerRun(1, func() {
		for range n {
			_ = d.Next(&ev)
		}
	})
	return allocs / n
}

func TestStreamDecoderAllocs(t *testing.T) {
	p := newProvider(t, Options{})
	got := allocsPerEvent(p, sseTranscript(3000))
	// Budget: the event's own bytes, the delta string encoding/json
	// allocates; nothing else.
	if got > 1 {
		t.Errorf("ChunkDecoder.Next allocates %.2f times per content event, want at most 1", got)
	}
	t.Logf("ChunkDecoder.Next: %.2f allocs per content event", got)
}

func BenchmarkStreamDecoder(b *testing.B) {
	p := newProvider(b, Options{})
	body := sseTranscript(1000)
	r := bytes.NewReader(body)
	var ev llm.Event
	b.ReportAllocs()
	b.SetBytes(int64(len(body)) / 1000)
	d := p.NewChunkDecoder(r)
	for b.Loop() {
		if err := d.Next(&ev); err != nil {
			r.Reset(body)
			d = p.NewChunkDecoder(r)
		}
	}
}

func FuzzStreamDecoder(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "stream", "*.in.sse"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":3,\"function\":{\"arguments\":\"x\"}},{\"index\":-1,\"id\":\"a\"}]}}]}\n\ndata: [DONE]\n"))
	f.Add([]byte("data: {\"usage\":{\"prompt_tokens\":1}}\n\ndata: {\"choices\":[{\"finish_reason\":\"length\"}]}\n"))
	p := newProvider(f, Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		d := p.NewStreamDecoder(bytes.NewReader(body))
		var ev llm.Event
		for i := 0; ; i++ {
			if i > len(body)+10 {
				t.Fatalf("decoder yields more events (%d) than the body has bytes", i)
			}
			if err := d.Next(&ev); err != nil {
				return
			}
		}
	})
}
