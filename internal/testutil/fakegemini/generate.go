package fakegemini

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/multipolar/multipolar/internal/testutil/fakescript"
	"net/http"
	"strings"
	"time"
	"unicode"
)

// imageTokens is what Gemini charges for one inline image.
const imageTokens = 258

// generateRequest is what the fake needs from a generateContent request.
type generateRequest struct {
	promptTokens int
}

type partIn struct {
	Text       *string `json:"text"`
	InlineData *struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	} `json:"inlineData"`
}

type contentIn struct {
	Role  string   `json:"role"`
	Parts []partIn `json:"parts"`
}

// parseGenerate validates body as Google does for the fields the fake
// reads: contents must be present, roles must be user, model or function,
// every content needs parts, and inlineData needs a MIME type and base64
// data. Messages are Google's.
func parseGenerate(body []byte) (generateRequest, *apiError) {
	var req generateRequest
	var in struct {
		Contents          []contentIn `json:"contents"`
		SystemInstruction *contentIn  `json:"systemInstruction"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return req, errInvalid(fmt.Sprintf("Invalid JSON payload received. %s", err))
	}
	if len(in.Contents) == 0 {
		return req, errInvalid("* GenerateContentRequest.contents: contents is not specified\n")
	}
	for i, c := range in.Contents {
		switch c.Role {
		case "", "user", "model", "function":
		default:
			return req, errInvalid("Please use a valid role: user, model.")
		}
		n, e := countParts(c.Parts, fmt.Sprintf("contents[%d]", i))
		if e != nil {
			return req, e
		}
		req.promptTokens += n
	}
	if in.SystemInstruction != nil {
		n, e := countParts(in.SystemInstruction.Parts, "system_instruction")
		if e != nil {
			return req, e
		}
		req.promptTokens += n
	}
	return req, nil
}

// countParts validates parts and returns their prompt tokens.
func countParts(parts []partIn, where string) (int, *apiError) {
	if len(parts) == 0 {
		return 0, errInvalid(fmt.Sprintf("* GenerateContentRequest.%s.parts: contents.parts must not be empty.\n", where))
	}
	n := 0
	for j, p := range parts {
		if p.Text != nil {
			n += len(strings.Fields(*p.Text))
		}
		if d := p.InlineData; d != nil {
			field := fmt.Sprintf("%s.parts[%d].inline_data", where, j)
			if d.MimeType == "" {
				return 0, errInvalid(fmt.Sprintf("* GenerateContentRequest.%s.mime_type: mime_type is not specified\n", field))
			}
			if _, err := base64.StdEncoding.DecodeString(d.Data); err != nil || d.Data == "" {
				return 0, errInvalid(fmt.Sprintf("Invalid value at '%s.data' (TYPE_BYTES), Base64 decoding failed for %q", field, d.Data))
			}
			if !strings.HasPrefix(d.MimeType, "image/") && !strings.HasPrefix(d.MimeType, "audio/") &&
				!strings.HasPrefix(d.MimeType, "video/") && d.MimeType != "application/pdf" && !strings.HasPrefix(d.MimeType, "text/") {
				return 0, errInvalid("Unsupported MIME type: " + d.MimeType)
			}
			n += imageTokens
		}
	}
	return n, nil
}

// Wire types. Field order is the key order Google writes.
type (
	response struct {
		Candidates    []candidate `json:"candidates"`
		UsageMetadata usage       `json:"usageMetadata"`
		ModelVersion  string      `json:"modelVersion"`
		CreateTime    string      `json:"createTime,omitempty"`
		ResponseID    string      `json:"responseId"`
	}
	candidate struct {
		Content      content `json:"content"`
		FinishReason string  `json:"finishReason,omitempty"`
		Index        *int    `json:"index,omitempty"`
	}
	content struct {
		Parts []part `json:"parts"`
		Role  string `json:"role"`
	}
	part struct {
		Text         string        `json:"text,omitempty"`
		FunctionCall *functionCall `json:"functionCall,omitempty"`
	}
	functionCall struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	}
	usage struct {
		PromptTokenCount        int             `json:"promptTokenCount"`
		CandidatesTokenCount    int             `json:"candidatesTokenCount,omitempty"`
		TotalTokenCount         int             `json:"totalTokenCount"`
		CachedContentTokenCount int             `json:"cachedContentTokenCount,omitempty"`
		PromptTokensDetails     []modalityCount `json:"promptTokensDetails"`
		ThoughtsTokenCount      int             `json:"thoughtsTokenCount,omitempty"`
		TrafficType             string          `json:"trafficType,omitempty"`
	}
	modalityCount struct {
		Modality   string `json:"modality"`
		TokenCount int    `json:"tokenCount"`
	}
)

// answer holds one scripted reply; response renders it whole or as the
// stream chunk that carries the first n pieces.
type answer struct {
	rt           route
	pieces       []string
	call         *functionCall
	promptTokens int
	cached       int
	thoughts     int
	id           string
	created      time.Time
}

func (s *Server) newAnswer(rt route, req generateRequest, b Behavior) answer {
	a := answer{rt: rt, promptTokens: req.promptTokens + s.opts.CachedTokens, cached: s.opts.CachedTokens,
		thoughts: s.opts.ThoughtsTokens, id: s.opts.IDs(), created: s.opts.Now()}
	text := b.Content
	if text == "" && b.FunctionCall == nil {
		text = DefaultContent
	}
	a.pieces = splitContent(text, s.opts.Chunks)
	if fc := b.FunctionCall; fc != nil {
		args := fc.Args
		if args == "" || !json.Valid([]byte(args)) {
			args = "{}"
		}
		a.call = &functionCall{Name: fc.Name, Args: json.RawMessage(args)}
	}
	return a
}

// chunks is the number of stream chunks: one per text piece, plus one for
// a function call.
func (a answer) chunks() int {
	if a.call != nil {
		return len(a.pieces) + 1
	}
	return len(a.pieces)
}

// response renders the answer up to chunk n (1-based). whole renders the
// non-streamed body: all text in one part. Streamed chunks carry their own
// piece and the running usage; the last carries finishReason.
func (a answer) response(n int, whole bool) response {
	var parts []part
	switch {
	case whole:
		if t := strings.Join(a.pieces, ""); t != "" {
			parts = append(parts, part{Text: t})
		}
		if a.call != nil {
			parts = append(parts, part{FunctionCall: a.call})
		}
		n = a.chunks()
	case n <= len(a.pieces):
		parts = append(parts, part{Text: a.pieces[n-1]})
	default:
		parts = append(parts, part{FunctionCall: a.call})
	}
	last := n >= a.chunks()
	c := candidate{Content: content{Parts: parts, Role: "model"}}
	if last {
		c.FinishReason = "STOP"
	}
	candidates := n
	u := usage{
		PromptTokenCount:        a.promptTokens,
		CandidatesTokenCount:    candidates,
		TotalTokenCount:         a.promptTokens + candidates,
		CachedContentTokenCount: a.cached,
		PromptTokensDetails:     []modalityCount{{Modality: "TEXT", TokenCount: a.promptTokens}},
	}
	if last {
		// Thinking happens before the answer, but Google reports thoughts
		// with the totals.
		u.ThoughtsTokenCount = a.thoughts
		u.TotalTokenCount += a.thoughts
	}
	r := response{Candidates: []candidate{c}, UsageMetadata: u, ModelVersion: a.rt.model, ResponseID: a.id}
	if a.rt.backend == BackendVertex {
		r.CreateTime = a.created.UTC().Format(time.RFC3339Nano)
		r.UsageMetadata.TrafficType = "ON_DEMAND"
	} else {
		r.Candidates[0].Index = ptr(0)
	}
	return r
}

// stream writes the answer chunk by chunk, flushing each: as SSE events
// when sse is set, else as the elements of one JSON array.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, a answer, b Behavior, sse bool) {
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	}
	w.WriteHeader(http.StatusOK)
	cw := &chunkWriter{s: s, ctx: ctx, w: w, rc: http.NewResponseController(w), delay: b.ChunkDelay, sse: sse}
	for n := 1; n <= a.chunks(); n++ {
		cw.chunk(compactJSON(a.response(n, false)))
		if b.StreamErrorAfter > 0 && n >= b.StreamErrorAfter {
			code := b.StreamErrorStatus
			if code == 0 {
				code = http.StatusInternalServerError
			}
			cw.chunk(compactJSON(errScripted(code, a.rt)))
			break
		}
		if b.CutAfter > 0 && n >= b.CutAfter {
			if cw.result == fakescript.Done && !cw.failed {
				fakescript.Abort(w)
			}
			return
		}
	}
	if !sse {
		cw.raw([]byte("]"))
	}
}

// chunkWriter writes stream chunks, each flushed on its own, and waits
// ChunkDelay between them. After a failure it does nothing.
type chunkWriter struct {
	s      *Server
	ctx    context.Context
	w      http.ResponseWriter
	rc     *http.ResponseController
	delay  time.Duration
	sse    bool
	wrote  bool
	result fakescript.Wait
	failed bool
}

func (cw *chunkWriter) chunk(data []byte) {
	if cw.failed || cw.result != fakescript.Done {
		return
	}
	if cw.wrote && cw.delay > 0 {
		if cw.result = cw.s.Sleep(cw.ctx, cw.delay); cw.result != fakescript.Done {
			if cw.result == fakescript.ServerClosed {
				fakescript.Abort(cw.w)
			}
			return
		}
	}
	var b bytes.Buffer
	switch {
	case cw.sse:
		b.WriteString("data: ")
		b.Write(data)
		b.WriteString("\r\n\r\n")
	case !cw.wrote:
		b.WriteByte('[')
		b.Write(data)
	default:
		b.WriteString(",\r\n")
		b.Write(data)
	}
	cw.wrote = true
	cw.raw(b.Bytes())
}

func (cw *chunkWriter) raw(p []byte) {
	if cw.failed || cw.result != fakescript.Done {
		return
	}
	if _, err := cw.w.Write(p); err != nil {
		cw.failed = true
		return
	}
	if err := cw.rc.Flush(); err != nil {
		cw.failed = true
	}
}

// splitContent splits text into at most n non-empty pieces that join back
// to text, on word boundaries (a piece starts with the space before its
// word) when there are at least n words, and on runes otherwise.
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
		words = words[:0]
		for _, r := range text {
			words = append(words, string(r))
		}
		n = min(n, len(words))
	}
	pieces := make([]string, n)
	for j := range n {
		pieces[j] = strings.Join(words[j*len(words)/n:(j+1)*len(words)/n], "")
	}
	return pieces
}
