package ratelimit_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/ratelimit"
)

func TestFormatReset(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "0s"},
		{time.Microsecond, "1ms"},
		{20 * time.Millisecond, "20ms"},
		{time.Second, "1s"},
		{1200 * time.Millisecond, "1.2s"},
		{8571429 * time.Microsecond, "8.572s"},
		{6 * time.Minute, "6m0s"},
	}
	for _, tc := range tests {
		if got := ratelimit.FormatReset(tc.d); got != tc.want {
			t.Errorf("FormatReset(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestSetHeaders(t *testing.T) {
	tests := []struct {
		name string
		d    ratelimit.Decision
		want http.Header
	}{
		{"allowed", ratelimit.Decision{
			Allowed:  true,
			Requests: ratelimit.Quota{Limit: 60, Remaining: 59, Reset: time.Second},
			Tokens:   ratelimit.Quota{Limit: 150000, Remaining: 149984, Reset: 6 * time.Millisecond},
		}, http.Header{
			"X-Ratelimit-Limit-Requests":     {"60"},
			"X-Ratelimit-Remaining-Requests": {"59"},
			"X-Ratelimit-Reset-Requests":     {"1s"},
			"X-Ratelimit-Limit-Tokens":       {"150000"},
			"X-Ratelimit-Remaining-Tokens":   {"149984"},
			"X-Ratelimit-Reset-Tokens":       {"6ms"},
		}},
		{"refused", ratelimit.Decision{
			Limit: "key:a", RetryAfter: 1200 * time.Millisecond,
			Requests: ratelimit.Quota{Limit: 50, Remaining: 0, Reset: time.Minute},
		}, http.Header{
			"X-Ratelimit-Limit-Requests":     {"50"},
			"X-Ratelimit-Remaining-Requests": {"0"},
			"X-Ratelimit-Reset-Requests":     {"1m0s"},
			"Retry-After":                    {"2"},
		}},
		{"too large", ratelimit.Decision{Limit: "key:a", TooLarge: true}, http.Header{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			tc.d.SetHeaders(h)
			if diff := cmp.Diff(tc.want, h); diff != "" {
				t.Errorf("SetHeaders mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetHeadersAllocs(t *testing.T) {
	d := ratelimit.Decision{
		Allowed:  true,
		Requests: ratelimit.Quota{Limit: 100_000_000, Remaining: 99_999_998, Reset: 2 * time.Millisecond},
		Tokens:   ratelimit.Quota{Limit: 100_000_000_000, Remaining: 99_999_983_000, Reset: 30 * time.Millisecond},
	}
	h := http.Header{}
	// The values' backing array, the numbers, and the two reset durations.
	if n := testing.AllocsPerRun(100, func() { d.SetHeaders(h) }); n > 4 {
		t.Errorf("SetHeaders allocates %v times, want at most 4", n)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		req  ratelimit.Request
		ok   bool
	}{
		{"ok", ratelimit.Request{Limits: []ratelimit.Limit{{Name: "a", RPM: 1}, {Name: "b"}}}, true},
		{"duplicate", ratelimit.Request{Limits: []ratelimit.Limit{{Name: "a"}, {Name: "a"}}}, false},
		{"empty name", ratelimit.Request{Limits: []ratelimit.Limit{{RPM: 1}}}, false},
		{"negative rpm", ratelimit.Request{Limits: []ratelimit.Limit{{Name: "a", RPM: -1}}}, false},
		{"negative tokens", ratelimit.Request{Tokens: -1}, false},
	}
	for _, tc := range tests {
		err := tc.req.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ratelimit.ErrInvalid)) {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
