package route

import (
	"testing"

	"github.com/multipolar/multipolar/internal/llm"
)

func needsCases() []struct {
	name string
	req  llm.Request
	want Caps
} {
	text := llm.Message{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "hi"}}}
	image := llm.Message{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText}, {Type: llm.PartImage, Image: &llm.Image{URL: "https://x"}}}}
	return []struct {
		name string
		req  llm.Request
		want Caps
	}{
		{"plain", llm.Request{Messages: []llm.Message{text}}, 0},
		{"tools", llm.Request{Messages: []llm.Message{text}, Tools: []llm.Tool{{Name: "f"}}}, CapTools},
		{"image", llm.Request{Messages: []llm.Message{text, image}}, CapVision},
		{"json", llm.Request{ResponseFormat: &llm.ResponseFormat{Type: llm.FormatJSONSchema}}, CapJSON},
		{"text format", llm.Request{ResponseFormat: &llm.ResponseFormat{Type: llm.FormatText}}, 0},
	}
}

func TestNeedsOf(t *testing.T) {
	for _, tc := range needsCases() {
		if got := NeedsOf(&tc.req); got != tc.want {
			t.Errorf("NeedsOf(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCaps(t *testing.T) {
	if got := (CapTools | CapJSON).String(); got != "tools,json" {
		t.Errorf("String() = %q", got)
	}
	if c, ok := ParseCap("vision"); !ok || c != CapVision {
		t.Errorf("ParseCap(vision) = %v, %v", c, ok)
	}
	if _, ok := ParseCap("audio"); ok {
		t.Errorf("ParseCap(audio) ok")
	}
	for r := Admitted; r < numReasons; r++ {
		if r.String() == "" || r.String() == "unknown" || (r != Admitted && r.Constraint() == "") {
			t.Errorf("Reason %d has no name", r)
		}
	}
	if numReasons.String() != "unknown" {
		t.Errorf("out-of-range Reason named %q", numReasons.String())
	}
}
