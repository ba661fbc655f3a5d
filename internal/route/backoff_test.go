package route

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	const base, maxD = 100 * time.Millisecond, 5 * time.Second
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		rnd        float64
		want       time.Duration
	}{
		{"first retry, no jitter", 0, 0, 0, 0},
		{"first retry, top of range", 0, 0, 0.999999, 99_999_900 * time.Nanosecond},
		{"third retry, half", 2, 0, 0.5, 200 * time.Millisecond},
		{"capped", 10, 0, 0.5, 2500 * time.Millisecond},
		{"huge attempt does not overflow", 1000, 0, 0.5, 2500 * time.Millisecond},
		{"negative attempt is the first", -3, 0, 0.5, 50 * time.Millisecond},
		{"retry-after is a floor", 0, 2 * time.Second, 0.5, 2 * time.Second},
		{"retry-after beats the cap", 3, 30 * time.Second, 0.9, 30 * time.Second},
		{"jitter above retry-after", 5, time.Second, 0.5, 1600 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Backoff(tc.attempt, tc.retryAfter, base, maxD, func() float64 { return tc.rnd })
			if got != tc.want {
				t.Errorf("Backoff(%d, %v) = %v, want %v", tc.attempt, tc.retryAfter, got, tc.want)
			}
		})
	}
}

func TestBackoffBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const base, maxD = 50 * time.Millisecond, 2 * time.Second
	for i := range 10_000 {
		attempt := i % 12
		ra := time.Duration(rng.IntN(3)) * 500 * time.Millisecond
		got := Backoff(attempt, ra, base, maxD, rng.Float64)
		ceil := min(base<<attempt, maxD)
		if got < ra || got > max(ceil, ra) {
			t.Fatalf("Backoff(%d, %v) = %v, want within [%v, %v]", attempt, ra, got, ra, max(ceil, ra))
		}
	}
	if got := Backoff(3, 0, base, maxD, nil); got < 0 || got >= 400*time.Millisecond {
		t.Errorf("Backoff with the default source = %v, want within [0, 400ms)", got)
	}
}
