package openai

import (
	"crypto/rand"
	"strconv"
	"strings"
	"time"

	"github.com/multipolar/multipolar/internal/llm"
)

// EncodeResponse appends resp as an OpenAI chat.completion object, shaped
// as api.openai.com shapes it. model is r.Model, the name the client asked
// for. Thinking parts are not shown: Chat Completions has no field for
// visible reasoning (OpenAI reports only reasoning_tokens). Text parts are
// concatenated; content is null when the answer is only tool calls.
// system_fingerprint is omitted (the spec does not allow null and we have
// none); service_tier is "default".
func (t Translator) EncodeResponse(dst []byte, r *llm.Request, resp *llm.Response) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, resp.ID)
	dst = append(dst, `,"object":"chat.completion","created":`...)
	dst = strconv.AppendInt(dst, created(resp.Created), 10)
	dst = append(dst, `,"model":`...)
	dst = llm.AppendJSONString(dst, r.Model)
	dst = append(dst, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)

	var text strings.Builder
	hasText, calls := false, 0
	for i := range resp.Content {
		switch p := &resp.Content[i]; p.Type {
		case llm.PartText:
			text.WriteString(p.Text)
			hasText = true
		case llm.PartToolCall:
			calls++
		}
	}
	if calls > 0 && !hasText {
		dst = append(dst, "null"...)
	} else {
		dst = llm.AppendJSONString(dst, text.String())
	}
	dst = append(dst, `,"refusal":null`...)
	if calls > 0 {
		dst = append(dst, `,"tool_calls":[`...)
		n := 0
		for i := range resp.Content {
			p := &resp.Content[i]
			if p.Type != llm.PartToolCall || p.ToolCall == nil {
				continue
			}
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst = append(dst, `{"id":`...)
			dst = llm.AppendJSONString(dst, p.ToolCall.ID)
			dst = append(dst, `,"type":"function","function":{"name":`...)
			dst = llm.AppendJSONString(dst, p.ToolCall.Name)
			dst = append(dst, `,"arguments":`...)
			dst = llm.AppendJSONString(dst, p.ToolCall.Arguments)
			dst = append(dst, "}}"...)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"annotations":[]},"logprobs":null,"finish_reason":`...)
	dst = llm.AppendJSONString(dst, finishReason(resp.StopReason))
	dst = append(dst, `}],"usage":`...)
	dst = appendUsage(dst, &resp.Usage)
	return append(dst, `,"service_tier":"default"}`...)
}

// finishReason maps a stop reason to OpenAI's finish_reason. An unknown
// reason reads as "stop", the value for a normal end.
func finishReason(s llm.StopReason) string {
	switch s {
	case llm.StopMaxTokens:
		return "length"
	case llm.StopToolUse:
		return "tool_calls"
	case llm.StopContentFilter:
		return "content_filter"
	}
	return "stop"
}

// appendUsage appends OpenAI's usage object. prompt_tokens includes cached
// tokens, as llm.Usage.InputTokens does.
func appendUsage(b []byte, u *llm.Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, u.InputTokens, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, u.OutputTokens, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, u.InputTokens+u.OutputTokens, 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, u.CachedTokens, 10)
	b = append(b, `,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, u.ReasoningTokens, 10)
	return append(b, `,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

// appendID appends the completion id: id itself when it already has
// OpenAI's chatcmpl- prefix, else id with the prefix, or a fresh random id
// when the provider gave none.
func appendID(b []byte, id string) []byte {
	switch {
	case strings.HasPrefix(id, "chatcmpl-"):
		return llm.AppendJSONString(b, id)
	case id == "":
		id = randomID()
	}
	b = append(b, `"chatcmpl-`...)
	mid := len(b)
	b = llm.AppendJSONString(b, id)
	// Drop the opening quote AppendJSONString wrote after the prefix.
	copy(b[mid:], b[mid+1:])
	return b[:len(b)-1]
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomID returns 29 random base62 characters, the length of OpenAI's ids
// after the prefix.
func randomID() string {
	var b [29]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b[:])
}

// now is the clock for "created" when the provider gave no time.
var now = time.Now

func created(c int64) int64 {
	if c != 0 {
		return c
	}
	return now().Unix()
}
