package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// RedactedPrefix marks a redacted_thinking block in llm.Part.Signature
// (PartThinking, empty Text, Signature RedactedPrefix+data); it matches
// ingress/anthropic.RedactedPrefix. The canonical model has no redacted
// flag yet.
const RedactedPrefix = "redacted_thinking:"

// maxTokensDefaults gives max_tokens, which Anthropic requires, when the
// request sets none: the first matching model prefix wins, else
// defaultMaxTokens. The values are what every model of the family accepts,
// not its ceiling (newer models allow 32k–64k): a client that wants more
// asks for it.
var maxTokensDefaults = []struct {
	prefix string
	n      int
}{
	{"claude-3-5-", 8192},
	{"claude-3-7-", 8192},
	{"claude-3-", 4096},
	{"claude-2", 4096},
	{"claude-instant", 4096},
	{"claude-", 8192}, // Claude 4 and later: claude-sonnet-4…, claude-opus-4-1…
}

const defaultMaxTokens = 4096

func defaultMax(model string) int {
	for _, d := range maxTokensDefaults {
		if strings.HasPrefix(model, d.prefix) {
			return d.n
		}
	}
	return defaultMaxTokens
}

// effortBudget maps OpenAI's reasoning_effort to a thinking budget, as
// LiteLLM does, since every thinking model takes budget_tokens.
var effortBudget = map[string]int{"low": 1024, "medium": 4096, "high": 16384, "xhigh": 32000, "max": 32000}

func (p *Provider) refuse(feature string) *apierr.Error {
	return apierr.New(apierr.BadRequest, "feature %q is not supported by provider %q", feature, p.name).WithParam(feature)
}

// NewChatRequest builds the Messages API request for r (see encode for
// the mapping), to {base}/v1/messages or, on Vertex, to the model's
// rawPredict / streamRawPredict URL with a bearer token.
func (p *Provider) NewChatRequest(ctx context.Context, r *llm.Request) (*http.Request, error) {
	w, err := p.encode(r)
	if err != nil {
		return nil, err
	}
	return p.send(ctx, w, r, r.Stream)
}

// CountTokens builds POST /v1/messages/count_tokens for r. Vertex has its
// own count-tokens endpoint, which this adapter does not speak: it
// returns an error wrapping ErrUnsupported there.
func (p *Provider) CountTokens(ctx context.Context, r *llm.Request) (*http.Request, error) {
	if p.vertex {
		return nil, apierr.New(apierr.BadRequest, "provider %q (Claude on Vertex AI) does not count tokens", p.name).WithCode("unsupported_feature")
	}
	w, err := p.encode(r)
	if err != nil {
		return nil, err
	}
	// count_tokens takes the prompt only.
	w.Model = r.UpstreamModel
	if w.Model == "" {
		w.Model = r.Model
	}
	w.MaxTokens, w.Stream, w.Temperature, w.TopP, w.TopK, w.StopSequences, w.Metadata = 0, false, nil, nil, nil, nil, nil
	body, err := marshal(w)
	if err != nil {
		return nil, err
	}
	return p.newHTTPRequest(ctx, p.countURL, body, false, "")
}

