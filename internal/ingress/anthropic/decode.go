package anthropic

import (
	"bytes"
	"encoding/json"
	"github.com/multipolar/multipolar/internal/llm/jsonscan"
	"strconv"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// RedactedPrefix marks a redacted_thinking block in llm.Part.Signature: the
// canonical model has no redacted flag, so such a block becomes a
// PartThinking with empty Text and Signature RedactedPrefix+data. Package
// provider/anthropic uses the same convention (follow-up: an llm field).
const RedactedPrefix = "redacted_thinking:"

// DecodeMessages decodes a POST /v1/messages body into a canonical request.
//
// Mapping and choices:
//   - system: a string or text blocks; cache_control is ignored everywhere
//     (prompt caching is a billing hint, not semantics).
//   - user content: text, image (base64 → Image{MediaType, Data}; url →
//     Image{URL}) and tool_result blocks; each tool_result becomes its own
//     RoleTool message, so a user turn [result, result, text] becomes two
//     tool messages and a user message, in order.
//   - assistant content: text, tool_use (input compacted into Arguments),
//     thinking (Signature kept) and redacted_thinking (see RedactedPrefix).
//   - a message with role "system" is appended to System.
//   - thinking: "enabled" sets ThinkingBudget; "disabled" and "adaptive"
//     (the model decides, as other providers do by default) set nothing.
//   - output_config.effort sets ReasoningEffort; output_config.format
//     (json_schema) sets ResponseFormat.
//   - ignored as safe hints: cache_control, service_tier, speed,
//     diagnostics.
//   - Unsupported (a translating provider refuses them): container,
//     mcp_servers, context_management, inference_geo (a residency demand
//     that must not be dropped silently), server tools (tools whose type is
//     not "custom"), document/search_result and other block types, image
//     file sources, and any unknown top-level field.
//
// Errors are *apierr.Error of kind BadRequest.
func DecodeMessages(body []byte) (*llm.Request, error) {
	return decode(body, true)
}

// DecodeCountTokens decodes a POST /v1/messages/count_tokens body: the
// Messages shape without max_tokens.
func DecodeCountTokens(body []byte) (*llm.Request, error) {
	return decode(body, false)
}

func badRequest(format string, args ...any) *apierr.Error {
	return apierr.New(apierr.BadRequest, format, args...)
}

type wireSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

type wireBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    *wireSource     `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
	Thinking  string          `json:"thinking"`
	Signature string          `json:"signature"`
	Data      string          `json:"data"`
}

type wireMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type wireTool struct {
	Type        *string         `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
	Strict      bool            `json:"strict"`
}

type wireToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

type wireThinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens"`
}

type wireOutputConfig struct {
	Effort *string `json:"effort"`
	Format *struct {
		Type   string          `json:"type"`
		Schema json.RawMessage `json:"schema"`
	} `json:"format"`
}

// decoder accumulates one request; its methods return *apierr.Error.
type decoder struct {
	r *llm.Request
	// names maps tool_use ids to tool names, so tool results carry the
	// name (Gemini needs it).
	names map[string]string
}

func (d *decoder) unsupported(name string) {
	for _, u := range d.r.Unsupported {
		if u == name {
			return
		}
	}
	d.r.Unsupported = append(d.r.Unsupported, name)
}

func unmarshal(field string, v []byte, into any) error {
	if err := json.Unmarshal(v, into); err != nil {
		return badRequest("%s: invalid value: %s", field, jsonErr(err))
	}
	return nil
}

// jsonErr words a decode error without Go type names.
func jsonErr(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok { //nolint:errorlint // json returns it unwrapped
		return "expected " + jsonKind(te.Type.Kind().String()) + ", got " + te.Value
	}
	return "malformed JSON"
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "ptr":
		return "a value"
	}
	return "a number"
}

