package bedrock

import "encoding/json"

// Wire types of the Converse API
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html).

// converseRequest is a Converse / ConverseStream request body. The model ID
// travels in the path.
type converseRequest struct {
	Messages                     []message        `json:"messages"`
	System                       []systemBlock    `json:"system,omitempty"`
	InferenceConfig              *inferenceConfig `json:"inferenceConfig,omitempty"`
	ToolConfig                   *toolConfig      `json:"toolConfig,omitempty"`
	AdditionalModelRequestFields *additionalModel `json:"additionalModelRequestFields,omitempty"`
}

type message struct {
	Role    string         `json:"role"`
	Content []contentBlock `json:"content"`
}

// contentBlock is a union: exactly one field is set.
type contentBlock struct {
	Text             string            `json:"text,omitempty"`
	Image            *imageBlock       `json:"image,omitempty"`
	ToolUse          *toolUseBlock     `json:"toolUse,omitempty"`
	ToolResult       *toolResultBlock  `json:"toolResult,omitempty"`
	ReasoningContent *reasoningContent `json:"reasoningContent,omitempty"`
}

type imageBlock struct {
	Format string      `json:"format"`
	Source imageSource `json:"source"`
}

// imageSource holds the image as base64 text, which is how restJson1
// serializes a blob.
type imageSource struct {
	Bytes string `json:"bytes"`
}

type toolUseBlock struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

type toolResultBlock struct {
	ToolUseID string              `json:"toolUseId"`
	Content   []toolResultContent `json:"content"`
	Status    string              `json:"status,omitempty"`
}

// toolResultContent is a union of text and image. Converse also has
// {"json": ...}; canonical tool results carry no structured JSON, so it is
// never produced.
type toolResultContent struct {
	Text  *string     `json:"text,omitempty"`
	Image *imageBlock `json:"image,omitempty"`
}

type reasoningContent struct {
	ReasoningText *reasoningText `json:"reasoningText,omitempty"`
	// RedactedContent is base64 (a blob); decoded answers only.
	RedactedContent string `json:"redactedContent,omitempty"`
}

type reasoningText struct {
	Text      string `json:"text"`
	Signature string `json:"signature,omitempty"`
}

type systemBlock struct {
	Text string `json:"text"`
}

type inferenceConfig struct {
	MaxTokens     int      `json:"maxTokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"topP,omitempty"`
	StopSequences []string `json:"stopSequences,omitempty"`
}

type toolConfig struct {
	Tools      []tool      `json:"tools"`
	ToolChoice *toolChoice `json:"toolChoice,omitempty"`
}

type tool struct {
	ToolSpec toolSpec `json:"toolSpec"`
}

type toolSpec struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	InputSchema inputSchema `json:"inputSchema"`
}

type inputSchema struct {
	JSON json.RawMessage `json:"json"`
}

// toolChoice is a union of auto, any and tool.
type toolChoice struct {
	Any  *struct{}      `json:"any,omitempty"`
	Tool *toolChoiceFor `json:"tool,omitempty"`
}

type toolChoiceFor struct {
	Name string `json:"name"`
}

// additionalModel holds model-specific request fields, in Anthropic's
// Messages API form, which Bedrock forwards to Claude models.
type additionalModel struct {
	TopK     *int      `json:"top_k,omitempty"`
	Thinking *thinking `json:"thinking,omitempty"`
}

type thinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens"`
}

// converseResponse is a Converse answer.
type converseResponse struct {
	Output struct {
		Message struct {
			Role    string         `json:"role"`
			Content []contentBlock `json:"content"`
		} `json:"message"`
	} `json:"output"`
	StopReason                    string         `json:"stopReason"`
	Usage                         tokenUsage     `json:"usage"`
	AdditionalModelResponseFields responseFields `json:"additionalModelResponseFields"`
}

// responseFields are the model-specific answer fields the adapter reads:
// Claude names the stop sequence it hit.
type responseFields struct {
	StopSequence string `json:"stop_sequence"`
}

// tokenUsage is Bedrock's TokenUsage. InputTokens excludes both cache
// counts (see the package comment).
type tokenUsage struct {
	InputTokens           int64 `json:"inputTokens"`
	OutputTokens          int64 `json:"outputTokens"`
	TotalTokens           int64 `json:"totalTokens"`
	CacheReadInputTokens  int64 `json:"cacheReadInputTokens"`
	CacheWriteInputTokens int64 `json:"cacheWriteInputTokens"`
}
