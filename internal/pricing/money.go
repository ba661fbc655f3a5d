package pricing

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/cockroachdb/apd/v3"
)

// Money is an exact decimal amount of US dollars. The zero value is 0.
//
// Money is immutable: every method returns a new value and never modifies
// its receiver or arguments, so values may be copied and shared freely
// between goroutines. (apd.Decimal shares the heap coefficient of large
// values between copies; Money never writes into a copy, which is what
// makes copying safe.)
type Money struct {
	d apd.Decimal
}

// exact is the arithmetic context for Money. Precision 0 disables
// rounding for addition, subtraction and multiplication, so results keep
// every digit; Inexact and Rounded are trapped as a second line of
// defence, turning any rounding into an error instead of a silent loss.
var exact = apd.Context{
	Precision:   0,
	MaxExponent: apd.MaxExponent,
	MinExponent: apd.MinExponent,
	Traps:       apd.DefaultTraps | apd.Inexact | apd.Rounded,
}

// maxMoneyLen bounds the length of a parsed decimal string, so hostile
// input cannot make the parser build enormous coefficients.
const maxMoneyLen = 400

// ErrInvalidMoney reports a string that is not a plain decimal number.
var ErrInvalidMoney = errors.New("invalid money amount")

// ParseMoney parses a plain decimal string: an optional '-', digits, and an
// optional fraction ("12", "0.000001", "-3.50"). Exponents, NaN, infinities,
// '+' signs and surrounding spaces are rejected. The value is kept exactly.
func ParseMoney(s string) (Money, error) {
	if !plainDecimal(s) {
		return Money{}, fmt.Errorf("parse money %q: %w", truncate(s), ErrInvalidMoney)
	}
	var m Money
	if _, _, err := m.d.SetString(s); err != nil {
		return Money{}, fmt.Errorf("parse money %q: %w", truncate(s), err)
	}
	if m.d.IsZero() {
		m.d.Negative = false // "-0" is 0
	}
	return m, nil
}

// MustMoney is ParseMoney for constants; it panics on invalid input.
func MustMoney(s string) Money {
	m, err := ParseMoney(s)
	if err != nil {
		panic(err)
	}
	return m
}

// MoneyFromInt returns the whole number of dollars n.
func MoneyFromInt(n int64) Money {
	var m Money
	m.d.SetInt64(n)
	return m
}

func plainDecimal(s string) bool {
	if len(s) == 0 || len(s) > maxMoneyLen {
		return false
	}
	i := 0
	if s[0] == '-' {
		i++
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0:
			dot = true
			if i == len(s)-1 {
				return false
			}
		default:
			return false
		}
	}
	return digits > 0
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Add returns m+o, exactly.
func (m Money) Add(o Money) Money {
	var r Money
	mustExact(exact.Add(&r.d, &m.d, &o.d))
	return r
}

// Sub returns m-o, exactly.
func (m Money) Sub(o Money) Money {
	var r Money
	mustExact(exact.Sub(&r.d, &m.d, &o.d))
	return r
}

// MulInt returns m*n, exactly.
func (m Money) MulInt(n int64) Money {
	var r, f Money
	f.d.SetInt64(n)
	mustExact(exact.Mul(&r.d, &m.d, &f.d))
	return r
}

// Sum returns the exact sum of ms; it is 0 for none.
func Sum(ms ...Money) Money {
	var acc Money // owned here, so adding in place is safe
	for i := range ms {
		mustExact(exact.Add(&acc.d, &acc.d, &ms[i].d))
	}
	return acc
}

// mustExact panics if a Money operation failed. With Precision 0 and the
// package's exponent limits, addition and multiplication cannot round or
// overflow for any value a parser or Cost can produce (exponents stay
// within a few hundred of zero), so a failure is a programming error.
func mustExact(_ apd.Condition, err error) {
	if err != nil {
		panic(fmt.Sprintf("pricing: inexact money arithmetic: %v", err))
	}
}

// Cmp compares m and o and returns -1, 0 or +1. Values compare by
// amount: 1.50 equals 1.5.
func (m Money) Cmp(o Money) int { return m.d.Cmp(&o.d) }

