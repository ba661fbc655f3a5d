package fakeanthropic

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// msgRequest is what the fake needs from a messages or count_tokens request.
type msgRequest struct {
	model       string
	inputTokens int
	stream      bool
	hasTools    bool
}

// imageTypes are the media types the API accepts for base64 images.
var imageTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// otherBlockTypes are content block types accepted without inspection.
var otherBlockTypes = []string{"document", "thinking", "redacted_thinking", "search_result",
	"server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "container_upload"}

// parseMessages validates a messages or count_tokens body the way the API
// does for the fields the fake reads, and reports the first problem with a
// message in the API's "path: problem" style.
func parseMessages(body []byte, rt route) (msgRequest, *apiError) {
	var req msgRequest
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return req, ptr(errInvalid("There was an issue with the format of your request: the body must be a JSON object."))
	}
	if e := checkModel(m, rt, &req); e != nil {
		return req, e
	}
	if rt.op == opMessages {
		raw, ok := m["max_tokens"]
		if !ok {
			return req, ptr(errInvalid("max_tokens: Field required"))
		}
		var n int
		if json.Unmarshal(raw, &n) != nil || n < 1 {
			return req, ptr(errInvalid("max_tokens: Input should be a valid integer greater than or equal to 1"))
		}
	}
	if raw, ok := m["stream"]; ok && rt.op == opMessages {
		if json.Unmarshal(raw, &req.stream) != nil {
			return req, ptr(errInvalid("stream: Input should be a valid boolean"))
		}
	}
	if raw, ok := m["system"]; ok {
		n, e := textWords(raw, "system")
		if e != nil {
			return req, e
		}
		req.inputTokens += n
	}
	if raw, ok := m["stop_sequences"]; ok {
		var ss []string
		if json.Unmarshal(raw, &ss) != nil {
			return req, ptr(errInvalid("stop_sequences: Input should be a valid list of strings"))
		}
	}
	if raw, ok := m["tools"]; ok {
		n, e := checkTools(raw)
		if e != nil {
			return req, e
		}
		req.hasTools = n > 0
		req.inputTokens += n * ToolTokens
	}
	raw, ok := m["messages"]
	if !ok {
		return req, ptr(errInvalid("messages: Field required"))
	}
	var msgs []json.RawMessage
	if json.Unmarshal(raw, &msgs) != nil {
		return req, ptr(errInvalid("messages: Input should be a valid list"))
	}
	if len(msgs) == 0 && rt.op == opMessages {
		return req, ptr(errInvalid("messages: at least one message is required"))
	}
	for i, mr := range msgs {
		n, e := checkMessage(mr, fmt.Sprintf("messages.%d", i))
		if e != nil {
			return req, e
		}
		req.inputTokens += MessageTokens + n
	}
	return req, nil
}

// checkModel applies each family's rule for "model" and anthropic_version.
func checkModel(m map[string]json.RawMessage, rt route, req *msgRequest) *apiError {
	if rt.vertex {
		var v string
		raw, ok := m["anthropic_version"]
		if !ok {
			return ptr(errInvalid("anthropic_version: Field required"))
		}
		if json.Unmarshal(raw, &v) != nil || v != VertexVersion {
			return ptr(errInvalid(fmt.Sprintf("anthropic_version: Input should be '%s'", VertexVersion)))
		}
		if rt.op == opMessages {
			if _, ok := m["model"]; ok {
				return ptr(errInvalid("model: Extra inputs are not permitted"))
			}
			req.model = rt.model
			return nil
		}
	}
	raw, ok := m["model"]
	if !ok {
		return ptr(errInvalid("model: Field required"))
	}
	if json.Unmarshal(raw, &req.model) != nil || req.model == "" {
		return ptr(errInvalid("model: Input should be a valid string"))
	}
	return nil
}

// checkTools validates tool definitions and returns how many there are.
// Custom tools need a name and an input_schema object; server tools (with a
// "type" such as "web_search_20250305") are accepted as they are.
func checkTools(raw json.RawMessage) (int, *apiError) {
	var tools []struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		InputSchema json.RawMessage `json:"input_schema"`
	}
	if json.Unmarshal(raw, &tools) != nil {
		return 0, ptr(errInvalid("tools: Input should be a valid list"))
	}
	for i, t := range tools {
		if t.Type != "" && t.Type != "custom" {
			continue
		}
		if t.Name == "" {
			return 0, ptr(errInvalid(fmt.Sprintf("tools.%d.custom.name: Field required", i)))
		}
		if !isObject(t.InputSchema) {
			return 0, ptr(errInvalid(fmt.Sprintf("tools.%d.custom.input_schema: Field required", i)))
		}
	}
	return len(tools), nil
}

// checkMessage validates one message and returns its input tokens beyond
// MessageTokens.
func checkMessage(raw json.RawMessage, path string) (int, *apiError) {
	var msg struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(raw, &msg) != nil {
		return 0, ptr(errInvalid(path + ": Input should be a valid dictionary"))
	}
	if msg.Role != "user" && msg.Role != "assistant" {
		return 0, ptr(errInvalid(path + ".role: Input should be 'user' or 'assistant'"))
	}
	if msg.Content == nil {
		return 0, ptr(errInvalid(path + ".content: Field required"))
	}
	var s string
	if json.Unmarshal(msg.Content, &s) == nil {
		return len(strings.Fields(s)), nil
	}
	var blocks []json.RawMessage
	if json.Unmarshal(msg.Content, &blocks) != nil {
		return 0, ptr(errInvalid(path + ".content: Input should be a valid string or list"))
	}
	total := 0
	for j, b := range blocks {
		n, e := checkBlock(b, fmt.Sprintf("%s.content.%d", path, j), msg.Role)
		if e != nil {
			return 0, e
		}
		total += n
	}
	return total, nil
}

