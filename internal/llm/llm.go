// Package llm holds the types every ingress and provider adapter shares: the
// operations the gateway serves and the raw request a passthrough forwards.
// It imports only the standard library.
package llm

// Op is an API operation the gateway serves.
type Op uint8

// Operations.
const (
	OpChat Op = iota
	OpEmbeddings
)

// String names the operation, for metrics and logs.
func (o Op) String() string {
	switch o {
	case OpChat:
		return "chat"
	case OpEmbeddings:
		return "embeddings"
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
}

// BodyFor returns the body to send when the upstream must see model as the
// model name: the client's bytes when nothing changes, else a copy with only
// the model value replaced.
func (r *RawRequest) BodyFor(model string) []byte {
	if model == r.Model || r.ModelEnd == 0 {
		return r.Body
	}
	out := make([]byte, 0, len(r.Body)+len(model)+2)
	out = append(out, r.Body[:r.ModelStart]...)
	out = AppendJSONString(out, model)
	return append(out, r.Body[r.ModelEnd:]...)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
