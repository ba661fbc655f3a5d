package gemini

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/llm"
)

func TestStreamLineLimit(t *testing.T) {
	p := newGemini(t, "")
	long := "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"" + strings.Repeat("a", maxLine) + "\"}]}}]}\n\n"
	_, err := decodeAll(p.NewStreamDecoder(strings.NewReader(long)))
	if !errors.Is(err, ErrLineTooLong) {
		t.Errorf("Next() = %v, want ErrLineTooLong", err)
	}
	// A line longer than the read buffer but under the limit is fine.
	ok := "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"" + strings.Repeat("b", 200<<10) + "\"}]},\"finishReason\":\"STOP\"}]}\r\n\r\n"
	evs, err := decodeAll(p.NewStreamDecoder(strings.NewReader(ok)))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Next() = %v, want io.EOF", err)
	}
	if got := evs[2].Text; len(got) != 200<<10 {
		t.Errorf("text delta has %d bytes, want %d", len(got), 200<<10)
	}
}

func TestStreamEmptyBodyIsCut(t *testing.T) {
	p := newGemini(t, "")
	if _, err := decodeAll(p.NewStreamDecoder(strings.NewReader(""))); !errors.Is(err, ErrStreamCut) {
		t.Errorf("Next() on an empty body = %v, want ErrStreamCut", err)
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
	f.Add([]byte("data: {\"error\":{\"code\":429}}\n\n"))
	f.Add([]byte("data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":null}}]},\"finishReason\":\"MAX_TOKENS\"}]}\n\ndata: [1]\n\n"))
	p := newGemini(f, "")
	f.Fuzz(func(t *testing.T, body []byte) {
		dec := p.NewStreamDecoder(bytes.NewReader(body))
		var ev llm.Event
		for i := 0; ; i++ {
			if i > 4*len(body)+16 {
				t.Fatalf("decoder did not end after %d events", i)
			}
			ev.Reset()
			if err := dec.Next(&ev); err != nil {
				if err := dec.Next(&ev); !errors.Is(err, io.EOF) {
					t.Fatalf("Next() after the end = %v, want io.EOF", err)
				}
				return
			}
			if ev.Type == llm.EventToolArgsDelta && ev.Text == "" {
				t.Fatal("empty tool arguments")
			}
		}
	})
}

// BenchmarkStreamDecode measures decoding per event over a long text
// stream (one text piece and cumulative usage per chunk, as Gemini sends).
func BenchmarkStreamDecode(b *testing.B) {
	var sb strings.Builder
	const chunks = 200
	for i := range chunks {
		sb.WriteString(`data: {"candidates":[{"content":{"parts":[{"text":" word`)
		sb.WriteString(strings.Repeat("x", i%7))
		sb.WriteString(`"}],"role":"model"},`)
		if i == chunks-1 {
			sb.WriteString(`"finishReason":"STOP",`)
		}
		sb.WriteString(`"index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":`)
		sb.WriteString(strings.Repeat("1", 1+i%3))
		sb.WriteString(`,"totalTokenCount":40},"modelVersion":"gemini-2.5-flash","responseId":"bench"}` + "\r\n\r\n")
	}
	body := []byte(sb.String())
	p := newGemini(b, "")
	r := bytes.NewReader(body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	events := 0
	var ev llm.Event
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		r.Reset(body)
		dec := p.NewStreamDecoder(r)
		for {
			if err := dec.Next(&ev); err != nil {
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				break
			}
			events++
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}