// DecodeCountTokens reads count_tokens' {"input_tokens": N}.
func DecodeCountTokens(body []byte) (int64, error) {
	var v struct {
		InputTokens *int64 `json:"input_tokens"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, fmt.Errorf("decode count_tokens answer: %w", err)
	}
	if v.InputTokens == nil {
		return 0, fmt.Errorf("decode count_tokens answer: no input_tokens")
	}
	return *v.InputTokens, nil
}

func (p *Provider) send(ctx context.Context, w *wireRequest, r *llm.Request, stream bool) (*http.Request, error) {
	model := r.UpstreamModel
	if model == "" {
		model = r.Model
	}
	if !p.vertex {
		w.Model = model
		body, err := marshal(w)
		if err != nil {
			return nil, err
		}
		return p.newHTTPRequest(ctx, p.messagesURL, body, stream, "")
	}
	w.AnthropicVersion = VertexVersion
	body, err := marshal(w)
	if err != nil {
		return nil, err
	}
	u, err := p.vertexURL(model, stream)
	if err != nil {
		return nil, err
	}
	token, err := p.tokenSource(ctx)
	if err != nil {
		return nil, fmt.Errorf("provider %q: vertex token: %w", p.name, err)
	}
	return p.newHTTPRequest(ctx, u, body, stream, token)
}

func marshal(w *wireRequest) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, fmt.Errorf("encode anthropic request: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// encode maps r to the Messages API.
//
//   - Consecutive turns of one role are merged (Anthropic requires
//     alternation); tool results become user tool_result blocks.
//   - Empty text parts are dropped (Anthropic rejects empty text blocks);
//     thinking parts without a signature (another provider's reasoning)
//     are dropped, as Anthropic documents earlier thinking as optional.
//   - max_tokens, when r has none, comes from maxTokensDefaults, plus the
//     thinking budget if any.
//   - ResponseFormat json_schema becomes output_config.format (Anthropic's
//     structured outputs); json_object, which has no schema, is refused.
//   - ReasoningEffort, without ThinkingBudget, becomes a thinking budget
//     (effortBudget), lowered to fit max_tokens or dropped below 1024.
//   - N > 1, Seed, penalties and r.Unsupported are refused by name; message
//     names and image detail are ignored (Anthropic has neither).
func (p *Provider) encode(r *llm.Request) (*wireRequest, error) {
	switch {
	case len(r.Unsupported) > 0:
		return nil, p.refuse(r.Unsupported[0])
	case r.N > 1:
		return nil, p.refuse("n")
	case r.Seed != nil:
		return nil, p.refuse("seed")
	case r.PresencePenalty != nil:
		return nil, p.refuse("presence_penalty")
	case r.FrequencyPenalty != nil:
		return nil, p.refuse("frequency_penalty")
	}
	w := &wireRequest{
		MaxTokens:     r.MaxTokens,
		Temperature:   r.Temperature,
		TopP:          r.TopP,
		TopK:          r.TopK,
		StopSequences: r.Stop,
		Stream:        r.Stream,
		Messages:      []wireMessage{},
	}
	if r.User != "" {
		w.Metadata = &wireMetadata{UserID: r.User}
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case llm.FormatJSONSchema:
			if len(rf.Schema) == 0 {
				return nil, p.refuse("response_format")
			}
			w.OutputConfig = &wireOutputConfig{Format: &wireFormat{Type: "json_schema", Schema: rf.Schema}}
		case llm.FormatJSONObject:
			return nil, p.refuse("response_format")
		}
	}
	if err := p.encodeSystem(w, r.System); err != nil {
		return nil, err
	}
	for i := range r.Messages {
		if err := p.encodeMessage(w, &r.Messages[i]); err != nil {
			return nil, err
		}
	}
	for _, t := range r.Tools {
		schema := t.Parameters
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		w.Tools = append(w.Tools, wireTool{Name: t.Name, Description: t.Description, InputSchema: schema, Strict: t.Strict})
	}
	if len(w.Tools) > 0 {
		tc := &wireToolChoice{DisableParallelToolUse: r.ToolChoice.DisableParallel}
		switch r.ToolChoice.Mode {
		case llm.ToolChoiceNone:
			tc = &wireToolChoice{Type: "none"}
		case llm.ToolChoiceRequired:
			tc.Type = "any"
		case llm.ToolChoiceNamed:
			tc.Type, tc.Name = "tool", r.ToolChoice.Name
		default:
			tc.Type = "auto"
		}
		if tc.Type != "auto" || tc.DisableParallelToolUse {
			w.ToolChoice = tc
		}
	}
	budget := r.ThinkingBudget
	if budget == 0 && r.ReasoningEffort != "" {
		switch b, ok := effortBudget[r.ReasoningEffort]; {
		case ok:
			if r.MaxTokens > 0 && b >= r.MaxTokens {
				b = r.MaxTokens - 1
			}
			if b >= 1024 {
				budget = b
			}
		case r.ReasoningEffort == "none" || r.ReasoningEffort == "minimal":
		default:
			return nil, p.refuse("reasoning_effort")
		}
	}
	if budget > 0 {
		w.Thinking = &wireThinking{Type: "enabled", BudgetTokens: budget}
	}
	if w.MaxTokens == 0 {
		w.MaxTokens = defaultMax(r.UpstreamModel) + budget
	}
	return w, nil
}

func (p *Provider) encodeSystem(w *wireRequest, parts []llm.Part) error {
	var blocks []wireBlock
	for _, s := range parts {
		if s.Type != llm.PartText {
			return p.refuse("system content other than text")
		}
		if s.Text != "" {
			blocks = append(blocks, wireBlock{Type: "text", Text: s.Text})
		}
	}
	switch len(blocks) {
	case 0:
	case 1:
		w.System = blocks[0].Text
	default:
		w.System = blocks
	}
	return nil
}

// appendTurn adds blocks to the last message when it has role, else opens
// a new message.
func appendTurn(w *wireRequest, role string, blocks ...wireBlock) {
	if n := len(w.Messages); n > 0 && w.Messages[n-1].Role == role {
		w.Messages[n-1].Content = append(w.Messages[n-1].Content, blocks...)
		return
	}
	w.Messages = append(w.Messages, wireMessage{Role: role, Content: blocks})
}

func (p *Provider) encodeMessage(w *wireRequest, m *llm.Message) error {
	role := "user"
	if m.Role == llm.RoleAssistant {
		role = "assistant"
	}
	var blocks []wireBlock
	for i := range m.Content {
		part := &m.Content[i]
		switch part.Type {
		case llm.PartText:
			if part.Text != "" {
				blocks = append(blocks, wireBlock{Type: "text", Text: part.Text})
			}
		case llm.PartImage:
			if part.Image == nil {
				continue
			}
			blocks = append(blocks, wireBlock{Type: "image", Source: imageSource(part.Image)})
		case llm.PartToolCall:
			if part.ToolCall == nil {
				continue
			}
			if role != "assistant" {
				return p.refuse("tool calls in a user message")
			}
			blocks = append(blocks, wireBlock{Type: "tool_use", ID: part.ToolCall.ID, Name: part.ToolCall.Name, Input: toolInput(part.ToolCall.Arguments)})
		case llm.PartToolResult:
			if part.ToolResult == nil {
				continue
			}
			b, err := p.toolResult(part.ToolResult)
			if err != nil {
				return err
			}
			// Results answer the assistant's calls in the next user turn.
			if len(blocks) > 0 {
				appendTurn(w, role, blocks...)
				blocks = nil
			}
			appendTurn(w, "user", b)
		case llm.PartThinking:
			if role != "assistant" || part.Signature == "" {
				continue
			}
			if data, ok := strings.CutPrefix(part.Signature, RedactedPrefix); ok && part.Text == "" {
				blocks = append(blocks, wireBlock{Type: "redacted_thinking", Data: data})
				continue
			}
			text, sig := part.Text, part.Signature
			blocks = append(blocks, wireBlock{Type: "thinking", Thinking: &text, Signature: &sig})
		}
	}
	if len(blocks) > 0 {
		appendTurn(w, role, blocks...)
	}
	return nil
}

func (p *Provider) toolResult(tr *llm.ToolResult) (wireBlock, error) {
	b := wireBlock{Type: "tool_result", ToolUseID: tr.CallID, IsError: tr.IsError}
	for _, c := range tr.Content {
		switch c.Type {
		case llm.PartText:
			if c.Text != "" {
				b.Content = append(b.Content, wireBlock{Type: "text", Text: c.Text})
			}
		case llm.PartImage:
			if c.Image != nil {
				b.Content = append(b.Content, wireBlock{Type: "image", Source: imageSource(c.Image)})
			}
		default:
			return b, p.refuse("tool result content other than text and images")
		}
	}
	return b, nil
}

// imageSource maps an image; a data: URL becomes base64 data.
func imageSource(img *llm.Image) *wireSource {
	if img.Data != "" {
		return &wireSource{Type: "base64", MediaType: img.MediaType, Data: img.Data}
	}
	if rest, ok := strings.CutPrefix(img.URL, "data:"); ok {
		if meta, data, ok := strings.Cut(rest, ","); ok && strings.HasSuffix(meta, ";base64") {
			return &wireSource{Type: "base64", MediaType: strings.TrimSuffix(meta, ";base64"), Data: data}
		}
	}
	return &wireSource{Type: "url", URL: img.URL}
}

// toolInput returns tool arguments as a JSON object: as they are when
// they are one, {} when empty, else {"_raw": text} so the request stays
// valid and the model sees what it produced.
func toolInput(args string) json.RawMessage {
	a := strings.TrimSpace(args)
	if a == "" {
		return json.RawMessage("{}")
	}
	if a[0] == '{' && json.Valid([]byte(a)) {
		var b bytes.Buffer
		if json.Compact(&b, []byte(a)) == nil {
			return b.Bytes()
		}
	}
	raw, _ := json.Marshal(map[string]string{"_raw": args})
	return raw
}

// DecodeChat decodes a Message. Usage.InputTokens is Anthropic's
// input_tokens plus cache reads and writes, which Anthropic counts apart.
func (p *Provider) DecodeChat(_ *http.Response, body []byte) (*llm.Response, error) {
	var w wireResponse
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, apierr.Wrap(apierr.UpstreamUnavailable, fmt.Errorf("decode anthropic message: %w", err),
			fmt.Sprintf("provider %q returned a malformed answer", p.name))
	}
	resp := &llm.Response{
		ID:           w.ID,
		Model:        w.Model,
		StopReason:   stopReason(w.StopReason),
		StopSequence: w.StopSequence,
		Usage:        usage(&w.Usage),
		Content:      make([]llm.Part, 0, len(w.Content)),
	}
	for _, b := range w.Content {
		switch b.Type {
		case "text":
			resp.Content = append(resp.Content, llm.Part{Type: llm.PartText, Text: b.Text})
		case "thinking":
			resp.Content = append(resp.Content, llm.Part{Type: llm.PartThinking, Text: b.Thinking, Signature: b.Signature})
		case "redacted_thinking":
			resp.Content = append(resp.Content, llm.Part{Type: llm.PartThinking, Signature: RedactedPrefix + b.Data})
		case "tool_use":
			args := "{}"
			if len(b.Input) > 0 {
				var c bytes.Buffer
				if json.Compact(&c, b.Input) == nil {
					args = c.String()
				}
			}
			resp.Content = append(resp.Content, llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: args}})
		}
		// Server tool blocks cannot occur: translated requests carry no
		// server tools.
	}
	return resp, nil
}

func usage(u *wireUsage) llm.Usage {
	return llm.Usage{
		InputTokens:      u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		OutputTokens:     u.OutputTokens,
		CachedTokens:     u.CacheReadInputTokens,
		CacheWriteTokens: u.CacheCreationInputTokens,
	}
}

func stopReason(s string) llm.StopReason {
	switch s {
	case "end_turn", "pause_turn":
		return llm.StopEndTurn
	case "max_tokens", "model_context_window_exceeded":
		return llm.StopMaxTokens
	case "stop_sequence":
		return llm.StopSequence
	case "tool_use":
		return llm.StopToolUse
	case "refusal":
		return llm.StopContentFilter
	}
	return llm.StopUnknown
}
