package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// NewChatRequest builds the signed Converse (or, when r.Stream,
// ConverseStream) request for r. It returns an *apierr.Error of kind
// BadRequest when r asks for something Converse cannot express.
func (p *Provider) NewChatRequest(ctx context.Context, r *llm.Request) (*http.Request, error) {
	body, err := p.encodeRequest(r)
	if err != nil {
		return nil, err
	}
	u, err := p.modelURL(r.UpstreamModel, r.Stream)
	if err != nil {
		return nil, apierr.Wrap(apierr.Internal, err, "internal error")
	}
	return p.newSignedRequest(ctx, u, body, r.Stream)
}

// unsupported is the BadRequest for a feature the provider cannot honour.
func (p *Provider) unsupported(feature string) *apierr.Error {
	return apierr.New(apierr.BadRequest, "feature %q is not supported by provider %q", feature, p.name).
		WithCode("unsupported_feature")
}

// encodeRequest returns the Converse body for r.
func (p *Provider) encodeRequest(r *llm.Request) ([]byte, error) {
	if err := p.checkFeatures(r); err != nil {
		return nil, err
	}
	cr := converseRequest{}
	for _, s := range r.System {
		if s.Type != llm.PartText {
			return nil, p.unsupported("non-text system content")
		}
		if s.Text != "" {
			cr.System = append(cr.System, systemBlock{Text: s.Text})
		}
	}
	hasToolBlocks := false
	for i := range r.Messages {
		m := &r.Messages[i]
		role := "user"
		switch m.Role {
		case llm.RoleAssistant:
			role = "assistant"
		case llm.RoleUser, llm.RoleTool:
		default:
			return nil, apierr.New(apierr.BadRequest, "messages[%d]: unknown role %q", i, m.Role).WithParam("messages")
		}
		blocks := make([]contentBlock, 0, len(m.Content))
		for j := range m.Content {
			b, ok, err := p.encodePart(&m.Content[j], m.Role)
			if err != nil {
				return nil, err
			}
			if ok {
				blocks = append(blocks, b)
				hasToolBlocks = hasToolBlocks || b.ToolUse != nil || b.ToolResult != nil
			}
		}
		// Converse requires alternating turns: tool results (sent as user
		// turns) after a user turn, or two turns of one role, merge.
		if n := len(cr.Messages); n > 0 && cr.Messages[n-1].Role == role {
			cr.Messages[n-1].Content = append(cr.Messages[n-1].Content, blocks...)
			continue
		}
		cr.Messages = append(cr.Messages, message{Role: role, Content: blocks})
	}
	if r.MaxTokens > 0 || r.Temperature != nil || r.TopP != nil || len(r.Stop) > 0 {
		cr.InferenceConfig = &inferenceConfig{MaxTokens: r.MaxTokens, Temperature: r.Temperature, TopP: r.TopP, StopSequences: r.Stop}
	}
	if len(r.Tools) > 0 {
		tc, err := p.encodeTools(r, hasToolBlocks)
		if err != nil {
			return nil, err
		}
		cr.ToolConfig = tc
	}
	if r.TopK != nil || r.ThinkingBudget > 0 {
		am := &additionalModel{TopK: r.TopK}
		if r.ThinkingBudget > 0 {
			am.Thinking = &thinking{Type: "enabled", BudgetTokens: r.ThinkingBudget}
		}
		cr.AdditionalModelRequestFields = am
	}
	body, err := json.Marshal(&cr)
	if err != nil {
		// Only json.RawMessage fields can fail, and they are validated.
		return nil, apierr.Wrap(apierr.Internal, fmt.Errorf("encode converse request: %w", err), "internal error")
	}
	return body, nil
}

// checkFeatures refuses what Converse has no field for.
func (p *Provider) checkFeatures(r *llm.Request) error {
	switch {
	case len(r.Unsupported) > 0:
		return p.unsupported(r.Unsupported[0])
	case r.ResponseFormat != nil && r.ResponseFormat.Type != llm.FormatText:
		return p.unsupported("response_format")
	case r.N > 1:
		return p.unsupported("n")
	case r.Seed != nil:
		return p.unsupported("seed")
	case r.PresencePenalty != nil:
		return p.unsupported("presence_penalty")
	case r.FrequencyPenalty != nil:
		return p.unsupported("frequency_penalty")
	case r.ReasoningEffort != "":
		// Claude on Bedrock takes a thinking budget, not an effort level;
		// guessing a budget would bill the client for tokens it did not
		// ask for.
		return p.unsupported("reasoning_effort")
	case len(r.Tools) > 0 && r.ToolChoice.DisableParallel:
		return p.unsupported("parallel_tool_calls")
	}
	return nil
}

