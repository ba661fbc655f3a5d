package gemini

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/llm"
)

// scanChunk decodes b (one JSON value and white space) with jscan as
// genResponse, classifying errors as json.Unmarshal would.
func scanChunk(b []byte) (g genResponse, syntaxErr, typeErr error) {
	s := &jscan{b: b}
	for s.i < len(b) && isSpace(b[s.i]) {
		s.i++
	}
	if s.i == len(b) {
		return g, errors.New("empty"), nil
	}
	var c wireChunk
	s.chunk(&c)
	if s.err == nil {
		for s.i < len(b) && isSpace(b[s.i]) {
			s.i++
		}
		if s.i < len(b) {
			s.syntax("after top-level value")
		}
	}
	if s.err != nil {
		return g, s.err, nil
	}
	if s.typeErr != nil {
		return g, nil, s.typeErr
	}
	g = genResponse{ModelVersion: string(c.model), ResponseID: string(c.id), Error: c.err}
	if c.hasFeedback {
		g.PromptFeedback = &promptFeedback{BlockReason: string(c.blockReason)}
	}
	if c.hasUsage {
		u := c.usage
		g.UsageMetadata = &u
	}
	for _, wc := range c.cands {
		var gc candidate
		gc.FinishReason, gc.Index = string(wc.finish), int(wc.index)
		for _, wp := range wc.parts {
			rp := respPart{Text: string(wp.text), Thought: wp.thought, ThoughtSignature: string(wp.sig)}
			if wp.hasCall {
				rp.FunctionCall = &respFunctionCall{ID: string(wp.callID), Name: string(wp.name)}
				if wp.args != nil {
					rp.FunctionCall.Args = json.RawMessage(wp.args)
				}
			}
			gc.Content.Parts = append(gc.Content.Parts, rp)
		}
		g.Candidates = append(g.Candidates, gc)
	}
	return g, nil, nil
}

// normalize forgets what the stream decoder cannot see: nil or empty
// slices, createTime.
func normalize(g *genResponse) {
	g.CreateTime = ""
	if len(g.Candidates) == 0 {
		g.Candidates = nil
	}
	for i := range g.Candidates {
		if len(g.Candidates[i].Content.Parts) == 0 {
			g.Candidates[i].Content.Parts = nil
		}
	}
}

// checkScanMatchesJSON fails when jscan and json.Unmarshal disagree on b.
func checkScanMatchesJSON(t *testing.T, b []byte) {
	t.Helper()
	var want genResponse
	werr := json.Unmarshal(b, &want)
	var wsyn *json.SyntaxError
	got, gsyn, gtyp := scanChunk(b)
	wantSyntax := werr != nil && (errors.As(werr, &wsyn) || strings.Contains(werr.Error(), "unexpected end of JSON"))
	if (gsyn != nil) != wantSyntax {
		t.Fatalf("%q: scanner syntax error %v, encoding/json %v", b, gsyn, werr)
	}
	if wantSyntax {
		return
	}
	if (gtyp != nil) != (werr != nil) {
		t.Fatalf("%q: scanner type error %v, encoding/json %v", b, gtyp, werr)
	}
	if werr != nil {
		return
	}
	normalize(&want)
	normalize(&got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nscanner       %+v\nencoding/json %+v", b, got, want)
	}
}

