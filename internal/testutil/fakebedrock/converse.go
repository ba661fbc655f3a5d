package fakebedrock

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// converseRequest is what the fake needs from a Converse request.
type converseRequest struct {
	inputTokens int
}

// parseConverse validates body as Bedrock does for the fields the fake
// reads: messages must be non-empty, start with a user turn, alternate
// roles, and each carry content. Error messages are Bedrock's.
func parseConverse(body []byte) (converseRequest, *apiError) {
	var req converseRequest
	var in struct {
		Messages []struct {
			Role    string            `json:"role"`
			Content []json.RawMessage `json:"content"`
		} `json:"messages"`
		System []struct {
			Text string `json:"text"`
		} `json:"system"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return req, errValidation(msgValidation)
	}
	if len(in.Messages) == 0 {
		return req, errValidation("1 validation error detected: Value at 'messages' failed to satisfy constraint: Member must not be null")
	}
	prev := ""
	for i, m := range in.Messages {
		switch {
		case m.Role != "user" && m.Role != "assistant":
			return req, errValidation(fmt.Sprintf("1 validation error detected: Value '%s' at 'messages.%d.member.role' "+
				"failed to satisfy constraint: Member must satisfy enum value set: [assistant, user]", m.Role, i+1))
		case i == 0 && m.Role != "user":
			return req, errValidation("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
		case m.Role == prev:
			return req, errValidation("A conversation must alternate between user and assistant roles. " +
				"Make sure the conversation alternates between user and assistant roles and try again.")
		case len(m.Content) == 0:
			return req, errValidation(fmt.Sprintf("The content field in the Message object at messages.%d is empty. "+
				"Add a ContentBlock object to the content field and try again.", i))
		}
		prev = m.Role
		req.inputTokens += 4
		for _, c := range m.Content {
			var block struct {
				Text *string `json:"text"`
			}
			if json.Unmarshal(c, &block) != nil {
				return req, errValidation(msgValidation)
			}
			if block.Text != nil {
				req.inputTokens += len(strings.Fields(*block.Text))
			}
		}
	}
	for _, sys := range in.System {
		req.inputTokens += len(strings.Fields(sys.Text))
	}
	return req, nil
}

// answer holds one scripted reply; its methods render the wire objects.
type answer struct {
	textPieces  []string
	tool        *ToolCall
	toolPieces  []string
	stopReason  string
	inputTokens int
	cacheRead   int
	cacheWrite  int
	started     time.Time
}

func (s *Server) newAnswer(req converseRequest, b Behavior, started time.Time) answer {
	a := answer{inputTokens: req.inputTokens, cacheRead: s.opts.CacheReadTokens,
		cacheWrite: s.opts.CacheWriteTokens, started: started, stopReason: "end_turn"}
	text := b.Content
	if text == "" && b.ToolCall == nil {
		text = DefaultContent
	}
	a.textPieces = splitContent(text, s.opts.Chunks)
	if b.ToolCall != nil {
		tc := *b.ToolCall
		if tc.ID == "" {
			tc.ID = "tooluse_" + s.opts.IDs()
		}
		if tc.Input == "" {
			tc.Input = "{}"
		}
		if !json.Valid([]byte(tc.Input)) {
			// Keep the body valid JSON; the client sees the bad input as a
			// string document instead of the handler failing.
			tc.Input = string(marshal(tc.Input))
		}
		a.tool = &tc
		a.toolPieces = splitBytes(tc.Input, s.opts.Chunks)
		a.stopReason = "tool_use"
	}
	return a
}

func (a answer) outputTokens() int { return len(a.textPieces) + len(a.toolPieces) }

func (a answer) usage() map[string]any {
	out := a.outputTokens()
	u := map[string]any{
		"inputTokens":  a.inputTokens,
		"outputTokens": out,
		"totalTokens":  a.inputTokens + out + a.cacheRead + a.cacheWrite,
	}
	if a.cacheRead != 0 || a.cacheWrite != 0 {
		u["cacheReadInputTokens"] = a.cacheRead
		u["cacheWriteInputTokens"] = a.cacheWrite
	}
	return u
}

func (a answer) metrics(now time.Time) map[string]any {
	return map[string]any{"latencyMs": now.Sub(a.started).Milliseconds()}
}

// converseBody renders the Converse response.
func (a answer) converseBody(now time.Time) map[string]any {
	var content []any
	if len(a.textPieces) > 0 {
		content = append(content, map[string]any{"text": strings.Join(a.textPieces, "")})
	}
	if a.tool != nil {
		content = append(content, map[string]any{"toolUse": map[string]any{
			"toolUseId": a.tool.ID,
			"name":      a.tool.Name,
			"input":     json.RawMessage(a.tool.Input),
		}})
	}
	return map[string]any{
		"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
		"stopReason": a.stopReason,
		"usage":      a.usage(),
		"metrics":    a.metrics(now),
	}
}

// splitContent splits text into at most n non-empty pieces that join back
// to text, on word boundaries (a piece starts with the space before its
// word) when there are at least n words, and on runes otherwise.
func splitContent(text string, n int) []string {
	if text == "" {
		return nil
	}
	var words []string
	start := 0
	prevSpace := false
	for i, r := range text {
		sp := unicode.IsSpace(r)
		if sp && !prevSpace && i > 0 {
			words = append(words, text[start:i])
			start = i
		}
		prevSpace = sp
	}
	words = append(words, text[start:])
	if len(words) < n {
		words = words[:0]
		for _, r := range text {
			words = append(words, string(r))
		}
		n = min(n, len(words))
	}
	pieces := make([]string, n)
	for j := range n {
		pieces[j] = strings.Join(words[j*len(words)/n:(j+1)*len(words)/n], "")
	}
	return pieces
}

// splitBytes splits a tool's JSON input into at most n pieces at rune
// boundaries, as Bedrock streams toolUse input: arbitrary fragments of the
// JSON text that only parse once joined.
func splitBytes(s string, n int) []string {
	runes := []rune(s)
	n = min(n, len(runes))
	pieces := make([]string, n)
	for j := range n {
		pieces[j] = string(runes[j*len(runes)/n : (j+1)*len(runes)/n])
	}
	return pieces
}
