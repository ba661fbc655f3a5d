package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// Translator is the OpenAI Chat Completions side of translation: it renders
// canonical answers (llm.Response, llm.Event streams) and errors as OpenAI
// clients expect them. It has the methods of proxy.Ingress (the package
// cannot import proxy; see StreamEncoder for how the method set lines up).
//
// A Translator is a small value built per request: IncludeUsage is the
// client's stream_options.include_usage, which the canonical llm.Request
// does not carry because only OpenAI's stream format has the notion. The
// handler already has it from Sniff (Sniffed.IncludeUsage) and builds
// Translator{IncludeUsage: s.IncludeUsage}. The zero value is ready to use.
// A Translator is immutable and safe for concurrent use.
type Translator struct {
	// IncludeUsage makes streams end with a usage chunk (choices: [])
	// and give every earlier chunk "usage": null, as OpenAI does.
	IncludeUsage bool
}

// WriteError writes e as an OpenAI error response.
func (Translator) WriteError(w http.ResponseWriter, e *apierr.Error) { WriteError(w, e) }

// AppendStreamError appends e as an OpenAI in-stream error event.
func (Translator) AppendStreamError(b []byte, e *apierr.Error) []byte {
	return AppendStreamError(b, e)
}

// DecodeChat decodes an OpenAI Chat Completions request body into the
// canonical request. Errors are *apierr.Error of kind BadRequest, with Param
// naming the offending field.
//
// Mapping notes:
//   - system and developer messages become Request.System parts in the order
//     they appear, wherever they stand in the history: the canonical model
//     has no mid-conversation system turn, and every provider we translate
//     to takes instructions apart from the turns. Their "name" is dropped.
//   - max_completion_tokens wins over the deprecated max_tokens.
//   - an assistant "refusal" (field or content part) is kept as text, since
//     it is what the assistant said.
//   - fields the model cannot carry are named in Request.Unsupported, so a
//     translating provider refuses them rather than silently changing the
//     answer: logit_bias, logprobs (when true), top_logprobs, audio,
//     modalities (other than ["text"]), prediction, web_search_options,
//     verbosity, functions, function_call (legacy, in the request or a
//     message), input_audio and file content parts, custom tools and an
//     allowed_tools or custom tool_choice.
//   - fields that only steer OpenAI's own service and change nothing in the
//     answer are ignored: store and metadata (OpenAI's stored completions;
//     the gateway keeps its own ledger), service_tier (a billing and latency
//     class; answers report "default"), prompt_cache_key and
//     prompt_cache_retention (cache routing hints), and
//     stream_options.include_obfuscation. safety_identifier becomes User when
//     user is absent. Unknown fields are ignored, for forward compatibility.
func DecodeChat(body []byte) (*llm.Request, error) {
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, decodeError(err)
	}
	if w.Model == "" {
		return nil, apierr.New(apierr.BadRequest, "you must provide a model parameter").WithParam("model")
	}
	if len(w.Messages) == 0 {
		return nil, apierr.New(apierr.BadRequest, "messages must be a non-empty array").WithParam("messages")
	}
	r := &llm.Request{
		Model:            w.Model,
		UpstreamModel:    w.Model,
		Temperature:      w.Temperature,
		TopP:             w.TopP,
		Seed:             w.Seed,
		PresencePenalty:  w.PresencePenalty,
		FrequencyPenalty: w.FrequencyPenalty,
		ReasoningEffort:  w.ReasoningEffort,
		User:             w.User,
	}
	if r.User == "" {
		r.User = w.SafetyIdentifier
	}
	if w.Stream != nil {
		r.Stream = *w.Stream
	}
	if present(w.StreamOptions) && !r.Stream {
		return nil, apierr.New(apierr.BadRequest, "The 'stream_options' parameter is only allowed when 'stream' is enabled.").WithParam("stream_options")
	}
	switch {
	case w.MaxCompletionTokens != nil:
		r.MaxTokens = *w.MaxCompletionTokens
	case w.MaxTokens != nil:
		r.MaxTokens = *w.MaxTokens
	}
	if r.MaxTokens < 0 {
		return nil, apierr.New(apierr.BadRequest, "max_completion_tokens must be positive").WithParam("max_completion_tokens")
	}
	if w.N != nil {
		if *w.N < 1 {
			return nil, apierr.New(apierr.BadRequest, "n must be at least 1").WithParam("n")
		}
		r.N = *w.N
	}
	var err error
	if r.Stop, err = decodeStop(w.Stop); err != nil {
		return nil, err
	}
	for i := range w.Messages {
		if err := decodeMessage(r, &w.Messages[i], i); err != nil {
			return nil, err
		}
	}
	if err := decodeTools(r, &w); err != nil {
		return nil, err
	}
	if r.ResponseFormat, err = decodeResponseFormat(w.ResponseFormat); err != nil {
		return nil, err
	}
	unsupported(r, &w)
	return r, nil
}

