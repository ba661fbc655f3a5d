package anthropic

import (
	"testing"

	"github.com/multipolar/multipolar/internal/llm"
)

func TestMeterStream(t *testing.T) {
	m := (&Provider{}).Meter(&llm.RawRequest{Body: make([]byte, 80)})
	events := []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n",
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"usage\"}}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n",
	}
	for _, ev := range events {
		if out := m.Event([]byte(ev)); string(out) != ev {
			t.Errorf("Event changed %q to %q; Anthropic events pass unchanged", ev, out)
		}
	}
	got, reported := m.Usage()
	want := llm.Usage{InputTokens: 113, OutputTokens: 7, CachedTokens: 100, CacheWriteTokens: 3}
	if !reported || got != want {
		t.Errorf("Usage() = %+v, %v; want %+v, true", got, reported, want)
	}
}

func TestMeterBodyAndEstimate(t *testing.T) {
	m := (&Provider{}).Meter(&llm.RawRequest{Body: make([]byte, 80)})
	m.Body([]byte(`{"id":"msg_1","content":[{"type":"text","text":"\"usage\":{}"}],"usage":{"input_tokens":5,"output_tokens":2}}`))
	if got, ok := m.Usage(); !ok || got.InputTokens != 5 || got.OutputTokens != 2 {
		t.Errorf("Usage() = %+v, %v", got, ok)
	}
	cut := (&Provider{}).Meter(&llm.RawRequest{Body: make([]byte, 80)})
	cut.Event([]byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}}\n\n"))
	if got, ok := cut.Usage(); ok || got.InputTokens != 20 || got.OutputTokens != 1 {
		t.Errorf("cut Usage() = %+v, reported %v; want an estimate", got, ok)
	}
}
