// Package openai is the OpenAI-compatible ingress: it reads what a client
// sends to /v1/chat/completions and /v1/embeddings without re-encoding it, and
// renders errors in OpenAI's error schema.
package openai

import (
	"encoding/json"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// Sniffed is what the gateway needs from an OpenAI request body. The body
// itself is forwarded as it came.
type Sniffed struct {
	// Model is the requested model.
	Model string
	// ModelStart and ModelEnd delimit the model's JSON string in the body.
	ModelStart, ModelEnd int
	// Stream is the body's "stream" flag.
	Stream bool
	// IncludeUsage is stream_options.include_usage.
	IncludeUsage bool
	// MaxTokens is max_completion_tokens, else max_tokens; 0 when unset.
	MaxTokens int64
	// StreamOptionsAt is the index of stream_options' '{', 0 if absent.
	StreamOptionsAt int
	// IncludeUsageStart and IncludeUsageEnd delimit include_usage's value.
	IncludeUsageStart, IncludeUsageEnd int
}

// Sniff validates body as one JSON object and finds its top-level "model",
// "stream" and "stream_options.include_usage" without decoding the rest.
// Errors are *apierr.Error of kind BadRequest. Sniff does not allocate for
// bodies whose keys and model carry no escape sequences.
func Sniff(body []byte) (Sniffed, error) {
	var s Sniffed
	if !json.Valid(body) {
		return s, apierr.New(apierr.BadRequest, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)").WithCode("invalid_json")
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return s, apierr.New(apierr.BadRequest, "the request body must be a JSON object").WithCode("invalid_json")
	}
	foundModel := false
	err := eachMember(body, i, func(key []byte, vs, ve int) error {
		switch {
		case keyIs(key, "model"):
			if body[vs] != '"' {
				return apierr.New(apierr.BadRequest, "model must be a string").WithParam("model")
			}
			s.Model = stringValue(body[vs:ve])
			s.ModelStart, s.ModelEnd = vs, ve
			foundModel = true
		case keyIs(key, "max_completion_tokens"):
			s.MaxTokens = llm.ParseTokenCount(body[vs:ve])
		case keyIs(key, "max_tokens"):
			if maxTokens := llm.ParseTokenCount(body[vs:ve]); s.MaxTokens == 0 {
				s.MaxTokens = maxTokens // max_completion_tokens wins when both are set
			}
		case keyIs(key, "stream"):
			switch body[vs] {
			case 't':
				s.Stream = true
			case 'f', 'n':
				s.Stream = false
			default:
				return apierr.New(apierr.BadRequest, "stream must be a boolean").WithParam("stream")
			}
		case keyIs(key, "stream_options"):
			if body[vs] != '{' {
				return nil // null or wrong type: the upstream judges it
			}
			s.IncludeUsage, s.StreamOptionsAt = false, vs
			s.IncludeUsageStart, s.IncludeUsageEnd = 0, 0
			return eachMember(body, vs, func(k []byte, s2, e2 int) error {
				if keyIs(k, "include_usage") {
					s.IncludeUsage = body[s2] == 't'
					s.IncludeUsageStart, s.IncludeUsageEnd = s2, e2
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	if !foundModel || s.Model == "" {
		return s, apierr.New(apierr.BadRequest, "you must provide a model parameter").WithParam("model")
	}
	return s, nil
}

// Raw returns the llm.RawRequest for body as sniffed.
func (s *Sniffed) Raw(op llm.Op, body []byte) llm.RawRequest {
	return llm.RawRequest{Op: op, Body: body, ModelStart: s.ModelStart, ModelEnd: s.ModelEnd, Model: s.Model, Stream: s.Stream,
		MaxTokens: s.MaxTokens, IncludeUsage: s.IncludeUsage, StreamOptionsAt: s.StreamOptionsAt, IncludeUsageStart: s.IncludeUsageStart, IncludeUsageEnd: s.IncludeUsageEnd}
}

// eachMember calls fn for each member of the object starting at body[i]
// ('{'), with the raw key (quotes stripped, escapes kept) and the value's
// span. body must be valid JSON.
func eachMember(body []byte, i int, fn func(key []byte, vs, ve int) error) error {
	i = skipSpace(body, i+1)
	if body[i] == '}' {
		return nil
	}
	for {
		ks := i
		ke := skipString(body, ks)
		i = skipSpace(body, ke)
		i = skipSpace(body, i+1) // ':'
		vs := i
		ve := skipValue(body, vs)
		if err := fn(body[ks+1:ke-1], vs, ve); err != nil {
			return err
		}
		i = skipSpace(body, ve)
		if body[i] == '}' {
			return nil
		}
		i = skipSpace(body, i+1) // ','
	}
}

// keyIs reports whether the raw key equals name. A key written with escape
// sequences is decoded first.
func keyIs(raw []byte, name string) bool {
	for _, c := range raw {
		if c == '\\' {
			var k string
			quoted := make([]byte, 0, len(raw)+2)
			quoted = append(append(append(quoted, '"'), raw...), '"')
			if json.Unmarshal(quoted, &k) != nil {
				return false
			}
			return k == name
		}
	}
	return string(raw) == name
}

// stringValue decodes a JSON string token (quotes included).
func stringValue(tok []byte) string {
	for _, c := range tok {
		if c == '\\' {
			var s string
			_ = json.Unmarshal(tok, &s) // tok is a valid string token
			return s
		}
	}
	return string(tok[1 : len(tok)-1])
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string token at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return i
	}
}
