// Package llm holds the types every ingress and provider adapter shares: the
// operations the gateway serves and the raw request a passthrough forwards.
// It imports only the standard library.
package llm

import "unicode/utf8"

// Op is an API operation the gateway serves.
type Op uint8

// Operations.
const (
	OpChat Op = iota
	OpEmbeddings
	// OpCountTokens is Anthropic's /v1/messages/count_tokens.
	OpCountTokens
)

// String names the operation, for metrics and logs.
func (o Op) String() string {
	switch o {
	case OpChat:
		return "chat"
	case OpEmbeddings:
		return "embeddings"
	case OpCountTokens:
		return "count_tokens"
	}
	return "unknown"
}

// RawRequest is a client request forwarded as the client's bytes. Body must
// not be modified; a provider that needs another model name builds a new
// body with WithModel.
type RawRequest struct {
	Op Op
	// Body is the client's JSON body, exactly as received.
	Body []byte
	// ModelStart and ModelEnd delimit the "model" value in Body, quotes
	// included; both are 0 when the body has no model.
	ModelStart, ModelEnd int
	// Model is the client-facing model name.
	Model string
	// UpstreamModel is the name the chosen upstream knows the model by.
	UpstreamModel string
	// Stream reports whether the client asked for a streamed answer.
	Stream bool
	// MaxTokens is the client's output bound (max_tokens, or OpenAI's
	// max_completion_tokens), 0 when it set none.
	MaxTokens int64
	// IncludeUsage reports whether the client asked for a usage chunk at
	// the end of an OpenAI stream (stream_options.include_usage).
	IncludeUsage bool
	// StreamOptionsAt is the index of the '{' of the body's stream_options
	// object, 0 when there is none.
	StreamOptionsAt int
	// IncludeUsageStart and IncludeUsageEnd delimit the value of
	// stream_options.include_usage in Body; both 0 when it is absent.
	IncludeUsageStart, IncludeUsageEnd int
}

// Edit replaces Body[Start:End] with Text.
type Edit struct {
	Start, End int
	Text       string
}

// Apply returns body with edits applied; edits must not overlap and are
// sorted here. With no edits it returns body itself.
func Apply(body []byte, edits ...Edit) []byte {
	if len(edits) == 0 {
		return body
	}
	for i := 1; i < len(edits); i++ { // insertion sort: a handful of edits
		for j := i; j > 0 && edits[j].Start < edits[j-1].Start; j-- {
			edits[j], edits[j-1] = edits[j-1], edits[j]
		}
	}
	n := len(body)
	for _, e := range edits {
		n += len(e.Text) - (e.End - e.Start)
	}
	out := make([]byte, 0, n)
	at := 0
	for _, e := range edits {
		out = append(out, body[at:e.Start]...)
		out = append(out, e.Text...)
		at = e.End
	}
	return append(out, body[at:]...)
}

// ModelEdit is the edit that makes the body name model, or false when the
// body already does (or has no model).
func (r *RawRequest) ModelEdit(model string) (Edit, bool) {
	if model == r.Model || r.ModelEnd == 0 {
		return Edit{}, false
	}
	return Edit{Start: r.ModelStart, End: r.ModelEnd, Text: string(AppendJSONString(nil, model))}, true
}

// UsageEdit is the edit that turns stream_options.include_usage on in a
// streamed body whose client did not ask for it, or false when there is
// nothing to do.
func (r *RawRequest) UsageEdit() (Edit, bool) {
	switch {
	case !r.Stream || r.IncludeUsage:
		return Edit{}, false
	case r.IncludeUsageEnd > 0: // explicitly false or null
		return Edit{Start: r.IncludeUsageStart, End: r.IncludeUsageEnd, Text: "true"}, true
	case r.StreamOptionsAt > 0:
		at := r.StreamOptionsAt + 1
		text := `"include_usage":true,`
		if i := skipSpace(r.Body, at); i < len(r.Body) && r.Body[i] == '}' {
			text = `"include_usage":true`
		}
		return Edit{Start: at, End: at, Text: text}, true
	}
	at := skipSpace(r.Body, 0) + 1 // just inside the top-level '{'
	return Edit{Start: at, End: at, Text: `"stream_options":{"include_usage":true},`}, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// BodyFor returns the body to send when the upstream must see model as the
// model name: the client's bytes when nothing changes, else a copy with only
// the model value replaced.
func (r *RawRequest) BodyFor(model string) []byte {
	if e, ok := r.ModelEdit(model); ok {
		return Apply(r.Body, e)
	}
	return r.Body
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal. Invalid UTF-8 is
// replaced by U+FFFD, as encoding/json does, so the output is always valid
// JSON text (RFC 8259 §8.1).
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\\ufffd"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return append(b, '"')
}

// ParseTokenCount reads a JSON number token as a non-negative token count;
// anything else (null, a string, a fraction) gives 0.
func ParseTokenCount(tok []byte) int64 {
	var n int64
	if len(tok) == 0 || len(tok) > 18 {
		return 0
	}
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
