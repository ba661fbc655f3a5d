package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// Response wire types (GenerateContentResponse); a stream chunk has the same
// shape, or carries "error" instead.
type (
	genResponse struct {
		Candidates     []candidate     `json:"candidates"`
		PromptFeedback *promptFeedback `json:"promptFeedback"`
		UsageMetadata  *usageMetadata  `json:"usageMetadata"`
		ModelVersion   string          `json:"modelVersion"`
		ResponseID     string          `json:"responseId"`
		CreateTime     string          `json:"createTime"`
		Error          *googleError    `json:"error"`
	}
	candidate struct {
		Content struct {
			Parts []respPart `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
		Index        int    `json:"index"`
	}
	respPart struct {
		Text             string            `json:"text"`
		Thought          bool              `json:"thought"`
		ThoughtSignature string            `json:"thoughtSignature"`
		FunctionCall     *respFunctionCall `json:"functionCall"`
	}
	respFunctionCall struct {
		ID   string          `json:"id"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	}
	promptFeedback struct {
		BlockReason string `json:"blockReason"`
	}
	usageMetadata struct {
		PromptTokenCount        int64 `json:"promptTokenCount"`
		CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
		CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
		ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
		ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount"`
	}
)

// usage converts Gemini's counts; see the package comment for the sources.
func (u *usageMetadata) usage() llm.Usage {
	return llm.Usage{
		InputTokens:     u.PromptTokenCount + u.ToolUsePromptTokenCount,
		OutputTokens:    u.CandidatesTokenCount + u.ThoughtsTokenCount,
		CachedTokens:    u.CachedContentTokenCount,
		ReasoningTokens: u.ThoughtsTokenCount,
	}
}

// stopReason maps a finishReason. STOP after a function call is
// StopToolUse, which the caller decides.
func stopReason(finish string) llm.StopReason {
	switch finish {
	case "STOP":
		return llm.StopEndTurn
	case "MAX_TOKENS":
		return llm.StopMaxTokens
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
		"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return llm.StopContentFilter
	}
	return llm.StopUnknown
}

// callID is the id of the n-th function call of an answer (from 0) when
// Gemini sends none.
func callID(id string, n int) string {
	if id != "" {
		return id
	}
	return "call_" + strconv.Itoa(n)
}

// compactArgs returns args as compact JSON text, "{}" when absent.
func compactArgs(dst []byte, args json.RawMessage) []byte {
	a := bytes.TrimSpace(args)
	if len(a) == 0 || bytes.Equal(a, []byte("null")) {
		return append(dst, '{', '}')
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, a); err != nil {
		return append(dst, a...) // already validated by the decoder
	}
	return append(dst, buf.Bytes()...)
}

// DecodeChat decodes a generateContent answer.
func (p *Provider) DecodeChat(_ *http.Response, body []byte) (*llm.Response, error) {
	var g genResponse
	if err := json.Unmarshal(body, &g); err != nil {
		return nil, apierr.Wrap(apierr.UpstreamUnavailable, fmt.Errorf("provider %q: decode answer: %w", p.name, err),
			"the upstream's answer could not be read")
	}
	if g.Error != nil {
		return nil, p.apiError(g.Error, 0, "")
	}
	out := &llm.Response{ID: g.ResponseID, Model: g.ModelVersion}
	if g.CreateTime != "" {
		if t, err := time.Parse(time.RFC3339Nano, g.CreateTime); err == nil {
			out.Created = t.Unix()
		}
	}
	if g.UsageMetadata != nil {
		out.Usage = g.UsageMetadata.usage()
	}
	var c *candidate
	for i := range g.Candidates {
		if g.Candidates[i].Index == 0 {
			c = &g.Candidates[i]
			break
		}
	}
	if c == nil {
		if g.PromptFeedback != nil && g.PromptFeedback.BlockReason != "" {
			out.StopReason = llm.StopContentFilter
			return out, nil
		}
		return nil, apierr.Wrap(apierr.UpstreamUnavailable, fmt.Errorf("provider %q: answer has no candidates", p.name),
			"the upstream's answer was empty")
	}
	calls := 0
	for _, rp := range c.Content.Parts {
		switch {
		case rp.FunctionCall != nil:
			fc := rp.FunctionCall
			out.Content = append(out.Content, llm.Part{
				Type:      llm.PartToolCall,
				ToolCall:  &llm.ToolCall{ID: callID(fc.ID, calls), Name: fc.Name, Arguments: string(compactArgs(nil, fc.Args))},
				Signature: rp.ThoughtSignature,
			})
			calls++
		case rp.Thought:
			out.Content = appendText(out.Content, llm.PartThinking, rp.Text, rp.ThoughtSignature)
		case rp.Text != "":
			out.Content = appendText(out.Content, llm.PartText, rp.Text, rp.ThoughtSignature)
		}
	}
	out.StopReason = stopReason(c.FinishReason)
	if out.StopReason == llm.StopEndTurn && calls > 0 {
		out.StopReason = llm.StopToolUse
	}
	return out, nil
}

// appendText appends text to the last part when it is of type t, else as a
// new part: Gemini may split one text into several parts.
func appendText(parts []llm.Part, t llm.PartType, text, sig string) []llm.Part {
	if n := len(parts); n > 0 && parts[n-1].Type == t && parts[n-1].Signature == "" {
		parts[n-1].Text += text
		parts[n-1].Signature = sig
		return parts
	}
	return append(parts, llm.Part{Type: t, Text: text, Signature: sig})
}
