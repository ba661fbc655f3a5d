package llm

import "encoding/json"

// Role is who speaks a message.
type Role string

// Roles. System and developer instructions are kept as Request.System, not
// as messages, because most providers take them apart from the turns.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	// RoleTool carries tool results back to the model.
	RoleTool Role = "tool"
)

// PartType is the kind of a content part.
type PartType uint8

// Part types.
const (
	PartText PartType = iota
	PartImage
	// PartToolCall is a model's request to call a tool (assistant only).
	PartToolCall
	// PartToolResult answers a tool call (RoleTool or, for Anthropic, user).
	PartToolResult
	// PartThinking is a model's visible reasoning (Anthropic thinking blocks,
	// Gemini thoughts). Kept so multi-turn history round-trips; adapters that
	// cannot send it back drop it only where the provider documents that
	// prior thinking is optional.
	PartThinking
)

// Part is one piece of a message's content.
type Part struct {
	Type PartType
	// Text is the text of PartText and PartThinking.
	Text string
	// Image is set for PartImage.
	Image *Image
	// ToolCall is set for PartToolCall.
	ToolCall *ToolCall
	// ToolResult is set for PartToolResult.
	ToolResult *ToolResult
	// Signature is an opaque provider token that must be sent back with a
	// thinking part (Anthropic's signature).
	Signature string
}

// Image is an image input: either a URL or inline base64 data.
type Image struct {
	// URL is an http(s) URL. Empty when Data is set.
	URL string
	// MediaType is the MIME type of Data, e.g. image/png.
	MediaType string
	// Data is base64 without a data: prefix.
	Data string
	// Detail is OpenAI's low/high/auto hint; other providers ignore it.
	Detail string
}

// ToolCall is a call the model asked for.
type ToolCall struct {
	ID   string
	Name string
	// Arguments is the JSON object text of the arguments, as the model
	// produced it.
	Arguments string
}

// ToolResult is the outcome of a tool call, sent back to the model.
type ToolResult struct {
	CallID string
	// Name is the tool's name; Gemini needs it, OpenAI and Anthropic do not.
	Name string
	// Content is the result's text (and images where the provider allows).
	Content []Part
	IsError bool
}

// Message is one turn.
type Message struct {
	Role    Role
	Content []Part
	// Name is an optional participant name (OpenAI's "name").
	Name string
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments (an object schema).
	Parameters json.RawMessage
	// Strict asks for exact schema adherence where the provider has it.
	Strict bool
}

// ToolChoiceMode says whether and which tools the model may call.
type ToolChoiceMode uint8

// Tool choice modes.
const (
	ToolChoiceAuto ToolChoiceMode = iota
	ToolChoiceNone
	// ToolChoiceRequired: the model must call some tool.
	ToolChoiceRequired
	// ToolChoiceNamed: the model must call ToolChoice.Name.
	ToolChoiceNamed
)

// ToolChoice constrains tool calls.
type ToolChoice struct {
	Mode ToolChoiceMode
	Name string
	// DisableParallel forbids several calls in one turn.
	DisableParallel bool
}

// ResponseFormatType is the requested output format.
type ResponseFormatType uint8

// Response formats.
const (
	FormatText ResponseFormatType = iota
	// FormatJSONObject: any JSON object.
	FormatJSONObject
	// FormatJSONSchema: JSON matching Schema.
	FormatJSONSchema
)

// ResponseFormat asks for structured output.
type ResponseFormat struct {
	Type   ResponseFormatType
	Name   string
	Schema json.RawMessage
	Strict bool
}

// Request is a chat request in the gateway's canonical form: every ingress
// decodes into it and every translating provider encodes out of it.
type Request struct {
	// Model is the client-facing model; adapters send UpstreamModel.
	Model         string
	UpstreamModel string
	// System holds system and developer instructions, in order.
	System   []Part
	Messages []Message
	Tools    []Tool
	// ToolChoice applies when Tools is not empty.
	ToolChoice ToolChoice
	// MaxTokens bounds the output; 0 means the client did not say.
	MaxTokens int
	// Temperature and TopP are nil when unset.
	Temperature *float64
	TopP        *float64
	TopK        *int
	Stop        []string
	Stream      bool
	// ResponseFormat is nil for plain text.
	ResponseFormat *ResponseFormat
	// N is the number of choices; 0 or 1 means one.
	N int
	// Seed, PresencePenalty and FrequencyPenalty are nil when unset.
	Seed             *int64
	PresencePenalty  *float64
	FrequencyPenalty *float64
	// ReasoningEffort is OpenAI's low/medium/high; ThinkingBudget is
	// Anthropic's and Gemini's budget_tokens. Either may be empty/zero.
	ReasoningEffort string
	ThinkingBudget  int
	// User identifies the end user to the provider, where it takes one.
	User string
	// Unsupported names request fields the ingress understood but that have
	// no canonical form (OpenAI's "audio", say). A translating provider
	// refuses a request that sets any, naming it.
	Unsupported []string
}

// Usage counts tokens. InputTokens includes cached and cache-write tokens
// (OpenAI's convention); OutputTokens includes reasoning tokens.
type Usage struct {
	InputTokens      int64
	OutputTokens     int64
	CachedTokens     int64
	CacheWriteTokens int64
	ReasoningTokens  int64
}

// StopReason is why the model stopped.
type StopReason uint8

// Stop reasons.
const (
	StopUnknown StopReason = iota
	StopEndTurn
	StopMaxTokens
	StopToolUse
	StopSequence
	StopContentFilter
)

// Response is a complete (non-streamed) answer.
type Response struct {
	ID    string
	Model string
	// Content holds text, thinking and tool-call parts in order.
	Content      []Part
	StopReason   StopReason
	StopSequence string
	Usage        Usage
	// Created is the Unix time of the answer, 0 when the provider gave none.
	Created int64
}