// Equal reports whether m and o are the same amount. It lets go-cmp compare
// values holding Money.
func (m Money) Equal(o Money) bool { return m.d.Cmp(&o.d) == 0 }

// IsZero reports whether m is 0.
func (m Money) IsZero() bool { return m.d.IsZero() }

// Sign returns -1, 0 or +1 by the sign of m.
func (m Money) Sign() int { return m.d.Sign() }

// String returns the canonical decimal form: no exponent, no trailing
// fractional zeros, no trailing '.', at least "0", and '-' only for
// negative amounts ("12.5", "0.000001", "1000000000000").
func (m Money) String() string {
	b, _ := m.AppendText(nil)
	return string(b)
}

// AppendText appends the canonical form of m (see String) to b.
func (m Money) AppendText(b []byte) ([]byte, error) {
	if m.d.IsZero() {
		return append(b, '0'), nil
	}
	if out, ok := m.appendSmall(b); ok {
		return out, nil
	}
	var r apd.Decimal
	r.Reduce(&m.d)
	return r.Append(b, 'f'), nil
}

// MarshalText implements encoding.TextMarshaler with the canonical form.
func (m Money) MarshalText() ([]byte, error) { return m.AppendText(nil) }

// UnmarshalText implements encoding.TextUnmarshaler with ParseMoney. YAML
// decoders hand it the scalar's source text, so an unquoted 0.1 in YAML is
// still read exactly.
func (m *Money) UnmarshalText(b []byte) error {
	v, err := ParseMoney(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MarshalJSON writes m as a JSON string holding its canonical form.
func (m Money) MarshalJSON() ([]byte, error) {
	b := []byte{'"'}
	b, _ = m.AppendText(b)
	return append(b, '"'), nil
}

// UnmarshalJSON reads a JSON string holding a plain decimal. JSON numbers
// are refused so that no client can be misled into sending floats; null
// leaves m unchanged, as encoding/json expects.
func (m *Money) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("parse money %s: want a JSON string: %w", truncate(string(b)), ErrInvalidMoney)
	}
	return m.UnmarshalText(b[1 : len(b)-1])
}

// Unscaled returns the integer coefficient and the exponent of m, so that
// m = coeff * 10^exp. It is for database drivers that store decimals in
// their own representation; the result is a new big.Int owned by the caller.
func (m Money) Unscaled() (coeff *big.Int, exp int32) {
	c := m.d.Coeff.MathBigInt()
	if m.d.Negative {
		c.Neg(c)
	}
	return c, m.d.Exponent
}

// MoneyFromUnscaled returns coeff * 10^exp, the inverse of Unscaled.
func MoneyFromUnscaled(coeff *big.Int, exp int32) Money {
	var m Money
	var bi apd.BigInt
	bi.SetMathBigInt(coeff)
	m.d.Coeff.Abs(&bi)
	m.d.Exponent = exp
	m.d.Negative = coeff.Sign() < 0
	return m
}

// CeilMicros returns m in whole micro-dollars (1e-6), rounded up, and false
// when that does not fit an int64. Budget holds use it: rounding up keeps a
// hard limit conservative. It does not allocate for amounts of ordinary size.
func (m Money) CeilMicros() (int64, bool) {
	if n, ok := m.ceilMicrosSmall(); ok {
		return n, true
	}
	// A coefficient beyond 64 bits: the same arithmetic on big integers.
	// Not apd's Quantize with RoundCeiling: it rounds amounts below 10^-7
	// down to 0.
	c := m.d.Coeff.MathBigInt()
	var q big.Int
	if k := int64(m.d.Exponent) + 6; k >= 0 {
		if k > 19 {
			return 0, false // a non-zero coefficient times 10^20 micro-dollars
		}
		q.Mul(c, new(big.Int).Exp(big.NewInt(10), big.NewInt(k), nil))
	} else {
		var r big.Int
		q.QuoRem(c, new(big.Int).Exp(big.NewInt(10), big.NewInt(-k), nil), &r)
		if r.Sign() != 0 && !m.d.Negative {
			q.Add(&q, big.NewInt(1))
		}
	}
	if m.d.Negative {
		q.Neg(&q)
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}
