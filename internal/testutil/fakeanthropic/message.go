package fakeanthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/multipolar/multipolar/internal/testutil/fakescript"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// answer holds one scripted reply; its methods render the wire objects.
type answer struct {
	ids          idSet
	model        string
	text         []string // text pieces; nil means no text block
	tool         *ToolCall
	toolInput    []string // partial_json pieces of tool.Input
	stopReason   string
	stopSequence any // string or nil
	inputTokens  int
	cacheRead    int
	cacheCreate  int
}

// newAnswer decides the reply to mr under b. It fails only if the script's
// ToolCall.Input is not a JSON object.
func (s *Server) newAnswer(mr msgRequest, b Behavior, ids idSet) (answer, bool) {
	a := answer{
		ids:         ids,
		model:       mr.model,
		stopReason:  "end_turn",
		inputTokens: mr.inputTokens,
		cacheRead:   s.opts.CacheReadTokens,
		cacheCreate: s.opts.CacheCreationTokens,
	}
	if b.StopSequence != "" {
		a.stopReason, a.stopSequence = "stop_sequence", b.StopSequence
	}
	useTool := b.ToolCall != nil && mr.hasTools
	if !useTool || b.Content != "" {
		text := b.Content
		if text == "" {
			text = DefaultContent
		}
		a.text = splitContent(text, s.opts.Chunks)
	}
	if useTool {
		var in bytes.Buffer
		if !isObject(b.ToolCall.Input) || json.Compact(&in, b.ToolCall.Input) != nil {
			return a, false
		}
		a.tool = b.ToolCall
		a.toolInput = splitRunes(in.String(), s.opts.Chunks)
		a.stopReason, a.stopSequence = "tool_use", nil
	}
	return a, true
}

// outputTokens is the documented output count: one per streamed piece.
func (a answer) outputTokens() int { return len(a.text) + len(a.toolInput) }

// usage renders the Usage object with output output tokens.
func (a answer) usage(output int) object {
	return object{
		{"input_tokens", a.inputTokens},
		{"cache_creation_input_tokens", a.cacheCreate},
		{"cache_read_input_tokens", a.cacheRead},
		{"cache_creation", object{
			{"ephemeral_5m_input_tokens", a.cacheCreate},
			{"ephemeral_1h_input_tokens", 0},
		}},
		{"output_tokens", output},
		{"service_tier", "standard"},
		{"server_tool_use", nil},
		{"inference_geo", nil},
		{"output_tokens_details", nil},
		{"speed", "standard"},
	}
}

// message renders the Message object; final selects the complete content
// and stop reason rather than message_start's empty ones.
func (a answer) message(final bool) object {
	content := []object{}
	var stopReason, stopSequence any
	output := 1 // message_start reports the first token, as the API does
	if final {
		if a.text != nil {
			content = append(content, textBlock(strings.Join(a.text, "")))
		}
		if a.tool != nil {
			content = append(content, a.toolBlock(json.RawMessage(strings.Join(a.toolInput, ""))))
		}
		stopReason, stopSequence, output = a.stopReason, a.stopSequence, a.outputTokens()
	}
	return object{
		{"id", a.ids.message},
		{"type", "message"},
		{"role", "assistant"},
		{"model", a.model},
		{"content", content},
		{"stop_reason", stopReason},
		{"stop_sequence", stopSequence},
		{"stop_details", nil},
		{"usage", a.usage(output)},
		{"container", nil},
		{"diagnostics", nil},
	}
}

func textBlock(text string) object {
	return object{{"type", "text"}, {"text", text}, {"citations", nil}}
}

func (a answer) toolBlock(input json.RawMessage) object {
	return object{
		{"type", "tool_use"},
		{"id", a.ids.tool},
		{"name", a.tool.Name},
		{"input", input},
		{"caller", object{{"type", "direct"}}},
	}
}

// serveMessage answers a validated messages request, plain or streamed.
func (s *Server) serveMessage(w http.ResponseWriter, r *http.Request, mr msgRequest, b Behavior, ids idSet) {
	a, ok := s.newAnswer(mr, b, ids)
	if !ok {
		writeError(w, ids.request, apiError{status: http.StatusInternalServerError, typ: "api_error",
			message: "fakeanthropic: Behavior.ToolCall.Input is not a JSON object"})
		return
	}
	if !mr.stream {
		writeJSON(w, http.StatusOK, ids.request, compactJSON(a.message(true)))
		return
	}
	s.stream(r.Context(), w, a, b)
}