var scanSeeds = []string{
	`{"candidates":[{"content":{"parts":[{"text":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00\ud83d x\udc00\ud800\u0041"}]}}]}`,
	"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"bad \xff\xfe utf8 \xe2\x82 ok \xe2\x82\xac\"}]}}]}",
	`{"CANDIDATES":[{"Content":{"PARTS":[{"TEXT":"folded","thought":true}]},"INDEX":0}],"c\u0061ndidates":null}`,
	"{\"candidateſ\":[{\"index\":1}],\"moKdelVersion\":\"x\",\"usagemetadata\":{\"promptTokenCount\":-0}}",
	`{"candidates":[{"content":{"parts":[{"text":"a","thought":true},{"text":"b"}]}}],"candidates":[{"content":{"parts":[{"text":"c"}]}}]}`,
	`{"candidates":[{"content":{"parts":[{"text":"a","thought":true},{"text":"b"}]}}],"candidates":[{"content":{"parts":[]}}],"candidates":[{"content":{"parts":[{},{}]}}]}`,
	`{"candidates":[{"content":{"parts":[{"text":"a"},{"text":"b"}]}}],"candidates":[{"content":{"parts":[null,{"thought":false}]}},null]}`,
	`{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{ "a" : [1, "x y"] }}},{"functionCall":{"id":"i"},"functionCall":{"name":"g"}},{"functionCall":{"id":"i"},"functionCall":null,"functionCall":{"args":null}}]}}]}`,
	`{"usageMetadata":{"promptTokenCount":9223372036854775807,"candidatesTokenCount":-9223372036854775808,"totalTokenCount":"x"}}`,
	`{"usageMetadata":{"promptTokenCount":9223372036854775808}}`,
	`{"usageMetadata":{"promptTokenCount":1.0}}`,
	`{"usageMetadata":{"promptTokenCount":1e2}}`,
	`{"usageMetadata":{"promptTokenCount":"1"}}`,
	`{"usageMetadata":null,"promptFeedback":{"blockReason":"SAFETY"},"promptFeedback":{}}`,
	`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]},"error":{"message":"m"}}`,
	`{"error":{"code":"x"}}`,
	`{"error":null}`,
	`null`,
	`[1]`,
	`"s"`,
	`{"candidates":{}}`,
	`{"candidates":[1]}`,
	`{"candidates":[{"content":[]}]}`,
	`{"candidates":[{"content":null,"finishReason":null,"index":null}]}`,
	`{"candidates":[{"content":{"parts":[{"thought":"true"}]}}]}`,
	`{"a":[{"b":[tru]}]}`,
	`{"a":01}`,
	`{"a":-}`,
	`{"a":1.}`,
	`{"a":1e+}`,
	`{"a":"\x"}`,
	`{"a":"\u12g4"}`,
	"{\"a\":\"tab\there\"}",
	`{"a" 1}`,
	`{"a":1,}`,
	`{"a":[1,]}`,
	`{"a":1} x`,
	`{"a":1`,
	`  {"candidates": [ ] , "modelVersion" : "m" , "responseId" : "r" , "createTime" : "t" }  `,
	`{"createTime":1}`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
}

func TestScanMatchesEncodingJSON(t *testing.T) {
	for _, s := range scanSeeds {
		checkScanMatchesJSON(t, []byte(s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "response", "*.in.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkScanMatchesJSON(t, b)
	}
}

// FuzzChunkScanner checks the scanner against encoding/json.
func FuzzChunkScanner(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScanMatchesJSON(t, b)
	})
}