func decode(body []byte, requireMax bool) (*llm.Request, error) {
	if !json.Valid(body) {
		return nil, badRequest("The request body is not valid JSON.")
	}
	i := jsonscan.SkipSpace(body, 0)
	if body[i] != '{' {
		return nil, badRequest("The request body must be a JSON object.")
	}
	d := decoder{r: &llm.Request{}}
	r := d.r
	var haveModel, haveMessages, haveMax bool
	err := jsonscan.EachMember(body, i, func(rawKey []byte, vs, ve int) error {
		v := body[vs:ve]
		key := keyString(rawKey)
		null := v[0] == 'n'
		switch key {
		case "model":
			if err := unmarshal(key, v, &r.Model); err != nil {
				return err
			}
			r.UpstreamModel = r.Model
			haveModel = r.Model != ""
		case "messages":
			haveMessages = true
			var msgs []wireMessage
			if err := unmarshal(key, v, &msgs); err != nil {
				return err
			}
			for mi := range msgs {
				if err := d.message(mi, &msgs[mi]); err != nil {
					return err
				}
			}
		case "max_tokens":
			if null {
				return nil
			}
			if err := unmarshal(key, v, &r.MaxTokens); err != nil {
				return err
			}
			if r.MaxTokens < 1 {
				return badRequest("max_tokens: Input should be greater than or equal to 1").WithParam(key)
			}
			haveMax = true
		case "system":
			return d.system(v)
		case "metadata":
			var m struct {
				UserID *string `json:"user_id"`
			}
			if err := unmarshal(key, v, &m); err != nil {
				return err
			}
			if m.UserID != nil {
				r.User = *m.UserID
			}
		case "stop_sequences":
			return unmarshal(key, v, &r.Stop)
		case "stream":
			return unmarshal(key, v, &r.Stream)
		case "temperature":
			return unmarshal(key, v, &r.Temperature)
		case "top_p":
			return unmarshal(key, v, &r.TopP)
		case "top_k":
			return unmarshal(key, v, &r.TopK)
		case "tools":
			return d.tools(v)
		case "tool_choice":
			if null {
				return nil
			}
			var tc wireToolChoice
			if err := unmarshal(key, v, &tc); err != nil {
				return err
			}
			r.ToolChoice.DisableParallel = tc.DisableParallelToolUse
			switch tc.Type {
			case "auto":
				r.ToolChoice.Mode = llm.ToolChoiceAuto
			case "any":
				r.ToolChoice.Mode = llm.ToolChoiceRequired
			case "none":
				r.ToolChoice.Mode = llm.ToolChoiceNone
			case "tool":
				if tc.Name == "" {
					return badRequest("tool_choice.name: Field required").WithParam("tool_choice")
				}
				r.ToolChoice.Mode, r.ToolChoice.Name = llm.ToolChoiceNamed, tc.Name
			default:
				return badRequest("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'").WithParam("tool_choice")
			}
		case "thinking":
			if null {
				return nil
			}
			var th wireThinking
			if err := unmarshal(key, v, &th); err != nil {
				return err
			}
			switch th.Type {
			case "enabled":
				if th.BudgetTokens < 1024 {
					return badRequest("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024").WithParam("thinking")
				}
				r.ThinkingBudget = th.BudgetTokens
			case "disabled", "adaptive":
			default:
				d.unsupported("thinking." + th.Type)
			}
		case "output_config":
			if null {
				return nil
			}
			var oc wireOutputConfig
			if err := unmarshal(key, v, &oc); err != nil {
				return err
			}
			if oc.Effort != nil {
				r.ReasoningEffort = *oc.Effort
			}
			if oc.Format != nil {
				if oc.Format.Type != "json_schema" || len(oc.Format.Schema) == 0 {
					return badRequest("output_config.format: expected {\"type\":\"json_schema\",\"schema\":{...}}").WithParam("output_config")
				}
				r.ResponseFormat = &llm.ResponseFormat{Type: llm.FormatJSONSchema, Schema: compact(oc.Format.Schema), Strict: true}
			}
		case "cache_control", "service_tier", "speed", "diagnostics":
			// Hints with no effect on the answer's content; see the doc.
		default:
			if !null {
				d.unsupported(key)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case !haveModel:
		return nil, badRequest("model: Field required").WithParam("model")
	case !haveMessages:
		return nil, badRequest("messages: Field required").WithParam("messages")
	case requireMax && !haveMax:
		return nil, badRequest("max_tokens: Field required").WithParam("max_tokens")
	}
	if requireMax && r.ThinkingBudget > 0 && r.ThinkingBudget >= r.MaxTokens {
		return nil, badRequest("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size").WithParam("max_tokens")
	}
	return r, nil
}

// compact returns v without insignificant whitespace; v is valid JSON.
func compact(v []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(v))
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}

func (d *decoder) system(v []byte) error {
	switch v[0] {
	case 'n':
		return nil
	case '"':
		var s string
		_ = json.Unmarshal(v, &s)
		if s != "" {
			d.r.System = append(d.r.System, llm.Part{Type: llm.PartText, Text: s})
		}
		return nil
	}
	var blocks []wireBlock
	if err := unmarshal("system", v, &blocks); err != nil {
		return err
	}
	for i := range blocks {
		if blocks[i].Type != "text" {
			return badRequest("system.%d.type: Input should be 'text'", i).WithParam("system")
		}
		d.r.System = append(d.r.System, llm.Part{Type: llm.PartText, Text: blocks[i].Text})
	}
	return nil
}

func (d *decoder) tools(v []byte) error {
	var tools []wireTool
	if err := unmarshal("tools", v, &tools); err != nil {
		return err
	}
	for i := range tools {
		t := &tools[i]
		if t.Type != nil && *t.Type != "custom" {
			d.unsupported("tools." + *t.Type)
			continue
		}
		if t.Name == "" {
			return badRequest("tools.%d.name: Field required", i).WithParam("tools")
		}
		if len(t.InputSchema) == 0 || t.InputSchema[0] != '{' {
			return badRequest("tools.%d.input_schema: Field required", i).WithParam("tools")
		}
		d.r.Tools = append(d.r.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: compact(t.InputSchema), Strict: t.Strict})
	}
	return nil
}

// message appends the canonical messages for wire message mi.
func (d *decoder) message(mi int, m *wireMessage) error {
	path := "messages." + strconv.Itoa(mi)
	var role llm.Role
	switch m.Role {
	case "user":
		role = llm.RoleUser
	case "assistant":
		role = llm.RoleAssistant
	case "system":
	default:
		return badRequest("%s.role: Input should be 'user' or 'assistant'", path).WithParam("messages")
	}
	if len(m.Content) == 0 {
		return badRequest("%s.content: Field required", path).WithParam("messages")
	}
	if m.Content[0] == '"' {
		var s string
		_ = json.Unmarshal(m.Content, &s)
		p := llm.Part{Type: llm.PartText, Text: s}
		if m.Role == "system" {
			d.r.System = append(d.r.System, p)
		} else {
			d.r.Messages = append(d.r.Messages, llm.Message{Role: role, Content: []llm.Part{p}})
		}
		return nil
	}
	var blocks []wireBlock
	if err := unmarshal(path+".content", m.Content, &blocks); err != nil {
		return err
	}
	var cur *llm.Message // the open user/assistant message, nil after a tool result
	for bi := range blocks {
		b := &blocks[bi]
		bpath := path + ".content." + strconv.Itoa(bi)
		if m.Role == "system" {
			if b.Type != "text" {
				return badRequest("%s.type: Input should be 'text'", bpath).WithParam("messages")
			}
			d.r.System = append(d.r.System, llm.Part{Type: llm.PartText, Text: b.Text})
			continue
		}
		if b.Type == "tool_result" {
			if role != llm.RoleUser {
				return badRequest("%s: tool_result blocks are only allowed in user messages", bpath).WithParam("messages")
			}
			res, err := d.toolResult(bpath, b)
			if err != nil {
				return err
			}
			d.r.Messages = append(d.r.Messages, llm.Message{Role: llm.RoleTool, Content: []llm.Part{{Type: llm.PartToolResult, ToolResult: res}}})
			cur = nil
			continue
		}
		p, ok, err := d.part(bpath, role, b)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if cur == nil {
			d.r.Messages = append(d.r.Messages, llm.Message{Role: role})
			cur = &d.r.Messages[len(d.r.Messages)-1]
		}
		cur.Content = append(cur.Content, p)
	}
	if len(blocks) == 0 && m.Role != "system" {
		d.r.Messages = append(d.r.Messages, llm.Message{Role: role})
	}
	return nil
}

// part converts one non-tool-result block; ok is false when the block is
// recorded as unsupported instead.
func (d *decoder) part(path string, role llm.Role, b *wireBlock) (llm.Part, bool, error) {
	switch b.Type {
	case "text":
		return llm.Part{Type: llm.PartText, Text: b.Text}, true, nil
	case "image":
		img, err := d.image(path, b)
		if err != nil || img == nil {
			return llm.Part{}, false, err
		}
		return llm.Part{Type: llm.PartImage, Image: img}, true, nil
	case "tool_use":
		if role != llm.RoleAssistant {
			return llm.Part{}, false, badRequest("%s: tool_use blocks are only allowed in assistant messages", path).WithParam("messages")
		}
		if b.ID == "" || b.Name == "" {
			return llm.Part{}, false, badRequest("%s: tool_use blocks need an id and a name", path).WithParam("messages")
		}
		if d.names == nil {
			d.names = make(map[string]string)
		}
		d.names[b.ID] = b.Name
		args := "{}"
		if len(b.Input) > 0 {
			if b.Input[0] != '{' {
				return llm.Part{}, false, badRequest("%s.input: Input should be an object", path).WithParam("messages")
			}
			args = string(compact(b.Input))
		}
		return llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: args}}, true, nil
	case "thinking":
		return llm.Part{Type: llm.PartThinking, Text: b.Thinking, Signature: b.Signature}, true, nil
	case "redacted_thinking":
		return llm.Part{Type: llm.PartThinking, Signature: RedactedPrefix + b.Data}, true, nil
	case "":
		return llm.Part{}, false, badRequest("%s.type: Field required", path).WithParam("messages")
	}
	d.unsupported(b.Type)
	return llm.Part{}, false, nil
}

