package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// This file is the translating path: canonical requests from clients of
// other APIs (Anthropic, Gemini) encoded as OpenAI Chat Completions, and the
// answers decoded back. OpenAI clients reaching an OpenAI upstream take the
// passthrough path (NewRequest) instead.

// NewChatRequest builds the upstream request for r, encoded as a Chat
// Completions body. URL, headers and the Azure deployment rule are
// NewRequest's: the body is built with r.UpstreamModel and handed to
// NewRequest as a raw request, which rewrites the model for Azure v1
// deployments and picks the classic deployment URL, exactly as it does for
// passthrough traffic.
//
// Mapping notes:
//   - System parts become one leading system message, joined by blank lines.
//   - Thinking parts of earlier assistant turns are dropped: Chat
//     Completions cannot take reasoning back, and OpenAI discards prior
//     reasoning between turns anyway.
//   - Tool results in a user message (Anthropic's layout) become tool
//     messages placed before the rest of that user turn. IsError has no
//     OpenAI field and is dropped.
//   - MaxTokens is sent as max_completion_tokens to reasoning models (names
//     starting o1, o3, o4 or gpt-5, which reject max_tokens, on OpenAI and
//     Azure alike) and as max_tokens otherwise, because OpenAI-compatible
//     servers (vLLM, Ollama) may know only the older name.
//   - ThinkingBudget, when ReasoningEffort is empty, becomes reasoning_effort
//     for reasoning models: below 4096 tokens "low", below 16384 "medium",
//     else "high" (Claude Code's think / think hard / ultrathink budgets of
//     4000, 10000 and 31999 land on the three levels). For other models the
//     budget is dropped: it is a ceiling on thinking, which a model that does
//     not think trivially honours.
//   - When r.Stream, stream_options.include_usage is always set, so usage is
//     known for every stream.
//
// It refuses, as BadRequest `feature "X" is not supported by provider
// "NAME"`: any r.Unsupported entry, top_k, n > 1 (the canonical response
// carries one choice, so further choices would be billed and lost), images
// outside user messages and images in tool results.
func (p *Provider) NewChatRequest(ctx context.Context, r *llm.Request) (*http.Request, error) {
	body, err := p.encodeChat(r)
	if err != nil {
		return nil, err
	}
	// The encoded body starts {"model":"<UpstreamModel>", so NewRequest's
	// BodyFor can swap in an Azure deployment name without re-encoding.
	start := len(`{"model":`)
	raw := llm.RawRequest{
		Op:            llm.OpChat,
		Body:          body,
		ModelStart:    start,
		ModelEnd:      start + len(llm.AppendJSONString(nil, r.UpstreamModel)),
		Model:         r.UpstreamModel,
		UpstreamModel: r.UpstreamModel,
		Stream:        r.Stream,
		// The encoder always asks for streamed usage itself.
		IncludeUsage: r.Stream,
	}
	return p.NewRequest(ctx, &raw)
}

// unsupported is the BadRequest for a feature this provider cannot honour.
// Other adapters use the same wording.
func (p *Provider) unsupported(feature string) *apierr.Error {
	return apierr.New(apierr.BadRequest, "feature %q is not supported by provider %q", feature, p.name).WithParam(feature)
}

// isReasoningModel reports whether model is one of OpenAI's reasoning
// families, which take max_completion_tokens and reasoning_effort.
func isReasoningModel(model string) bool {
	for _, pre := range [...]string{"o1", "o3", "o4", "gpt-5"} {
		if strings.HasPrefix(model, pre) {
			return true
		}
	}
	return false
}

// effortForBudget maps a thinking budget in tokens to reasoning_effort.
func effortForBudget(budget int) string {
	switch {
	case budget < 4096:
		return "low"
	case budget < 16384:
		return "medium"
	}
	return "high"
}

