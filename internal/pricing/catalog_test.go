package pricing

import (
	"strings"
	"testing"
	"time"
)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestLookup(t *testing.T) {
	c := NewCatalog([]Entry{
		{"openai", "o3", Price{Input: MustMoney("10"), From: day("2025-04-16")}},
		{"openai", "o3", Price{Input: MustMoney("2"), From: day("2025-06-10")}},
		{"openai", "o3", Price{Input: MustMoney("1"), From: day("2027-01-01")}},
		{"*", "llama", Price{Input: MustMoney("0.9")}},
		{"fast", "llama", Price{Input: MustMoney("0.5"), From: day("2025-01-01")}},
	})
	tests := []struct {
		name            string
		provider, model string
		at              time.Time
		want            string // Input, or "" for not found
	}{
		{"before first", "openai", "o3", day("2025-04-15"), ""},
		{"at first", "openai", "o3", day("2025-04-16"), "10"},
		{"between", "openai", "o3", day("2025-06-09"), "10"},
		{"at cut", "openai", "o3", day("2025-06-10"), "2"},
		{"just before future", "openai", "o3", day("2027-01-01").Add(-time.Nanosecond), "2"},
		{"future", "openai", "o3", day("2030-01-01"), "1"},
		{"unknown model", "openai", "o4", day("2025-06-10"), ""},
		{"unknown provider, no fallback", "azure", "o3", day("2025-06-10"), ""},
		{"fallback", "other", "llama", day("2020-01-01"), "0.9"},
		{"specific wins", "fast", "llama", day("2025-02-01"), "0.5"},
		{"specific not yet in force falls back", "fast", "llama", day("2024-02-01"), "0.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := c.Lookup(tc.provider, tc.model, tc.at)
			got := ""
			if ok {
				got = p.Input.String()
			}
			if got != tc.want {
				t.Errorf("Lookup(%q, %q, %s) = %q, want %q", tc.provider, tc.model, tc.at, got, tc.want)
			}
		})
	}
	var nilCat *Catalog
	if _, ok := nilCat.Lookup("a", "b", time.Now()); ok {
		t.Error("nil catalog found a price")
	}
}

func TestWithDoesNotModifyReceiver(t *testing.T) {
	base := NewCatalog([]Entry{{"openai", "gpt-4o", Price{Input: MustMoney("2.5"), From: day("2024-08-06")}}})
	over := base.With([]Entry{
		{"openai", "gpt-4o", Price{Input: MustMoney("2"), From: day("2024-08-06")}}, // replace
		{"openai", "gpt-4o", Price{Input: MustMoney("1"), From: day("2026-01-01")}}, // extend
		{"mine", "m", Price{Input: MustMoney("7")}},                                 // add
	})
	at := day("2025-01-01")
	if p, _ := base.Lookup("openai", "gpt-4o", at); p.Input.String() != "2.5" {
		t.Errorf("base changed: %s", p.Input)
	}
	if p, _ := over.Lookup("openai", "gpt-4o", at); p.Input.String() != "2" {
		t.Errorf("override = %s, want 2", p.Input)
	}
	if p, _ := over.Lookup("openai", "gpt-4o", day("2026-02-01")); p.Input.String() != "1" {
		t.Errorf("extension = %s, want 1", p.Input)
	}
	if _, ok := base.Lookup("mine", "m", at); ok {
		t.Error("base gained an entry")
	}
	if n := len(over.Entries()); n != 3 {
		t.Errorf("len(Entries()) = %d, want 3", n)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	c := Builtin()
	at := day("2026-01-01")
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := c.Lookup("openai", "gpt-4o", at); !ok {
			t.Fatal("gpt-4o missing")
		}
		_, _ = c.Lookup("elsewhere", "llama-3.1-70b", at)
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkLookup(b *testing.B) {
	c := Builtin()
	at := day("2026-01-01")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = c.Lookup("openai", "o3", at)
	}
}

func TestBuiltin(t *testing.T) {
	c := Builtin()
	now := day("2026-11-26")
	for _, m := range [][2]string{
		{"openai", "gpt-4o"}, {"openai", "gpt-4o-mini"}, {"openai", "gpt-4.1"}, {"openai", "gpt-4.1-mini"},
		{"openai", "o3"}, {"openai", "o4-mini"}, {"openai", "text-embedding-3-small"}, {"openai", "text-embedding-3-large"},
		{"anthropic", "claude-sonnet-4-5"}, {"anthropic", "claude-opus-4-1"}, {"anthropic", "claude-haiku-4-5"},
		{"google", "gemini-2.5-pro"}, {"google", "gemini-2.5-flash"},
		{"anyone", "llama-3.1-70b"}, {"anyone", "llama-3.1-405b"},
	} {
		p, ok := c.Lookup(m[0], m[1], now)
		if !ok {
			t.Errorf("Builtin().Lookup(%q, %q) not found", m[0], m[1])
			continue
		}
		if p.Input.Sign() <= 0 {
			t.Errorf("%s/%s input price %s, want > 0", m[0], m[1], p.Input)
		}
	}
	if p, _ := c.Lookup("openai", "o3", day("2025-05-01")); p.Output.String() != "40" {
		t.Errorf("o3 in May 2025 output = %s, want 40", p.Output)
	}
	if p, _ := c.Lookup("openai", "o3", now); p.Output.String() != "8" {
		t.Errorf("o3 now output = %s, want 8", p.Output)
	}
	if p, _ := c.Lookup("google", "gemini-2.5-flash", now); p.CacheWrite.String() != "0.3" {
		t.Errorf("omitted cache_write = %s, want input 0.3", p.CacheWrite)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", "prices:\n- {provider: a, model: b, input: '1', output: '1', colour: red}\n", "colour"},
		{"missing output", "prices:\n- {provider: a, model: b, input: '1'}\n", "output is required"},
		{"negative", "prices:\n- {provider: a, model: b, input: '-1', output: '1'}\n", "negative"},
		{"float-ish", "prices:\n- {provider: a, model: b, input: 1e3, output: '1'}\n", "invalid money"},
		{"bad date", "prices:\n- {provider: a, model: b, from: yesterday, input: '1', output: '1'}\n", "from"},
		{"duplicate", "prices:\n- {provider: a, model: b, input: '1', output: '1'}\n- {provider: a, model: b, input: '2', output: '1'}\n", "duplicate"},
		{"no model", "prices:\n- {provider: a, input: '1', output: '1'}\n", "model is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse() error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
