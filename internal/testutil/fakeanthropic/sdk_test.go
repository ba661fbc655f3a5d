package fakeanthropic

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/google/go-cmp/cmp"
)

// textParams sends a 3-word system prompt and one 2-word message:
// input_tokens = 3 + MessageTokens + 2 = 9.
func textParams() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     testModel,
		MaxTokens: 256,
		System:    []anthropic.TextBlockParam{{Text: "You are terse."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))},
	}
}

const wantInputTokens = 3 + MessageTokens + 2

func weatherTool() anthropic.ToolUnionParam {
	return anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
		Name:        "get_weather",
		Description: anthropic.String("Current weather for a city."),
		InputSchema: anthropic.ToolInputSchemaParam{
			Properties: map[string]any{"city": map[string]any{"type": "string"}},
			Required:   []string{"city"},
		},
	}}
}

// accumulate reads a stream to the end with Message.Accumulate.
func accumulate(t *testing.T, stream interface {
	Next() bool
	Current() anthropic.MessageStreamEventUnion
	Err() error
}) (anthropic.Message, []string, error) {
	t.Helper()
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatalf("Accumulate(%s): %v", ev.RawJSON(), err)
		}
	}
	return msg, types, stream.Err()
}

func TestMessagesNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth option.RequestOption
	}{
		{"x-api-key", option.WithAPIKey(testKey)},
		{"bearer", option.WithAuthToken(testKey)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, rec, ts := start(t, Options{APIKey: testKey, CacheReadTokens: 7, CacheCreationTokens: 3})
			client := anthropic.NewClient(option.WithBaseURL(ts.URL), tc.auth, option.WithMaxRetries(0))
			got, err := client.Messages.New(t.Context(), textParams())
			if err != nil {
				t.Fatalf("Messages.New: %v", err)
			}
			if len(got.Content) != 1 || got.Content[0].Type != "text" || got.Content[0].Text != DefaultContent {
				t.Errorf("Content = %+v, want one text block %q", got.Content, DefaultContent)
			}
			if got.StopReason != anthropic.StopReasonEndTurn || got.Role != "assistant" || got.Model != testModel ||
				!strings.HasPrefix(got.ID, "msg_01") {
				t.Errorf("stop_reason, role, model, id = %q %q %q %q", got.StopReason, got.Role, got.Model, got.ID)
			}
			u := got.Usage
			if u.InputTokens != wantInputTokens || u.OutputTokens != 5 || u.CacheReadInputTokens != 7 ||
				u.CacheCreationInputTokens != 3 || u.CacheCreation.Ephemeral5mInputTokens != 3 || u.ServiceTier != "standard" {
				t.Errorf("Usage = %s, want input %d, output 5, cache read 7, creation 3", u.RawJSON(), wantInputTokens)
			}
			reqs := fake.Requests()
			if len(reqs) != 1 || reqs[0].Header.Get("anthropic-version") == "" {
				t.Errorf("Requests() = %d, anthropic-version %q", len(reqs), reqs[0].Header.Get("anthropic-version"))
			}
			validateAll(t, fake, rec)
		})
	}
}