// wireRequest is the part of a Chat Completions request DecodeChat reads.
// Unions stay json.RawMessage and are decoded by shape.
type wireRequest struct {
	Model               string          `json:"model"`
	Messages            []wireMessage   `json:"messages"`
	Tools               []wireTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	N                   *int            `json:"n"`
	Stop                json.RawMessage `json:"stop"`
	Stream              *bool           `json:"stream"`
	StreamOptions       json.RawMessage `json:"stream_options"`
	ResponseFormat      json.RawMessage `json:"response_format"`
	Seed                *int64          `json:"seed"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	ReasoningEffort     string          `json:"reasoning_effort"`
	User                string          `json:"user"`
	SafetyIdentifier    string          `json:"safety_identifier"`

	// Understood but not representable: see DecodeChat.
	LogitBias        json.RawMessage `json:"logit_bias"`
	Logprobs         *bool           `json:"logprobs"`
	TopLogprobs      json.RawMessage `json:"top_logprobs"`
	Audio            json.RawMessage `json:"audio"`
	Modalities       []string        `json:"modalities"`
	Prediction       json.RawMessage `json:"prediction"`
	WebSearchOptions json.RawMessage `json:"web_search_options"`
	Verbosity        json.RawMessage `json:"verbosity"`
	Functions        json.RawMessage `json:"functions"`
	FunctionCall     json.RawMessage `json:"function_call"`
}

type wireMessage struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"`
	Name         string          `json:"name"`
	ToolCalls    []wireToolCall  `json:"tool_calls"`
	ToolCallID   string          `json:"tool_call_id"`
	Refusal      *string         `json:"refusal"`
	FunctionCall json.RawMessage `json:"function_call"`
	Audio        json.RawMessage `json:"audio"`
}

type wirePart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL *struct {
		URL    string `json:"url"`
		Detail string `json:"detail"`
	} `json:"image_url"`
}

type wireToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type wireTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	} `json:"function"`
}

// present reports whether a raw field was sent with a non-null value.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

func badRequest(param, format string, args ...any) *apierr.Error {
	return apierr.New(apierr.BadRequest, format, args...).WithParam(param)
}

// decodeError turns an encoding/json error into a BadRequest naming the field.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		param := te.Field
		if param == "" {
			return apierr.Wrap(apierr.BadRequest, err, "the request body must be a JSON object").WithCode("invalid_json")
		}
		return apierr.Wrap(apierr.BadRequest, err, fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", param, jsonTypeName(te.Type.Kind().String()), te.Value)).
			WithParam(param).WithCode("invalid_type")
	}
	return apierr.Wrap(apierr.BadRequest, err, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)").WithCode("invalid_json")
}

func jsonTypeName(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "float64", "float32":
		return "a number"
	}
	return "another type"
}

