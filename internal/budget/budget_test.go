package budget_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/budget"
)

func TestMicrosString(t *testing.T) {
	tests := []struct {
		m    budget.Micros
		want string
	}{
		{0, "$0.000000"},
		{1, "$0.000001"},
		{1_000_000, "$1.000000"},
		{12_345_678, "$12.345678"},
		{-1, "-$0.000001"},
		{math.MaxInt64, "$9223372036854.775807"},
		{math.MinInt64, "-$9223372036854.775808"},
	}
	for _, tc := range tests {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("Micros(%d).String() = %q, want %q", int64(tc.m), got, tc.want)
		}
	}
}

func TestWindow(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	tests := []struct {
		name              string
		b                 budget.Budget
		now               time.Time
		wantStart, wantRe time.Time
	}{
		{"daily UTC", budget.Budget{Period: budget.Daily}, time.Date(2026, 5, 3, 17, 4, 0, 0, time.UTC),
			time.Date(2026, 5, 3, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)},
		{"daily Tokyo before UTC midnight", budget.Budget{Period: budget.Daily, Location: tokyo},
			time.Date(2026, 5, 3, 16, 0, 0, 0, time.UTC), // 01:00 on the 4th in Tokyo
			time.Date(2026, 5, 4, 0, 0, 0, 0, tokyo), time.Date(2026, 5, 5, 0, 0, 0, 0, tokyo)},
		{"daily New York DST end is 25h", budget.Budget{Period: budget.Daily, Location: ny},
			time.Date(2026, 11, 1, 12, 0, 0, 0, ny),
			time.Date(2026, 11, 1, 0, 0, 0, 0, ny), time.Date(2026, 11, 2, 0, 0, 0, 0, ny)},
		{"weekly Monday itself", budget.Budget{Period: budget.Weekly}, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"weekly Sunday", budget.Budget{Period: budget.Weekly}, time.Date(2026, 11, 29, 23, 59, 0, 0, time.UTC),
			time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"weekly across year", budget.Budget{Period: budget.Weekly}, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 12, 28, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 4, 0, 0, 0, 0, time.UTC)},
		{"monthly December", budget.Budget{Period: budget.Monthly}, time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC),
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"monthly leap February", budget.Budget{Period: budget.Monthly}, time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC),
			time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"total", budget.Budget{Period: budget.Total}, time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC),
			time.Time{}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start, reset := tc.b.Window(tc.now)
			if !start.Equal(tc.wantStart) || !reset.Equal(tc.wantRe) {
				t.Errorf("Window(%v) = %v, %v; want %v, %v", tc.now, start, reset, tc.wantStart, tc.wantRe)
			}
		})
	}
	if s, r := (budget.Budget{Period: budget.Daily, Location: ny}).Window(time.Date(2026, 11, 1, 12, 0, 0, 0, ny)); r.Sub(s) != 25*time.Hour {
		t.Errorf("New York 2026-11-01 lasts %v, want 25h", r.Sub(s))
	}
}

func TestFits(t *testing.T) {
	const max = budget.Micros(math.MaxInt64)
	tests := []struct {
		s, r, a, l budget.Micros
		want       bool
	}{
		{0, 0, 0, 0, true},
		{1, 2, 3, 6, true},
		{1, 2, 4, 6, false},
		{7, 0, 0, 6, false},
		{max, max, max, max, false}, // would overflow
		{0, 0, max, max, true},
	}
	for _, tc := range tests {
		if got := budget.Fits(tc.s, tc.r, tc.a, tc.l); got != tc.want {
			t.Errorf("Fits(%d, %d, %d, %d) = %v, want %v", tc.s, tc.r, tc.a, tc.l, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	good := budget.Budget{Name: "key:a", Limit: 1, Period: budget.Daily}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v, want nil", good, err)
	}
	for _, b := range []budget.Budget{{Limit: 1, Period: budget.Daily}, {Name: "a", Limit: -1, Period: budget.Daily}, {Name: "a"}} {
		if err := b.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", b)
		}
	}
	req := budget.Request{ID: "r", Budgets: []budget.Budget{good, good}, Now: time.Now(), TTL: time.Minute}
	if err := req.Validate(); err == nil {
		t.Error("Request.Validate with duplicate budgets = nil, want error")
	}
	var ee error = &budget.ExceededError{Budget: good}
	if !errors.Is(ee, budget.ErrExceeded) {
		t.Error("errors.Is(*ExceededError, ErrExceeded) = false")
	}
}