// encodeTools returns the toolConfig for r's tools and choice; nil for
// ToolChoiceNone, when possible.
func (p *Provider) encodeTools(r *llm.Request, hasToolBlocks bool) (*toolConfig, error) {
	var choice *toolChoice
	switch r.ToolChoice.Mode {
	case llm.ToolChoiceNone:
		if hasToolBlocks {
			// Bedrock rejects toolUse/toolResult blocks without a toolConfig,
			// and a toolConfig lets the model call tools.
			return nil, p.unsupported("tool_choice=none")
		}
		return nil, nil
	case llm.ToolChoiceRequired:
		choice = &toolChoice{Any: &struct{}{}}
	case llm.ToolChoiceNamed:
		choice = &toolChoice{Tool: &toolChoiceFor{Name: r.ToolChoice.Name}}
	}
	tc := &toolConfig{Tools: make([]tool, len(r.Tools)), ToolChoice: choice}
	for i, t := range r.Tools {
		schema := t.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || bytes.Equal(bytes.TrimSpace(schema), []byte("null")) {
			schema = emptyObjectSchema
		} else if !json.Valid(schema) {
			return nil, apierr.New(apierr.BadRequest, "tools[%d]: parameters are not valid JSON", i).WithParam("tools")
		}
		tc.Tools[i] = tool{ToolSpec: toolSpec{Name: t.Name, Description: t.Description, InputSchema: inputSchema{JSON: schema}}}
	}
	return tc, nil
}

var (
	emptyObjectSchema = json.RawMessage(`{"type":"object","properties":{}}`)
	emptyObject       = json.RawMessage(`{}`)
)

// encodePart returns the content block for part; ok is false for parts that
// are dropped (empty text, unsigned thinking).
func (p *Provider) encodePart(part *llm.Part, role llm.Role) (b contentBlock, ok bool, err error) {
	switch part.Type {
	case llm.PartText:
		// Converse rejects blank text blocks; clients send empty content
		// beside tool calls.
		if part.Text == "" {
			return b, false, nil
		}
		b.Text = part.Text
	case llm.PartImage:
		img, err := p.encodeImage(part.Image)
		if err != nil {
			return b, false, err
		}
		b.Image = img
	case llm.PartToolCall:
		tc := part.ToolCall
		if tc == nil || role != llm.RoleAssistant {
			return b, false, apierr.New(apierr.BadRequest, "tool calls are only valid in assistant messages").WithParam("messages")
		}
		input := json.RawMessage(tc.Arguments)
		if strings.TrimSpace(tc.Arguments) == "" {
			input = emptyObject
		} else if !json.Valid(input) {
			return b, false, apierr.New(apierr.BadRequest, "tool call %q: arguments are not valid JSON", tc.ID).WithParam("messages")
		}
		b.ToolUse = &toolUseBlock{ToolUseID: tc.ID, Name: tc.Name, Input: input}
	case llm.PartToolResult:
		tr := part.ToolResult
		if tr == nil {
			return b, false, apierr.New(apierr.BadRequest, "empty tool result").WithParam("messages")
		}
		res := &toolResultBlock{ToolUseID: tr.CallID, Content: make([]toolResultContent, 0, len(tr.Content)), Status: "success"}
		if tr.IsError {
			res.Status = "error"
		}
		for k := range tr.Content {
			c := &tr.Content[k]
			switch c.Type {
			case llm.PartText:
				res.Content = append(res.Content, toolResultContent{Text: &c.Text})
			case llm.PartImage:
				img, err := p.encodeImage(c.Image)
				if err != nil {
					return b, false, err
				}
				res.Content = append(res.Content, toolResultContent{Image: img})
			default:
				return b, false, p.unsupported("non-text tool result content")
			}
		}
		if len(res.Content) == 0 {
			empty := ""
			res.Content = append(res.Content, toolResultContent{Text: &empty})
		}
		b.ToolResult = res
	case llm.PartThinking:
		if part.Signature == "" || role != llm.RoleAssistant {
			return b, false, nil
		}
		b.ReasoningContent = &reasoningContent{ReasoningText: &reasoningText{Text: part.Text, Signature: part.Signature}}
	default:
		return b, false, apierr.New(apierr.BadRequest, "unknown content part type %d", part.Type).WithParam("messages")
	}
	return b, true, nil
}