func decodeStop(raw json.RawMessage) ([]string, error) {
	if !present(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, nil
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil {
		return ss, nil
	}
	return nil, badRequest("stop", "stop must be a string or an array of strings")
}

func decodeMessage(r *llm.Request, m *wireMessage, i int) error {
	param := fmt.Sprintf("messages[%d]", i)
	if present(m.FunctionCall) {
		r.Unsupported = appendOnce(r.Unsupported, "function_call")
	}
	switch m.Role {
	case "system", "developer":
		parts, err := decodeContent(r, m.Content, param, false)
		if err != nil {
			return err
		}
		r.System = append(r.System, parts...)
		return nil
	case "user":
		parts, err := decodeContent(r, m.Content, param, true)
		if err != nil {
			return err
		}
		if len(parts) == 0 {
			return badRequest(param+".content", "user messages must have content")
		}
		r.Messages = append(r.Messages, llm.Message{Role: llm.RoleUser, Content: parts, Name: m.Name})
		return nil
	case "assistant":
		parts, err := decodeContent(r, m.Content, param, false)
		if err != nil {
			return err
		}
		if m.Refusal != nil && *m.Refusal != "" && len(parts) == 0 {
			parts = append(parts, llm.Part{Type: llm.PartText, Text: *m.Refusal})
		}
		if present(m.Audio) {
			r.Unsupported = appendOnce(r.Unsupported, "audio")
		}
		for j := range m.ToolCalls {
			tc := &m.ToolCalls[j]
			p := fmt.Sprintf("%s.tool_calls[%d]", param, j)
			if tc.Type != "function" {
				if tc.Type == "custom" {
					r.Unsupported = appendOnce(r.Unsupported, "custom_tool")
					continue
				}
				return badRequest(p+".type", "tool call type must be \"function\", got %q", tc.Type)
			}
			if tc.ID == "" || tc.Function.Name == "" {
				return badRequest(p, "tool calls need an id and a function name")
			}
			parts = append(parts, llm.Part{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{
				ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments,
			}})
		}
		r.Messages = append(r.Messages, llm.Message{Role: llm.RoleAssistant, Content: parts, Name: m.Name})
		return nil
	case "tool":
		if m.ToolCallID == "" {
			return badRequest(param+".tool_call_id", "tool messages need a tool_call_id")
		}
		parts, err := decodeContent(r, m.Content, param, false)
		if err != nil {
			return err
		}
		r.Messages = append(r.Messages, llm.Message{Role: llm.RoleTool, Content: []llm.Part{{
			Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: m.ToolCallID, Content: parts},
		}}})
		return nil
	case "function":
		r.Unsupported = appendOnce(r.Unsupported, "function_call")
		return nil
	case "":
		return badRequest(param+".role", "Missing required parameter: '%s.role'.", param)
	}
	return badRequest(param+".role", "Invalid value: '%s'. Supported values are: 'system', 'developer', 'user', 'assistant', and 'tool'.", m.Role)
}

// decodeContent decodes a message's content: null, a string or an array of
// parts. Images are allowed only where images says so (user messages).
func decodeContent(r *llm.Request, raw json.RawMessage, param string, images bool) ([]llm.Part, error) {
	param += ".content"
	if !present(raw) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badRequest(param, "content must be a string or an array of parts")
		}
		return []llm.Part{{Type: llm.PartText, Text: s}}, nil
	}
	var wp []wirePart
	if err := json.Unmarshal(raw, &wp); err != nil {
		return nil, badRequest(param, "content must be a string or an array of parts")
	}
	parts := make([]llm.Part, 0, len(wp))
	for j := range wp {
		p := &wp[j]
		pp := fmt.Sprintf("%s[%d]", param, j)
		switch p.Type {
		case "text":
			parts = append(parts, llm.Part{Type: llm.PartText, Text: p.Text})
		case "refusal":
			parts = append(parts, llm.Part{Type: llm.PartText, Text: p.Refusal})
		case "image_url":
			if !images {
				return nil, badRequest(pp+".type", "image_url content parts are only allowed in user messages")
			}
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, badRequest(pp+".image_url.url", "image_url needs a url")
			}
			img, err := decodeImageURL(p.ImageURL.URL, pp+".image_url.url")
			if err != nil {
				return nil, err
			}
			img.Detail = p.ImageURL.Detail
			parts = append(parts, llm.Part{Type: llm.PartImage, Image: img})
		case "input_audio", "file":
			r.Unsupported = appendOnce(r.Unsupported, p.Type)
		default:
			return nil, badRequest(pp+".type", "unknown content part type %q", p.Type)
		}
	}
	return parts, nil
}

// decodeImageURL accepts an http(s) URL or a base64 data: URL.
func decodeImageURL(u, param string) (*llm.Image, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mt, isB64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isB64 || mt == "" || data == "" {
			return nil, badRequest(param, "image data URLs must have the form data:<media type>;base64,<data>")
		}
		return &llm.Image{MediaType: mt, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &llm.Image{URL: u}, nil
	}
	return nil, badRequest(param, "image URLs must be http(s) or base64 data URLs")
}

