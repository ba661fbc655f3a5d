// Package openai is the OpenAI-compatible ingress: it reads what a client
// sends to /v1/chat/completions and /v1/embeddings without re-encoding it, and
// renders errors in OpenAI's error schema.
package openai

import (
	"encoding/json"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/llm/jsonscan"
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
	i := jsonscan.SkipSpace(body, 0)
	if body[i] != '{' {
		return s, apierr.New(apierr.BadRequest, "the request body must be a JSON object").WithCode("invalid_json")
	}
	foundModel := false
	err := jsonscan.EachMember(body, i, func(key []byte, vs, ve int) error {
		switch {
		case jsonscan.KeyIs(key, "model"):
			if body[vs] != '"' {
				return apierr.New(apierr.BadRequest, "model must be a string").WithParam("model")
			}
			s.Model = jsonscan.StringValue(body[vs:ve])
			s.ModelStart, s.ModelEnd = vs, ve
			foundModel = true
		case jsonscan.KeyIs(key, "max_completion_tokens"):
			s.MaxTokens = llm.ParseTokenCount(body[vs:ve])
		case jsonscan.KeyIs(key, "max_tokens"):
			if maxTokens := llm.ParseTokenCount(body[vs:ve]); s.MaxTokens == 0 {
				s.MaxTokens = maxTokens // max_completion_tokens wins when both are set
			}
		case jsonscan.KeyIs(key, "stream"):
			switch body[vs] {
			case 't':
				s.Stream = true
			case 'f', 'n':
				s.Stream = false
			default:
				return apierr.New(apierr.BadRequest, "stream must be a boolean").WithParam("stream")
			}
		case jsonscan.KeyIs(key, "stream_options"):
			if body[vs] != '{' {
				return nil // null or wrong type: the upstream judges it
			}
			s.IncludeUsage, s.StreamOptionsAt = false, vs
			s.IncludeUsageStart, s.IncludeUsageEnd = 0, 0
			return jsonscan.EachMember(body, vs, func(k []byte, s2, e2 int) error {
				if jsonscan.KeyIs(k, "include_usage") {
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
