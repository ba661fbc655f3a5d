package fakeupstream

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/multipolar/multipolar/internal/testutil/fakescript"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
)

// chatRequest is what the fake needs from a chat completion request.
type chatRequest struct {
	model        string
	promptTokens int
	stream       bool
	includeUsage bool
}

// parseChat validates body as the real API does for the fields the fake
// reads and reports the first problem as the API would.
func (s *Server) parseChat(body []byte, rt route) (chatRequest, *apiError) {
	var req chatRequest
	m, e := decodeObject(body)
	if e != nil {
		return req, e
	}
	model, e := s.parseModel(m, rt)
	if e != nil {
		return req, e
	}
	req.model = model

	raw, ok := m["messages"]
	if !ok || isNull(raw) {
		return req, ptr(errMissingParam("messages"))
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return req, ptr(errInvalidType("messages", "an array of objects", jsonKind(raw)))
	}
	if len(msgs) == 0 {
		return req, ptr(apiError{status: http.StatusBadRequest,
			message: "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
			typ:     "invalid_request_error", param: "messages", code: "empty_array"})
	}
	for i, mr := range msgs {
		var msg struct {
			Content json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal(mr, &msg); err != nil {
			return req, ptr(errInvalidType("messages["+itoa(i)+"]", "an object", jsonKind(mr)))
		}
		req.promptTokens += 4 + contentWords(msg.Content)
	}

	if raw, ok := m["stream"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &req.stream); err != nil {
			return req, ptr(errInvalidType("stream", "a boolean", jsonKind(raw)))
		}
	}
	if raw, ok := m["stream_options"]; ok && !isNull(raw) {
		if !req.stream {
			return req, ptr(apiError{status: http.StatusBadRequest,
				message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
				typ:     "invalid_request_error", param: "stream_options"})
		}
		var so struct {
			IncludeUsage bool `json:"include_usage"`
		}
		if err := json.Unmarshal(raw, &so); err != nil {
			return req, ptr(errInvalidType("stream_options", "an object", jsonKind(raw)))
		}
		req.includeUsage = so.IncludeUsage
	}
	return req, nil
}

// parseModel returns the model to echo. Plain and Azure v1 paths require
// "model"; Azure classic paths name the deployment in the path instead.
func (s *Server) parseModel(m map[string]json.RawMessage, rt route) (string, *apiError) {
	var model string
	if raw, ok := m["model"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &model); err != nil {
			return "", ptr(errInvalidType("model", "a string", jsonKind(raw)))
		}
	}
	if model == "" {
		if rt.fam != famAzureClassic {
			return "", ptr(errNoModel())
		}
		model = rt.deployment
	}
	if s.opts.StrictModels {
		name := model
		if rt.fam == famAzureClassic {
			name = rt.deployment
		}
		if !slices.Contains(s.opts.Models, name) {
			return "", ptr(errModelNotFound(name))
		}
	}
	return model, nil
}

func (s *Server) serveChat(w http.ResponseWriter, r *http.Request, rt route, body []byte, b Behavior) {
	req, e := s.parseChat(body, rt)
	if e != nil {
		writeError(w, s.opts.Flavor, *e)
		return
	}
	text := b.Content
	if text == "" {
		text = DefaultContent
	}
	c := completion{
		id:      s.opts.IDs(),
		created: s.opts.Now().Unix(),
		model:   req.model,
		pieces:  splitContent(text, s.opts.Chunks),
		azure:   s.opts.Flavor == FlavorAzure,
	}
	c.usage = usageObject(req.promptTokens, len(c.pieces), s.opts.CachedTokens)
	if !req.stream {
		writeBody(w, http.StatusOK, c.body())
		return
	}
	s.stream(r.Context(), w, c, req.includeUsage, b)
}

// completion holds one answer; its methods render the wire objects.
type completion struct {
	id      string
	created int64
	model   string
	pieces  []string
	usage   object
	azure   bool
}

// body renders the non-streamed chat.completion.
func (c completion) body() []byte {
	choice := object{
		{"index", 0},
		{"message", object{
			{"role", "assistant"},
			{"content", strings.Join(c.pieces, "")},
			{"refusal", nil},
			{"annotations", []any{}},
		}},
		{"logprobs", nil},
		{"finish_reason", "stop"},
	}
	if !c.azure {
		return indentJSON(object{
			{"id", c.id},
			{"object", "chat.completion"},
			{"created", c.created},
			{"model", c.model},
			{"choices", []object{choice}},
			{"usage", c.usage},
			{"service_tier", "default"},
			{"system_fingerprint", SystemFingerprint},
		}, "  ")
	}
	choice = append(choice, field{"content_filter_results", object{
		{"hate", safe()},
		{"protected_material_code", notDetected()},
		{"protected_material_text", notDetected()},
		{"self_harm", safe()},
		{"sexual", safe()},
		{"violence", safe()},
	}})
	return compactJSON(sortKeys(object{
		{"id", c.id},
		{"object", "chat.completion"},
		{"created", c.created},
		{"model", c.model},
		{"choices", []object{choice}},
		{"usage", c.usage},
		{"system_fingerprint", SystemFingerprint},
		{"prompt_filter_results", promptFilterResults()},
	}))
}