func decodeTools(r *llm.Request, w *wireRequest) error {
	for i := range w.Tools {
		t := &w.Tools[i]
		param := fmt.Sprintf("tools[%d]", i)
		switch t.Type {
		case "function":
		case "custom":
			r.Unsupported = appendOnce(r.Unsupported, "custom_tool")
			continue
		default:
			return badRequest(param+".type", "tool type must be \"function\", got %q", t.Type)
		}
		if t.Function.Name == "" {
			return badRequest(param+".function.name", "Missing required parameter: '%s.function.name'.", param)
		}
		tool := llm.Tool{Name: t.Function.Name, Description: t.Function.Description}
		if present(t.Function.Parameters) {
			tool.Parameters = t.Function.Parameters
		}
		if t.Function.Strict != nil {
			tool.Strict = *t.Function.Strict
		}
		r.Tools = append(r.Tools, tool)
	}
	if w.ParallelToolCalls != nil && !*w.ParallelToolCalls {
		r.ToolChoice.DisableParallel = true
	}
	raw := w.ToolChoice
	if !present(raw) {
		return nil
	}
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		switch s {
		case "auto":
			r.ToolChoice.Mode = llm.ToolChoiceAuto
		case "none":
			r.ToolChoice.Mode = llm.ToolChoiceNone
		case "required":
			r.ToolChoice.Mode = llm.ToolChoiceRequired
		default:
			return badRequest("tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or an object, got %q", s)
		}
		return nil
	}
	var tc struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &tc); err != nil {
		return badRequest("tool_choice", "tool_choice must be a string or an object")
	}
	switch tc.Type {
	case "function":
		if tc.Function.Name == "" {
			return badRequest("tool_choice.function.name", "Missing required parameter: 'tool_choice.function.name'.")
		}
		r.ToolChoice.Mode, r.ToolChoice.Name = llm.ToolChoiceNamed, tc.Function.Name
	case "allowed_tools", "custom":
		r.Unsupported = appendOnce(r.Unsupported, "tool_choice."+tc.Type)
	default:
		return badRequest("tool_choice.type", "unknown tool_choice type %q", tc.Type)
	}
	return nil
}

func decodeResponseFormat(raw json.RawMessage) (*llm.ResponseFormat, error) {
	if !present(raw) {
		return nil, nil
	}
	var rf struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
			Strict *bool           `json:"strict"`
		} `json:"json_schema"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		return nil, badRequest("response_format", "response_format must be an object")
	}
	switch rf.Type {
	case "text":
		return nil, nil
	case "json_object":
		return &llm.ResponseFormat{Type: llm.FormatJSONObject}, nil
	case "json_schema":
		if rf.JSONSchema == nil || rf.JSONSchema.Name == "" {
			return nil, badRequest("response_format.json_schema.name", "Missing required parameter: 'response_format.json_schema.name'.")
		}
		f := &llm.ResponseFormat{Type: llm.FormatJSONSchema, Name: rf.JSONSchema.Name}
		if present(rf.JSONSchema.Schema) {
			f.Schema = rf.JSONSchema.Schema
		}
		if rf.JSONSchema.Strict != nil {
			f.Strict = *rf.JSONSchema.Strict
		}
		return f, nil
	}
	return nil, badRequest("response_format.type", "response_format type must be \"text\", \"json_object\" or \"json_schema\", got %q", rf.Type)
}

// unsupported names the top-level fields that were set but that the
// canonical request cannot carry.
func unsupported(r *llm.Request, w *wireRequest) {
	for _, f := range [...]struct {
		name string
		raw  json.RawMessage
	}{
		{"logit_bias", w.LogitBias},
		{"top_logprobs", w.TopLogprobs},
		{"audio", w.Audio},
		{"prediction", w.Prediction},
		{"web_search_options", w.WebSearchOptions},
		{"verbosity", w.Verbosity},
		{"functions", w.Functions},
		{"function_call", w.FunctionCall},
	} {
		if present(f.raw) {
			r.Unsupported = appendOnce(r.Unsupported, f.name)
		}
	}
	if w.Logprobs != nil && *w.Logprobs {
		r.Unsupported = appendOnce(r.Unsupported, "logprobs")
	}
	for _, m := range w.Modalities {
		if m != "text" {
			r.Unsupported = appendOnce(r.Unsupported, "modalities")
			break
		}
	}
}

func appendOnce(list []string, name string) []string {
	for _, s := range list {
		if s == name {
			return list
		}
	}
	return append(list, name)
}