func (d *decoder) image(path string, b *wireBlock) (*llm.Image, error) {
	if b.Source == nil {
		return nil, badRequest("%s.source: Field required", path).WithParam("messages")
	}
	switch b.Source.Type {
	case "base64":
		if b.Source.Data == "" || b.Source.MediaType == "" {
			return nil, badRequest("%s.source: base64 images need media_type and data", path).WithParam("messages")
		}
		return &llm.Image{MediaType: b.Source.MediaType, Data: b.Source.Data}, nil
	case "url":
		if b.Source.URL == "" {
			return nil, badRequest("%s.source.url: Field required", path).WithParam("messages")
		}
		return &llm.Image{URL: b.Source.URL}, nil
	}
	d.unsupported("image.source." + b.Source.Type)
	return nil, nil
}

func (d *decoder) toolResult(path string, b *wireBlock) (*llm.ToolResult, error) {
	if b.ToolUseID == "" {
		return nil, badRequest("%s.tool_use_id: Field required", path).WithParam("messages")
	}
	res := &llm.ToolResult{CallID: b.ToolUseID, Name: d.names[b.ToolUseID], IsError: b.IsError}
	if len(b.Content) == 0 || b.Content[0] == 'n' {
		return res, nil
	}
	if b.Content[0] == '"' {
		var s string
		_ = json.Unmarshal(b.Content, &s)
		res.Content = []llm.Part{{Type: llm.PartText, Text: s}}
		return res, nil
	}
	var blocks []wireBlock
	if err := unmarshal(path+".content", b.Content, &blocks); err != nil {
		return nil, err
	}
	for i := range blocks {
		ib := &blocks[i]
		ipath := path + ".content." + strconv.Itoa(i)
		switch ib.Type {
		case "text":
			res.Content = append(res.Content, llm.Part{Type: llm.PartText, Text: ib.Text})
		case "image":
			img, err := d.image(ipath, ib)
			if err != nil {
				return nil, err
			}
			if img != nil {
				res.Content = append(res.Content, llm.Part{Type: llm.PartImage, Image: img})
			}
		default:
			d.unsupported("tool_result." + ib.Type)
		}
	}
	return res, nil
}
