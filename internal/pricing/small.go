package pricing

import (
	"math"
	"math/bits"
	"strconv"

	"github.com/cockroachdb/apd/v3"
)

// Fast paths for amounts whose coefficient fits a uint64: every price and
// nearly every cost. They compute exactly what the apd paths do (the
// tests compare both), without apd's general arithmetic; anything that
// does not fit falls back to apd.

// pow10u are the powers of ten that fit a uint64.
var pow10u = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// small returns m's coefficient and exponent if the coefficient fits a
// uint64.
func (m *Money) small() (coeff uint64, exp int32, ok bool) {
	if m.d.Form != apd.Finite || !m.d.Coeff.IsUint64() {
		return 0, 0, false
	}
	return m.d.Coeff.Uint64(), m.d.Exponent, true
}

// ceilMicrosSmall is CeilMicros for a small coefficient; ok is false when
// the result might not fit, leaving the verdict to the apd path.
func (m *Money) ceilMicrosSmall() (int64, bool) {
	c, e, ok := m.small()
	if !ok {
		return 0, false
	}
	var q uint64
	switch k := int(e) + 6; {
	case k >= 0:
		if k >= len(pow10u) {
			return 0, c == 0
		}
		hi, lo := bits.Mul64(c, pow10u[k])
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		q = lo
	case -k < len(pow10u):
		var r uint64
		q, r = c/pow10u[-k], c%pow10u[-k]
		if r != 0 && !m.d.Negative {
			q++ // towards +∞; a negative amount's truncation already is
		}
	default: // e ≤ -26, so 0 ≤ |m| < 2^64 × 10^-26 < 10^-6
		q = 0
		if c != 0 && !m.d.Negative {
			q = 1
		}
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	if m.d.Negative {
		return -int64(q), true
	}
	return int64(q), true
}

// appendSmall appends the canonical form of a non-zero m with a small
// coefficient; ok is false for other amounts.
func (m *Money) appendSmall(b []byte) ([]byte, bool) {
	c, e, ok := m.small()
	if !ok || c == 0 {
		return b, false
	}
	for c%10 == 0 { // reduce: no trailing fractional zeros
		c /= 10
		e++
	}
	if m.d.Negative {
		b = append(b, '-')
	}
	var buf [20]byte
	digits := strconv.AppendUint(buf[:0], c, 10)
	switch {
	case e >= 0:
		b = append(b, digits...)
		for range e {
			b = append(b, '0')
		}
	case int(-e) < len(digits):
		point := len(digits) + int(e)
		b = append(b, digits[:point]...)
		b = append(b, '.')
		b = append(b, digits[point:]...)
	default:
		b = append(b, '0', '.')
		for range int(-e) - len(digits) {
			b = append(b, '0')
		}
		b = append(b, digits...)
	}
	return b, true
}

// costSmall is Cost when every price it needs is non-negative with a small
// coefficient and every product and the sum fit a uint64. It returns the
// same coefficient and exponent the apd path does: terms are aligned to the
// smallest exponent among them and 0, the accumulator's.
func costSmall(terms *[4]costTerm) (Money, bool) {
	exp := int32(0)
	for i := range terms {
		t := &terms[i]
		if t.tokens == 0 || t.price.d.IsZero() {
			continue
		}
		if t.price.d.Negative {
			return Money{}, false
		}
		c, e, ok := t.price.small()
		if !ok {
			return Money{}, false
		}
		t.coeff, t.exp, t.used = c, e, true
		exp = min(exp, e)
	}
	var sum uint64
	for i := range terms {
		t := &terms[i]
		if !t.used {
			continue
		}
		shift := int(t.exp - exp)
		if shift >= len(pow10u) {
			return Money{}, false
		}
		hi, c := bits.Mul64(t.coeff, pow10u[shift])
		if hi != 0 {
			return Money{}, false
		}
		hi, p := bits.Mul64(c, uint64(t.tokens))
		if hi != 0 {
			return Money{}, false
		}
		var carry uint64
		if sum, carry = bits.Add64(sum, p, 0); carry != 0 {
			return Money{}, false
		}
	}
	if sum == 0 {
		return Money{}, true
	}
	var m Money
	m.d.Coeff.SetUint64(sum)
	m.d.Exponent = exp - tokensPerUnitExp
	return m, true
}

// costTerm is one token count and its price, for costSmall.
type costTerm struct {
	tokens int64
	price  *Money
	coeff  uint64
	exp    int32
	used   bool
}