func TestStreamMatchesNew(t *testing.T) {
	fake, rec, ts := start(t, Options{APIKey: testKey, CacheReadTokens: 7, CacheCreationTokens: 3, Chunks: 4})
	client := sdkClient(ts, testKey)
	plain, err := client.Messages.New(t.Context(), textParams())
	if err != nil {
		t.Fatalf("Messages.New: %v", err)
	}
	msg, types, err := accumulate(t, client.Messages.NewStreaming(t.Context(), textParams()))
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	wantTypes := []string{"message_start", "content_block_start", "content_block_delta", "content_block_delta",
		"content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}
	if diff := cmp.Diff(wantTypes, types); diff != "" {
		t.Errorf("event types (-want +got):\n%s", diff) // the SDK drops ping
	}
	if msg.Content[0].Text != plain.Content[0].Text || msg.StopReason != plain.StopReason {
		t.Errorf("streamed text, stop = %q %q; plain %q %q", msg.Content[0].Text, msg.StopReason, plain.Content[0].Text, plain.StopReason)
	}
	su, pu := msg.Usage, plain.Usage
	if su.InputTokens != pu.InputTokens || su.OutputTokens != pu.OutputTokens || su.OutputTokens != 4 ||
		su.CacheReadInputTokens != pu.CacheReadInputTokens || su.CacheCreationInputTokens != pu.CacheCreationInputTokens {
		t.Errorf("streamed usage %s, plain %s", su.RawJSON(), pu.RawJSON())
	}
	validateAll(t, fake, rec)
}

func TestToolUse(t *testing.T) {
	const input = `{"city": "Paris", "unit": "celsius", "days": [1, 2, 3]}`
	const compact = `{"city":"Paris","unit":"celsius","days":[1,2,3]}`
	for _, tc := range []struct {
		name      string
		content   string
		wantTypes []string
	}{
		{"tool only", "", []string{"tool_use"}},
		{"text then tool", "Let me check.", []string{"text", "tool_use"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, rec, ts := start(t, Options{APIKey: testKey, IDs: func() string { return fixedID }})
			fake.SetDefault(Behavior{Content: tc.content, ToolCall: &ToolCall{Name: "get_weather", Input: json.RawMessage(input)}})
			client := sdkClient(ts, testKey)
			params := textParams()
			params.Tools = []anthropic.ToolUnionParam{weatherTool()}
			check := func(what string, m anthropic.Message) {
				t.Helper()
				var types []string
				for _, b := range m.Content {
					types = append(types, b.Type)
				}
				if diff := cmp.Diff(tc.wantTypes, types); diff != "" {
					t.Fatalf("%s block types (-want +got):\n%s", what, diff)
				}
				tu := m.Content[len(m.Content)-1]
				if tu.Name != "get_weather" || string(tu.Input) != compact || tu.ID != "toolu_01FakeAnthropic0123456789" {
					t.Errorf("%s tool_use = %s %s %s, want get_weather %s", what, tu.ID, tu.Name, tu.Input, compact)
				}
				if m.StopReason != anthropic.StopReasonToolUse {
					t.Errorf("%s stop_reason = %q, want tool_use", what, m.StopReason)
				}
				if want := int64(len(splitRunes(compact, 5)) + len(splitContent(tc.content, 5))); tc.content == "" && m.Usage.OutputTokens != 5 ||
					tc.content != "" && m.Usage.OutputTokens != want {
					t.Errorf("%s output_tokens = %d", what, m.Usage.OutputTokens)
				}
				if m.Usage.InputTokens != wantInputTokens+ToolTokens {
					t.Errorf("%s input_tokens = %d, want %d", what, m.Usage.InputTokens, wantInputTokens+ToolTokens)
				}
			}
			plain, err := client.Messages.New(t.Context(), params)
			if err != nil {
				t.Fatalf("Messages.New: %v", err)
			}
			check("New", *plain)
			streamed, _, err := accumulate(t, client.Messages.NewStreaming(t.Context(), params))
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			check("stream", streamed)

			// Each partial_json piece alone is not the input; together they are.
			var pieces []string
			for _, ev := range parseSSE(t, rec.exchanges()[1].body) {
				var d struct {
					Delta struct {
						Type        string `json:"type"`
						PartialJSON string `json:"partial_json"`
					} `json:"delta"`
				}
				_ = json.Unmarshal(ev.data, &d)
				if d.Delta.Type == "input_json_delta" {
					pieces = append(pieces, d.Delta.PartialJSON)
				}
			}
			if len(pieces) < 2 || strings.Join(pieces, "") != compact || json.Valid([]byte(pieces[0])) {
				t.Errorf("partial_json pieces = %q, want several joining to %s", pieces, compact)
			}
			validateAll(t, fake, rec)
		})
	}
}

func TestToolCallIgnoredWithoutTools(t *testing.T) {
	fake, _, ts := start(t, Options{})
	fake.SetDefault(Behavior{ToolCall: &ToolCall{Name: "x", Input: json.RawMessage(`{}`)}})
	client := sdkClient(ts, testKey)
	got, err := client.Messages.New(t.Context(), textParams())
	if err != nil {
		t.Fatal(err)
	}
	if got.StopReason != anthropic.StopReasonEndTurn || got.Content[0].Type != "text" {
		t.Errorf("without tools: stop %q block %q, want end_turn text", got.StopReason, got.Content[0].Type)
	}
}

func TestStopSequence(t *testing.T) {
	fake, rec, ts := start(t, Options{})
	fake.SetDefault(Behavior{StopSequence: "###"})
	client := sdkClient(ts, testKey)
	params := textParams()
	params.StopSequences = []string{"###"}
	plain, err := client.Messages.New(t.Context(), params)
	if err != nil {
		t.Fatal(err)
	}
	streamed, _, err := accumulate(t, client.Messages.NewStreaming(t.Context(), params))
	if err != nil {
		t.Fatal(err)
	}
	for what, m := range map[string]anthropic.Message{"New": *plain, "stream": streamed} {
		if m.StopReason != anthropic.StopReasonStopSequence || m.StopSequence != "###" {
			t.Errorf("%s stop = %q %q, want stop_sequence ###", what, m.StopReason, m.StopSequence)
		}
	}
	validateAll(t, fake, rec)
}

func TestMultiTurnImagesToolResults(t *testing.T) {
	fake, rec, ts := start(t, Options{})
	params := anthropic.MessageNewParams{
		Model:     testModel,
		MaxTokens: 100,
		Tools:     []anthropic.ToolUnionParam{weatherTool()},
		Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(
				anthropic.NewTextBlock("What is this and the weather?"), // 6 words
				anthropic.NewImageBlockBase64("image/png", "iVBORw0KGgo="),
				anthropic.NewImageBlock(anthropic.URLImageSourceParam{URL: "https://example.com/cat.jpg"}),
			),
			anthropic.NewAssistantMessage(
				anthropic.NewTextBlock("A cat."), // 2 words
				anthropic.NewToolUseBlock("toolu_01A", map[string]any{"city": "Paris"}, "get_weather"),
			),
			anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_01A", "Sunny and warm", false)), // 3 words
		},
	}
	want := int64(ToolTokens + 3*MessageTokens + 6 + 2*ImageTokens + 2 + 3)
	client := sdkClient(ts, testKey)
	got, err := client.Messages.New(t.Context(), params)
	if err != nil {
		t.Fatalf("Messages.New: %v", err)
	}
	if got.Usage.InputTokens != want {
		t.Errorf("input_tokens = %d, want %d", got.Usage.InputTokens, want)
	}
	count, err := client.Messages.CountTokens(t.Context(), anthropic.MessageCountTokensParams{
		Model: testModel, Messages: params.Messages, Tools: []anthropic.MessageCountTokensToolUnionParam{{OfTool: params.Tools[0].OfTool}},
	})
	if err != nil {
		t.Fatalf("CountTokens: %v", err)
	}
	if count.InputTokens != want {
		t.Errorf("count_tokens = %d, want %d", count.InputTokens, want)
	}
	validateAll(t, fake, rec)
}