func (p *Provider) encodeChat(r *llm.Request) ([]byte, error) {
	if len(r.Unsupported) > 0 {
		return nil, p.unsupported(r.Unsupported[0])
	}
	if r.TopK != nil {
		return nil, p.unsupported("top_k")
	}
	if r.N > 1 {
		return nil, p.unsupported("n")
	}
	w := chatBody{
		Temperature:      r.Temperature,
		TopP:             r.TopP,
		Stop:             r.Stop,
		Stream:           r.Stream,
		Seed:             r.Seed,
		PresencePenalty:  r.PresencePenalty,
		FrequencyPenalty: r.FrequencyPenalty,
		ReasoningEffort:  r.ReasoningEffort,
		User:             r.User,
	}
	reasoning := isReasoningModel(r.UpstreamModel)
	if r.MaxTokens > 0 {
		if reasoning {
			w.MaxCompletionTokens = r.MaxTokens
		} else {
			w.MaxTokens = r.MaxTokens
		}
	}
	if w.ReasoningEffort == "" && r.ThinkingBudget > 0 && reasoning {
		w.ReasoningEffort = effortForBudget(r.ThinkingBudget)
	}
	if r.Stream {
		w.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if len(r.System) > 0 {
		var sb strings.Builder
		for i, part := range r.System {
			if i > 0 {
				sb.WriteString("\n\n")
			}
			sb.WriteString(part.Text)
		}
		w.Messages = append(w.Messages, chatMessage{Role: "system", Content: sb.String()})
	}
	for i := range r.Messages {
		var err error
		if w.Messages, err = p.encodeMessage(w.Messages, &r.Messages[i]); err != nil {
			return nil, err
		}
	}
	for _, t := range r.Tools {
		ct := chatTool{Type: "function", Function: chatFunction{Name: t.Name, Description: t.Description, Parameters: t.Parameters}}
		if t.Strict {
			ct.Function.Strict = &t.Strict
		}
		w.Tools = append(w.Tools, ct)
	}
	if len(r.Tools) > 0 {
		switch r.ToolChoice.Mode {
		case llm.ToolChoiceNone:
			w.ToolChoice = "none"
		case llm.ToolChoiceRequired:
			w.ToolChoice = "required"
		case llm.ToolChoiceNamed:
			w.ToolChoice = namedToolChoice{Type: "function", Function: toolName{Name: r.ToolChoice.Name}}
		}
		if r.ToolChoice.DisableParallel {
			f := false
			w.ParallelToolCalls = &f
		}
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case llm.FormatJSONObject:
			w.ResponseFormat = &responseFormat{Type: "json_object"}
		case llm.FormatJSONSchema:
			name := rf.Name
			if name == "" {
				name = "response" // OpenAI requires a name; other APIs have none
			}
			js := &jsonSchema{Name: name, Schema: rf.Schema}
			if rf.Strict {
				js.Strict = &rf.Strict
			}
			w.ResponseFormat = &responseFormat{Type: "json_schema", JSONSchema: js}
		}
	}

	var buf bytes.Buffer
	buf.WriteString(`{"model":`)
	buf.Write(llm.AppendJSONString(nil, r.UpstreamModel))
	buf.WriteByte(',')
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	mark := buf.Len()
	if err := enc.Encode(&w); err != nil {
		// Only an invalid json.RawMessage (tool parameters, schema) gets here.
		return nil, apierr.Wrap(apierr.BadRequest, err, "tool parameters and response schemas must be valid JSON")
	}
	out := buf.Bytes()
	// Drop the encoder's opening brace (ours is written) and its newline.
	out = append(out[:mark], out[mark+1:]...)
	return bytes.TrimRight(out, "\n"), nil
}

