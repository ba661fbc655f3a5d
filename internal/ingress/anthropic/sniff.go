package anthropic

import (
	"encoding/json"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/llm/jsonscan"
)

// Sniffed is what the gateway needs from a Messages API request body for
// the passthrough path; the body itself is forwarded as it came.
type Sniffed struct {
	// Model is the requested model.
	Model string
	// ModelStart and ModelEnd delimit the model's JSON string in the body,
	// quotes included.
	ModelStart, ModelEnd int
	// Stream is the body's "stream" flag.
	Stream bool
	// MaxTokens is max_tokens; 0 when unset.
	MaxTokens int64
}

// Sniff validates body as one JSON object and finds its top-level "model"
// and "stream" without decoding the rest. Errors are *apierr.Error of kind
// BadRequest, worded as Anthropic words them. Sniff does not allocate for
// bodies whose keys and model carry no escape sequences, beyond the model
// string itself.
func Sniff(body []byte) (Sniffed, error) {
	var s Sniffed
	if !json.Valid(body) {
		return s, apierr.New(apierr.BadRequest, "The request body is not valid JSON.")
	}
	i := jsonscan.SkipSpace(body, 0)
	if body[i] != '{' {
		return s, apierr.New(apierr.BadRequest, "The request body must be a JSON object.")
	}
	found := false
	err := jsonscan.EachMember(body, i, func(key []byte, vs, ve int) error {
		switch {
		case jsonscan.KeyIs(key, "model"):
			if body[vs] != '"' {
				return apierr.New(apierr.BadRequest, "model: Input should be a valid string").WithParam("model")
			}
			s.Model = jsonscan.StringValue(body[vs:ve])
			s.ModelStart, s.ModelEnd = vs, ve
			found = true
		case jsonscan.KeyIs(key, "max_tokens"):
			s.MaxTokens = llm.ParseTokenCount(body[vs:ve])
		case jsonscan.KeyIs(key, "stream"):
			switch body[vs] {
			case 't':
				s.Stream = true
			case 'f', 'n':
				s.Stream = false
			default:
				return apierr.New(apierr.BadRequest, "stream: Input should be a valid boolean").WithParam("stream")
			}
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	if !found || s.Model == "" {
		return s, apierr.New(apierr.BadRequest, "model: Field required").WithParam("model")
	}
	return s, nil
}

// Raw returns the llm.RawRequest for body as sniffed.
func (s *Sniffed) Raw(body []byte) llm.RawRequest {
	return llm.RawRequest{Op: llm.OpChat, Body: body, ModelStart: s.ModelStart, ModelEnd: s.ModelEnd, Model: s.Model, Stream: s.Stream, MaxTokens: s.MaxTokens}
}

// The scanner below is a compact copy of ingress/openai's: its helpers are
// unexported there and moving them to a shared package is out of this
// package's scope. They walk JSON already checked by json.Valid.

// keyString decodes a raw key (without quotes).
func keyString(raw []byte) string {
	for _, c := range raw {
		if c == '\\' {
			var k string
			q := make([]byte, 0, len(raw)+2)
			q = append(append(append(q, '"'), raw...), '"')
			_ = json.Unmarshal(q, &k)
			return k
		}
	}
	return string(raw)
}