func TestCompactArgsMatchesJSON(t *testing.T) {
	for _, s := range []string{`{}`, `{ "a" : [ 1 , 2 ] , "b" : "x \" y\\" }`, "[\n\t1\r\n]", `"  "`} {
		if got, want := string(appendCompactJSON(nil, []byte(s))), string(compactArgs(nil, json.RawMessage(s))); got != want {
			t.Errorf("appendCompactJSON(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestStreamChunkAcrossEvents: a chunk whose JSON continues into the next
// SSE event decodes as one (as the json.Decoder over the events' data,
// joined by newlines, always did), and so do the chunks after it.
func TestStreamChunkAcrossEvents(t *testing.T) {
	p := newGemini(t, "")
	body := "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\\u00e9\"}]},\n\n" +
		"data: \"index\":0}],\"responseId\":\"r\"} {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}]}}]}\n\n" +
		"data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\n\n"
	evs, err := decodeAll(p.NewStreamDecoder(strings.NewReader(body)))
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Next() = %v, want io.EOF", err)
	}
	var text string
	for _, ev := range evs {
		text += ev.Text
	}
	if text != "aéb" || evs[0].ID != "r" || evs[len(evs)-1].Type != llm.EventStop {
		t.Errorf("events %+v", evs)
	}
	// Cut inside a joined chunk.
	_, err = decodeAll(p.NewStreamDecoder(strings.NewReader("data: {\"candidates\":[\n\n")))
	if !errors.Is(err, ErrStreamCut) {
		t.Errorf("Next() = %v, want ErrStreamCut", err)
	}
	// A syntax error is an upstream error, not a cut.
	_, err = decodeAll(p.NewStreamDecoder(strings.NewReader("data: {\"candidates\":[\n\ndata: x]}\n\n")))
	if err == nil || errors.Is(err, ErrStreamCut) || errors.Is(err, io.EOF) {
		t.Errorf("Next() = %v, want a decode error", err)
	}
	_, err = decodeAll(p.NewStreamDecoder(strings.NewReader("data: {\"candidates\":[x]}\n\n")))
	if err == nil || errors.Is(err, ErrStreamCut) || errors.Is(err, io.EOF) {
		t.Errorf("Next() = %v, want a decode error", err)
	}
}

// textChunk is one streamed chunk with a text part and cumulative usage.
func textChunk(sb *strings.Builder, i int, thought bool) {
	sb.WriteString(`data: {"candidates":[{"content":{"parts":[{"text":" word`)
	sb.WriteString(strings.Repeat("x", i%7))
	if i%5 == 0 {
		sb.WriteString(`\n\"q\" \u00e9`)
	}
	sb.WriteString(`"`)
	if thought {
		sb.WriteString(`,"thought":true`)
	}
	sb.WriteString(`}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":`)
	sb.WriteString(strings.Repeat("1", 1+i%3))
	sb.WriteString(`,"totalTokenCount":40},"modelVersion":"gemini-2.5-flash","responseId":"bench"}` + "\r\n\r\n")
}

// TestStreamDecodeAllocs is the allocation budget of SSE event
// translation: in steady state a text delta allocates its string and
// nothing else, and a chunk that brings no new string allocates nothing.
func TestStreamDecodeAllocs(t *testing.T) {
	const runs = 100
	var sb strings.Builder
	for i := range 2*runs + 10 {
		textChunk(&sb, i, false)
	}
	dec := newStreamDecoder("gemini-test", strings.NewReader(sb.String()))
	var ev llm.Event
	for range 5 { // start, block start, the first deltas
		if err := dec.Next(&ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(runs, func() {
		if err := dec.Next(&ev); err != nil || ev.Type != llm.EventTextDelta {
			t.Fatalf("Next() = %v, %v", ev.Type, err)
		}
	}); n > 1 {
		t.Errorf("a text delta event allocates %v times, want at most 1", n)
	}

	// Chunks that switch between thinking and text: block stop and start
	// events come with each delta, and allocate nothing.
	sb.Reset()
	for i := range 6*runs + 10 {
		textChunk(&sb, i, i%2 == 0)
	}
	dec = newStreamDecoder("gemini-test", strings.NewReader(sb.String()))
	for range 5 {
		if err := dec.Next(&ev); err != nil {
			t.Fatal(err)
		}
	}
	deltas := 0
	if n := testing.AllocsPerRun(runs, func() {
		if err := dec.Next(&ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == llm.EventTextDelta {
			deltas++
		}
	}); n > float64(deltas)/(runs+1)+0.01 {
		t.Errorf("%v allocations per event for %d deltas in %d events, want at most one per delta", n, deltas, runs+1)
	}

	// Chunks with usage and no new text queue no event and allocate
	// nothing.
	sb.Reset()
	for range runs + 10 {
		sb.WriteString(`data: {"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":3},"modelVersion":"gemini-2.5-flash","responseId":"r"}` + "\n\n")
	}
	dec = newStreamDecoder("gemini-test", strings.NewReader(sb.String()))
	if err := dec.handle(); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(runs, func() {
		if err := dec.handle(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("a chunk with no new string allocates %v times, want 0", n)
	}
}