// chunk renders one chat.completion.chunk. choices nil means the final
// usage chunk.
func (c completion) chunk(choices []object, includeUsage bool) []byte {
	o := object{
		{"id", c.id},
		{"object", "chat.completion.chunk"},
		{"created", c.created},
		{"model", c.model},
	}
	if !c.azure {
		o = append(o, field{"service_tier", "default"})
	}
	o = append(o, field{"system_fingerprint", SystemFingerprint})
	if choices == nil {
		o = append(o, field{"choices", []object{}}, field{"usage", c.usage})
	} else {
		o = append(o, field{"choices", choices})
		if includeUsage {
			o = append(o, field{"usage", nil})
		}
	}
	if c.azure {
		return compactJSON(sortKeys(o))
	}
	return compactJSON(o)
}

// choiceDelta renders one streamed choice; filter is Azure's
// content_filter_results for it.
func (c completion) choiceDelta(delta object, finish any, filter object) []object {
	o := object{
		{"index", 0},
		{"delta", delta},
		{"logprobs", nil},
		{"finish_reason", finish},
	}
	if c.azure {
		o = append(o, field{"content_filter_results", filter})
	}
	return []object{o}
}

// promptFilterChunk is Azure's leading chunk: no choices, empty metadata
// and the prompt's filter results.
func promptFilterChunk(includeUsage bool) []byte {
	o := object{
		{"choices", []object{}},
		{"created", 0},
		{"id", ""},
		{"model", ""},
		{"object", ""},
		{"prompt_filter_results", promptFilterResults()},
	}
	if includeUsage {
		o = append(o, field{"usage", nil})
	}
	return compactJSON(sortKeys(o))
}

// stream writes the completion as server-sent events, flushing each chunk.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, c completion, includeUsage bool, b Behavior) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{s: s, ctx: ctx, w: w, rc: http.NewResponseController(w), delay: b.ChunkDelay}

	if c.azure {
		sw.event(promptFilterChunk(includeUsage))
	}
	role := object{{"role", "assistant"}, {"content", ""}, {"refusal", nil}}
	sw.event(c.chunk(c.choiceDelta(role, nil, object{}), includeUsage))
	for i, p := range c.pieces {
		sw.event(c.chunk(c.choiceDelta(object{{"content", p}}, nil, safeFilters()), includeUsage))
		if b.CutAfter > 0 && i+1 >= b.CutAfter {
			break
		}
	}
	if b.CutAfter > 0 {
		if sw.result == fakescript.Done {
			fakescript.Abort(w)
		}
		return
	}
	sw.event(c.chunk(c.choiceDelta(object{}, "stop", object{}), includeUsage))
	if includeUsage {
		sw.event(c.chunk(nil, includeUsage))
	}
	sw.event([]byte("[DONE]"))
}

// sseWriter writes "data: ...\n\n" events, each flushed on its own, and
// waits ChunkDelay between them. After a failure it does nothing.
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

func (sw *sseWriter) event(data []byte) {
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
	b.Grow(len(data) + 8)
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	if _, err := sw.w.Write(b.Bytes()); err != nil {
		sw.failed = true
		return
	}
	if err := sw.rc.Flush(); err != nil {
		sw.failed = true
	}
}

func usageObject(prompt, completion, cached int) object {
	return object{
		{"prompt_tokens", prompt},
		{"completion_tokens", completion},
		{"total_tokens", prompt + completion},
		{"prompt_tokens_details", object{
			{"cached_tokens", cached},
			{"audio_tokens", 0},
		}},
		{"completion_tokens_details", object{
			{"reasoning_tokens", 0},
			{"audio_tokens", 0},
			{"accepted_prediction_tokens", 0},
			{"rejected_prediction_tokens", 0},
		}},
	}
}

func safe() object        { return object{{"filtered", false}, {"severity", "safe"}} }
func notDetected() object { return object{{"filtered", false}, {"detected", false}} }

func safeFilters() object {
	return object{{"hate", safe()}, {"self_harm", safe()}, {"sexual", safe()}, {"violence", safe()}}
}

func promptFilterResults() []object {
	return []object{{
		{"prompt_index", 0},
		{"content_filter_results", object{
			{"hate", safe()},
			{"jailbreak", notDetected()},
			{"self_harm", safe()},
			{"sexual", safe()},
			{"violence", safe()},
		}},
	}}
}

// splitContent splits text into at most n non-empty pieces that join back
// to text. Pieces follow word boundaries (a piece starts with the space
// before its word, as GPT tokens do) when there are at least n words, and
// rune boundaries otherwise.
func splitContent(text string, n int) []string {
	if text == "" {
		return nil
	}
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
		runes := []rune(text)
		words = words[:0]
		for _, r := range runes {
			words = append(words, string(r))
		}
		n = min(n, len(runes))
	}
	pieces := make([]string, n)
	for j := range n {
		pieces[j] = strings.Join(words[j*len(words)/n:(j+1)*len(words)/n], "")
	}
	return pieces
}

// contentWords counts whitespace-separated words in a message's content:
// a string, or an array of parts whose "text" fields count.
func contentWords(raw json.RawMessage) int {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return len(strings.Fields(s))
	}
	var parts []struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) == nil {
		n := 0
		for _, p := range parts {
			n += len(strings.Fields(p.Text))
		}
		return n
	}
	return 0
}