// stream writes the answer as server-sent events, flushing each one, in the
// order https://docs.claude.com/en/docs/build-with-claude/streaming shows.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, a answer, b Behavior) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("request-id", a.ids.request)
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{s: s, ctx: ctx, w: w, rc: http.NewResponseController(w), delay: b.ChunkDelay}

	sw.event("message_start", object{{"type", "message_start"}, {"message", a.message(false)}})
	type streamBlock struct {
		start  object
		deltas []object
	}
	var blocks []streamBlock
	if a.text != nil {
		sb := streamBlock{start: textBlock("")}
		for _, p := range a.text {
			sb.deltas = append(sb.deltas, object{{"type", "text_delta"}, {"text", p}})
		}
		blocks = append(blocks, sb)
	}
	if a.tool != nil {
		sb := streamBlock{start: a.toolBlock(json.RawMessage("{}"))}
		for _, p := range a.toolInput {
			sb.deltas = append(sb.deltas, object{{"type", "input_json_delta"}, {"partial_json", p}})
		}
		blocks = append(blocks, sb)
	}
	total := 0
	for _, sb := range blocks {
		total += len(sb.deltas)
	}
	cutAt, errAt := min(b.CutAfter, total), min(b.StreamErrorAfter, total)
	sent := 0
	for i, sb := range blocks {
		sw.event("content_block_start", object{{"type", "content_block_start"}, {"index", i}, {"content_block", sb.start}})
		if i == 0 {
			sw.event("ping", object{{"type", "ping"}})
		}
		for _, d := range sb.deltas {
			sw.event("content_block_delta", object{{"type", "content_block_delta"}, {"index", i}, {"delta", d}})
			sent++
			if b.CutAfter > 0 && sent == cutAt {
				if sw.result == fakescript.Done {
					fakescript.Abort(w)
				}
				return
			}
			if b.StreamErrorAfter > 0 && sent == errAt {
				sw.event("error", errorBody(errScripted(529, a.model), a.ids.request))
				return
			}
		}
		sw.event("content_block_stop", object{{"type", "content_block_stop"}, {"index", i}})
	}
	sw.event("message_delta", object{
		{"type", "message_delta"},
		{"delta", object{
			{"stop_reason", a.stopReason},
			{"stop_sequence", a.stopSequence},
			{"stop_details", nil},
			{"container", nil},
		}},
		{"usage", object{
			{"input_tokens", a.inputTokens},
			{"cache_creation_input_tokens", a.cacheCreate},
			{"cache_read_input_tokens", a.cacheRead},
			{"output_tokens", a.outputTokens()},
			{"server_tool_use", nil},
			{"output_tokens_details", nil},
		}},
	})
	sw.event("message_stop", object{{"type", "message_stop"}})
}

// sseWriter writes "event: <type>\ndata: <json>\n\n" events, each flushed
// on its own, and waits ChunkDelay between them. After a failure it does
// nothing.
type sseWriter struct {
	s      *Server
	ctx    context.Context
	w      http.ResponseWriter
	rc     *http.ResponseController
	delay  time.Duration
	wrote  bool
	result fakescript.Wait
	failed bool
}

// event writes one event; data is an object or pre-encoded JSON bytes.
func (sw *sseWriter) event(name string, data any) {
	if sw.failed || sw.result != fakescript.Done {
		return
	}
	if sw.wrote && sw.delay > 0 {
		if sw.result = sw.s.Sleep(sw.ctx, sw.delay); sw.result != fakescript.Done {
			if sw.result == fakescript.ServerClosed {
				fakescript.Abort(sw.w)
			}
			return
		}
	}
	sw.wrote = true
	var b bytes.Buffer
	b.WriteString("event: ")
	b.WriteString(name)
	b.WriteString("\ndata: ")
	if raw, ok := data.([]byte); ok {
		b.Write(raw)
	} else {
		b.Write(compactJSON(data))
	}
	b.WriteString("\n\n")
	if _, err := sw.w.Write(b.Bytes()); err != nil {
		sw.failed = true
		return
	}
	if err := sw.rc.Flush(); err != nil {
		sw.failed = true
	}
}

// splitContent splits text into at most n non-empty pieces that join back
// to text. Pieces follow word boundaries (a piece starts with the space
// before its word, as Claude's tokens do) when there are at least n words,
// and rune boundaries otherwise.
func splitContent(text string, n int) []string {
	var words []string
	start := 0
	prevSpace := false
	for i, r := range text {
		sp := unicode.IsSpace(r)
		if sp && !prevSpace && i > 0 {
			words = append(words, text[start:i])
			start = i
		}
		prevSpace = sp
	}
	words = append(words, text[start:])
	if len(words) < n {
		return splitRunes(text, n)
	}
	pieces := make([]string, n)
	for j := range n {
		pieces[j] = strings.Join(words[j*len(words)/n:(j+1)*len(words)/n], "")
	}
	return pieces
}

// splitRunes splits s into min(n, runes) non-empty pieces of nearly equal
// rune counts that join back to s.
func splitRunes(s string, n int) []string {
	runes := []rune(s)
	n = min(n, len(runes))
	pieces := make([]string, n)
	for j := range n {
		pieces[j] = string(runes[j*len(runes)/n : (j+1)*len(runes)/n])
	}
	return pieces
}
