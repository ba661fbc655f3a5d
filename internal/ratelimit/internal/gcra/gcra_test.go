package gcra

import (
	"math"
	"testing"
	"time"
)

func TestCost(t *testing.T) {
	tests := []struct {
		c, l       int64
		whole, rem int64
		ok         bool
	}{
		{1, 50, 1_200_000, 0, true},
		{1, 7, 8_571_428, 4, true},
		{1000, 1000, Period, 0, true},
		{1001, 1000, 0, 0, false},
		{1, math.MaxInt64, 0, Period, true},
		{math.MaxInt64, 1, 0, 0, false},
	}
	for _, tc := range tests {
		w, r, ok := Cost(tc.c, tc.l)
		if w != tc.whole || r != tc.rem || ok != tc.ok {
			t.Errorf("Cost(%d, %d) = %d, %d, %v; want %d, %d, %v", tc.c, tc.l, w, r, ok, tc.whole, tc.rem, tc.ok)
		}
	}
}

func TestBurstIsExactlyLimit(t *testing.T) {
	for _, l := range []int64{1, 3, 7, 50, 997, 150_000} {
		w, r, _ := Cost(1, l)
		var s State
		n := int64(0)
		for {
			next, fits := Next(s, 1e15, w, r, l)
			if !fits {
				break
			}
			s, n = next, n+1
		}
		if n != l {
			t.Errorf("burst at limit %d admitted %d", l, n)
		}
		if got := Remaining(State{}, 1e15, l); got != l {
			t.Errorf("Remaining(idle, %d) = %d, want %d", l, got, l)
		}
	}
}

func TestRemainingLargeLimit(t *testing.T) {
	l := int64(math.MaxInt64 / 2)
	w, r, _ := Cost(1000, l)
	s, _ := Next(State{}, 0, w, r, l)
	if got := Remaining(s, 0, l); got != l-1000 {
		t.Errorf("Remaining = %d, want %d", got, l-1000)
	}
	if got := Reset(s, 0); got != time.Microsecond {
		t.Errorf("Reset = %v, want 1µs", got)
	}
}

func TestRefundNeverBanks(t *testing.T) {
	w, r, _ := Cost(10, 100)
	if got := Refund(State{}, 5e14, w, r, 100); got != (State{5e14, 0}) {
		t.Errorf("Refund(idle) = %+v, want now", got)
	}
}