// encodeMessage appends the OpenAI messages for m.
func (p *Provider) encodeMessage(out []chatMessage, m *llm.Message) ([]chatMessage, error) {
	switch m.Role {
	case llm.RoleAssistant:
		msg := chatMessage{Role: "assistant", Name: m.Name}
		var text strings.Builder
		hasText := false
		for i := range m.Content {
			part := &m.Content[i]
			switch part.Type {
			case llm.PartText:
				text.WriteString(part.Text)
				hasText = true
			case llm.PartToolCall:
				tc := part.ToolCall
				args := tc.Arguments
				if args == "" {
					args = "{}"
				}
				msg.ToolCalls = append(msg.ToolCalls, chatToolCall{ID: tc.ID, Type: "function", Function: chatCallFunc{Name: tc.Name, Arguments: args}})
			case llm.PartThinking:
				// Dropped: see NewChatRequest.
			default:
				return nil, p.unsupported("non-text content in assistant messages")
			}
		}
		if hasText || len(msg.ToolCalls) == 0 {
			msg.Content = text.String()
		}
		return append(out, msg), nil
	case llm.RoleTool, llm.RoleUser:
		var parts []contentPart
		for i := range m.Content {
			part := &m.Content[i]
			switch part.Type {
			case llm.PartToolResult:
				tr := part.ToolResult
				var text strings.Builder
				for j := range tr.Content {
					switch tr.Content[j].Type {
					case llm.PartText:
						text.WriteString(tr.Content[j].Text)
					default:
						return nil, p.unsupported("images in tool results")
					}
				}
				out = append(out, chatMessage{Role: "tool", ToolCallID: tr.CallID, Content: text.String()})
			case llm.PartText:
				parts = append(parts, contentPart{Type: "text", Text: part.Text})
			case llm.PartImage:
				img := part.Image
				u := img.URL
				if u == "" {
					u = "data:" + img.MediaType + ";base64," + img.Data
				}
				parts = append(parts, contentPart{Type: "image_url", ImageURL: &imageURL{URL: u, Detail: img.Detail}})
			case llm.PartThinking:
			default:
				return nil, p.unsupported("tool calls in user messages")
			}
		}
		if len(parts) == 0 {
			return out, nil
		}
		msg := chatMessage{Role: "user", Name: m.Name}
		if len(parts) == 1 && parts[0].Type == "text" {
			msg.Content = parts[0].Text
		} else {
			msg.Content = parts
		}
		return append(out, msg), nil
	}
	return nil, apierr.New(apierr.BadRequest, "unknown message role %q", m.Role)
}

// DecodeChat decodes a chat.completion into the canonical response: the
// first choice's reasoning_content (sent by compatible servers such as
// vLLM and DeepSeek) as a thinking part, its content (or refusal) as text,
// its tool calls, finish_reason and usage with cached and reasoning tokens.
func (p *Provider) DecodeChat(resp *http.Response, body []byte) (*llm.Response, error) {
	var w chatResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, apierr.Wrap(apierr.UpstreamUnavailable, err, "provider \""+p.name+"\" sent an invalid response")
	}
	if len(w.Choices) == 0 {
		return nil, apierr.New(apierr.UpstreamUnavailable, "provider %q sent a response without choices", p.name)
	}
	c := &w.Choices[0]
	out := &llm.Response{ID: w.ID, Model: w.Model, Created: w.Created, StopReason: stopReason(c.FinishReason)}
	if c.Message.ReasoningContent != "" {
		out.Content = append(out.Content, llm.Part{Type: llm.PartThinking, Text: c.Message.ReasoningContent})
	}
	switch {
	case c.Message.Content != nil && *c.Message.Content != "":
		out.Content = append(out.Content, llm.Part{Type: llm.PartText, Text: *c.Message.Content})
	case c.Message.Refusal != nil && *c.Message.Refusal != "":
		out.Content = append(out.Content, llm.Part{Type: llm.PartText, Text: *c.Message.Refusal})
	case len(c.Message.ToolCalls) == 0:
		out.Content = append(out.Content, llm.Part{Type: llm.PartText})
	}
	for _, tc := range c.Message.ToolCalls {
		out.Content = append(out.Content, llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{
			ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments,
		}})
	}
	if w.Usage != nil {
		out.Usage = w.Usage.canonical()
	}
	return out, nil
}

// stopReason maps OpenAI's finish_reason.
func stopReason(s string) llm.StopReason {
	switch s {
	case "stop":
		return llm.StopEndTurn
	case "length":
		return llm.StopMaxTokens
	case "tool_calls", "function_call":
		return llm.StopToolUse
	case "content_filter":
		return llm.StopContentFilter
	}
	return llm.StopUnknown
}