// encodeImage returns the Converse image for img, which must be inline.
func (p *Provider) encodeImage(img *llm.Image) (*imageBlock, error) {
	if img == nil {
		return nil, apierr.New(apierr.BadRequest, "empty image part").WithParam("messages")
	}
	if img.Data == "" {
		return nil, p.unsupported("image_url")
	}
	format, ok := imageFormats[strings.ToLower(img.MediaType)]
	if !ok {
		return nil, p.unsupported("image media type " + img.MediaType)
	}
	return &imageBlock{Format: format, Source: imageSource{Bytes: img.Data}}, nil
}

// imageFormats maps MIME types to Converse's ImageBlock formats.
var imageFormats = map[string]string{
	"image/png":  "png",
	"image/jpeg": "jpeg",
	"image/jpg":  "jpeg",
	"image/gif":  "gif",
	"image/webp": "webp",
}

// DecodeChat decodes a Converse answer. The response ID is Bedrock's
// x-amzn-RequestId, as Converse bodies carry none, and the model is the one
// in the request path.
func (p *Provider) DecodeChat(resp *http.Response, body []byte) (*llm.Response, error) {
	var cr converseResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		return nil, apierr.Wrap(apierr.UpstreamUnavailable, fmt.Errorf("provider %q: decode converse answer: %w", p.name, err),
			"the upstream's answer could not be read")
	}
	out := &llm.Response{
		StopReason:   stopReason(cr.StopReason),
		StopSequence: cr.AdditionalModelResponseFields.StopSequence,
		Usage:        cr.Usage.canonical(),
		Content:      make([]llm.Part, 0, len(cr.Output.Message.Content)),
	}
	if resp != nil {
		out.ID = resp.Header.Get("X-Amzn-Requestid")
		if resp.Request != nil && resp.Request.URL != nil {
			out.Model = modelFromPath(resp.Request.URL.EscapedPath())
		}
	}
	for _, b := range cr.Output.Message.Content {
		switch {
		case b.ToolUse != nil:
			out.Content = append(out.Content, llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{
				ID: b.ToolUse.ToolUseID, Name: b.ToolUse.Name, Arguments: compactArgs(b.ToolUse.Input)}})
		case b.ReasoningContent != nil:
			if rt := b.ReasoningContent.ReasoningText; rt != nil {
				out.Content = append(out.Content, llm.Part{Type: llm.PartThinking, Text: rt.Text, Signature: rt.Signature})
			}
			// Redacted reasoning has no canonical form; it is dropped.
		case b.Text != "":
			out.Content = append(out.Content, llm.Part{Type: llm.PartText, Text: b.Text})
		}
	}
	return out, nil
}

// compactArgs returns the tool input as compact JSON object text.
func compactArgs(in json.RawMessage) string {
	if len(in) == 0 || bytes.Equal(in, []byte("null")) {
		return "{}"
	}
	var b bytes.Buffer
	if json.Compact(&b, in) != nil {
		return string(in)
	}
	return b.String()
}

// modelFromPath returns the unescaped model ID of the escaped path
// /…/model/{id}/converse[-stream]; an ARN's slashes are %2F there.
func modelFromPath(escaped string) string {
	i := strings.LastIndex(escaped, "/model/")
	if i < 0 {
		return ""
	}
	seg, _, _ := strings.Cut(escaped[i+len("/model/"):], "/")
	m, err := url.PathUnescape(seg)
	if err != nil {
		return ""
	}
	return m
}

// stopReason maps Converse's stopReason.
func stopReason(s string) llm.StopReason {
	switch s {
	case "end_turn":
		return llm.StopEndTurn
	case "tool_use":
		return llm.StopToolUse
	case "max_tokens", "model_context_window_exceeded":
		return llm.StopMaxTokens
	case "stop_sequence":
		return llm.StopSequence
	case "content_filtered", "guardrail_intervened":
		return llm.StopContentFilter
	}
	return llm.StopUnknown
}

// canonical converts Bedrock's usage, whose inputTokens excludes cache
// reads and writes, to llm.Usage, whose InputTokens includes them.
func (u *tokenUsage) canonical() llm.Usage {
	return llm.Usage{
		InputTokens:      u.InputTokens + u.CacheReadInputTokens + u.CacheWriteInputTokens,
		OutputTokens:     u.OutputTokens,
		CachedTokens:     u.CacheReadInputTokens,
		CacheWriteTokens: u.CacheWriteInputTokens,
	}
}
