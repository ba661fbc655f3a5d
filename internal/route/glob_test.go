package route

import "testing"

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"gpt-4o*", "gpt-4o", true},
		{"gpt-4o*", "gpt-4o-2031", true},
		{"gpt-4o*", "gpt-4", false},
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"meta-llama/*-70b", "meta-llama/llama-3-70b", true},
		{"meta-llama/*-70b", "meta-llama/llama-3-8b", false},
		{"claude-?-sonnet", "claude-3-sonnet", true},
		{"claude-?-sonnet", "claude-35-sonnet", false},
		{"*a*b*c", "xaybzzc", true},
		{"*a*b*c", "xaybzzcd", false},
		{"anthropic.claude*:0", "anthropic.claude-3:0", true},
	}
	for _, tc := range tests {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