// block is the union of the content block fields the fake inspects.
type block struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text"`
	Source    json.RawMessage `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
}

// checkBlock validates one content block of a message from role and returns
// its input tokens.
func checkBlock(raw json.RawMessage, path, role string) (int, *apiError) {
	var b block
	if json.Unmarshal(raw, &b) != nil {
		return 0, ptr(errInvalid(path + ": Input should be a valid dictionary"))
	}
	switch b.Type {
	case "text":
		if b.Text == nil {
			return 0, ptr(errInvalid(path + ".text.text: Field required"))
		}
		return len(strings.Fields(*b.Text)), nil
	case "image":
		return ImageTokens, checkImage(b.Source, path+".image.source")
	case "tool_use":
		if role != "assistant" {
			return 0, ptr(errInvalid(path + ": tool_use blocks can only appear in assistant messages"))
		}
		switch {
		case b.ID == "":
			return 0, ptr(errInvalid(path + ".tool_use.id: Field required"))
		case b.Name == "":
			return 0, ptr(errInvalid(path + ".tool_use.name: Field required"))
		case !isObject(b.Input):
			return 0, ptr(errInvalid(path + ".tool_use.input: Input should be a valid dictionary"))
		}
		return 0, nil
	case "tool_result":
		if role != "user" {
			return 0, ptr(errInvalid(path + ": tool_result blocks can only appear in user messages"))
		}
		if b.ToolUseID == "" {
			return 0, ptr(errInvalid(path + ".tool_result.tool_use_id: Field required"))
		}
		return toolResultTokens(b.Content, path+".tool_result.content")
	case "":
		return 0, ptr(errInvalid(path + ".type: Field required"))
	}
	if slices.Contains(otherBlockTypes, b.Type) {
		return 0, nil
	}
	return 0, ptr(errInvalid(fmt.Sprintf("%s: Input tag '%s' found using 'type' does not match any of the expected tags", path, b.Type)))
}

// checkImage validates an image source: base64 with a supported media type
// and decodable data, or url with a URL.
func checkImage(raw json.RawMessage, path string) *apiError {
	var src struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	}
	if raw == nil {
		return ptr(errInvalid(path + ": Field required"))
	}
	if json.Unmarshal(raw, &src) != nil {
		return ptr(errInvalid(path + ": Input should be a valid dictionary"))
	}
	switch src.Type {
	case "base64":
		if !slices.Contains(imageTypes, src.MediaType) {
			return ptr(errInvalid(path + ".base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"))
		}
		if _, err := base64.StdEncoding.DecodeString(src.Data); err != nil || src.Data == "" {
			return ptr(errInvalid(path + ".base64.data: The image data is not valid base64"))
		}
	case "url":
		if !strings.HasPrefix(src.URL, "https://") && !strings.HasPrefix(src.URL, "http://") {
			return ptr(errInvalid(path + ".url.url: Input should be a valid URL"))
		}
	case "file":
	default:
		return ptr(errInvalid(path + ": Input tag '" + src.Type + "' found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'"))
	}
	return nil
}

// toolResultTokens validates a tool_result's content (absent, a string, or
// text and image blocks) and returns its tokens.
func toolResultTokens(raw json.RawMessage, path string) (int, *apiError) {
	if raw == nil {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return len(strings.Fields(s)), nil
	}
	var blocks []json.RawMessage
	if json.Unmarshal(raw, &blocks) != nil {
		return 0, ptr(errInvalid(path + ": Input should be a valid string or list"))
	}
	total := 0
	for i, br := range blocks {
		var b block
		p := fmt.Sprintf("%s.%d", path, i)
		if json.Unmarshal(br, &b) != nil {
			return 0, ptr(errInvalid(p + ": Input should be a valid dictionary"))
		}
		if b.Type != "text" && b.Type != "image" && b.Type != "document" && b.Type != "search_result" {
			return 0, ptr(errInvalid(fmt.Sprintf("%s: Input tag '%s' found using 'type' does not match any of the expected tags", p, b.Type)))
		}
		n, e := checkBlock(br, p, "user")
		if e != nil {
			return 0, e
		}
		total += n
	}
	return total, nil
}

// textWords counts the words of a system prompt: a string or a list of text
// blocks.
func textWords(raw json.RawMessage, path string) (int, *apiError) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return len(strings.Fields(s)), nil
	}
	var blocks []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if json.Unmarshal(raw, &blocks) != nil {
		return 0, ptr(errInvalid(path + ": Input should be a valid string or list"))
	}
	n := 0
	for i, b := range blocks {
		if b.Type != "text" || b.Text == nil {
			return 0, ptr(errInvalid(fmt.Sprintf("%s.%d: Input should be a text block", path, i)))
		}
		n += len(strings.Fields(*b.Text))
	}
	return n, nil
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{' && json.Valid(raw)
}

func ptr[T any](v T) *T { return &v }
