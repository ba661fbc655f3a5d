package route

import (
	"math/rand/v2"
	"time"
)

// Backoff returns how long to wait before retry number attempt (0 for the
// first retry): a uniformly random duration in [0, min(max, base·2^attempt))
// ("full jitter"), but never less than retryAfter, the upstream's own
// Retry-After, which wins even over max (retrying sooner is pointless; a
// caller that cannot wait that long should move to another candidate).
// rnd returns a number in [0, 1); nil means math/rand/v2.Float64.
func Backoff(attempt int, retryAfter, base, max time.Duration, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	ceil := max
	if attempt < 0 {
		attempt = 0
	}
	if base > 0 && attempt < 62 && base <= max>>attempt {
		ceil = base << attempt
	}
	if base <= 0 {
		ceil = 0
	}
	d := time.Duration(rnd() * float64(ceil))
	if d < retryAfter {
		d = retryAfter
	}
	return d
}