func TestModels(t *testing.T) {
	fake, rec, ts := start(t, Options{APIKey: testKey, Models: []string{"claude-sonnet-4-5-20250929", "claude-haiku-4-5"}})
	client := sdkClient(ts, testKey)
	page, err := client.Models.List(t.Context(), anthropic.ModelListParams{})
	if err != nil {
		t.Fatalf("Models.List: %v", err)
	}
	var ids, names []string
	for _, m := range page.Data {
		ids, names = append(ids, m.ID), append(names, m.DisplayName)
	}
	if diff := cmp.Diff([]string{"claude-sonnet-4-5-20250929", "claude-haiku-4-5"}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Claude Sonnet 4.5", "Claude Haiku 4.5"}, names); diff != "" {
		t.Errorf("display names (-want +got):\n%s", diff)
	}
	if page.HasMore || page.FirstID != ids[0] || page.LastID != ids[1] {
		t.Errorf("page = has_more %v first %q last %q", page.HasMore, page.FirstID, page.LastID)
	}
	m, err := client.Models.Get(t.Context(), "claude-haiku-4-5", anthropic.ModelGetParams{})
	if err != nil || m.ID != "claude-haiku-4-5" {
		t.Errorf("Models.Get = %v, %v", m, err)
	}
	_, err = client.Models.Get(t.Context(), "claude-nope", anthropic.ModelGetParams{})
	if apiErr, ok := errors.AsType[*anthropic.Error](err); !ok || apiErr.StatusCode != 404 {
		t.Errorf("Models.Get(unknown) error = %v, want 404", err)
	}
	validateAll(t, fake, rec)
}
