package pricing

import (
	"math/big"
	"math/bits"

	"github.com/cockroachdb/apd/v3"
)

// Acc is a running exact sum that adds in place, for loops over millions
// of records where Money's copy-per-operation would dominate. The zero
// value is 0. An Acc is not safe for concurrent use.
//
// Amounts with at most 18 decimals whose value in atto-dollars (10^-18)
// fits in 127 bits — every price, cost and discount in practice — are
// added as 128-bit integers; any other amount goes to an exact apd sum
// kept beside. Either way the sum is exact.
type Acc struct {
	lo, hi uint64 // the fast part: a two's complement int128 of atto-dollars
	slow   apd.Decimal
	isSlow bool // slow holds something
}

// attoExp is the fast part's exponent.
const attoExp = 18

var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// attos returns d in atto-dollars as an int128, when it fits.
func attos(d *apd.Decimal) (lo, hi uint64, ok bool) {
	if d.Form != apd.Finite || !d.Coeff.IsUint64() {
		return 0, 0, false
	}
	shift := int(d.Exponent) + attoExp
	if shift < 0 || shift >= len(pow10) {
		return 0, 0, false
	}
	hi, lo = bits.Mul64(d.Coeff.Uint64(), pow10[shift])
	if hi >= 1<<62 { // keep headroom so that sums of such values cannot wrap
		return 0, 0, false
	}
	if d.Negative {
		lo, hi = neg128(lo, hi)
	}
	return lo, hi, true
}

func neg128(lo, hi uint64) (uint64, uint64) {
	lo, c := bits.Add64(^lo, 1, 0)
	return lo, ^hi + c
}

// Add adds m to a.
func (a *Acc) Add(m Money) {
	if lo, hi, ok := attos(&m.d); ok {
		sumLo, c := bits.Add64(a.lo, lo, 0)
		sumHi := a.hi + hi + c
		// Signed overflow: both operands of one sign, the sum of the other.
		if int64(a.hi^hi) < 0 || int64(a.hi^sumHi) >= 0 {
			a.lo, a.hi = sumLo, sumHi
			return
		}
		a.spill()
	}
	mustExact(exact.Add(&a.slow, &a.slow, &m.d))
	a.isSlow = true
}

// spill moves the fast part into the slow one.
func (a *Acc) spill() {
	fast := Acc{lo: a.lo, hi: a.hi}
	m := fast.Money()
	mustExact(exact.Add(&a.slow, &a.slow, &m.d))
	a.lo, a.hi, a.isSlow = 0, 0, true
}

// AddAcc adds b to a.
func (a *Acc) AddAcc(b *Acc) { a.Add(b.Money()) }

// Money returns the sum so far.
func (a *Acc) Money() Money {
	var m Money
	lo, hi := a.lo, a.hi
	neg := int64(hi) < 0
	if neg {
		lo, hi = neg128(lo, hi)
	}
	if hi == 0 {
		m.d.Coeff.SetUint64(lo)
	} else {
		x := new(big.Int).SetUint64(hi)
		x.Lsh(x, 64)
		x.Or(x, new(big.Int).SetUint64(lo))
		m.d.Coeff.SetMathBigInt(x)
	}
	m.d.Exponent, m.d.Negative = -attoExp, neg && (lo != 0 || hi != 0)
	if a.isSlow {
		mustExact(exact.Add(&m.d, &m.d, &a.slow))
	}
	if m.d.IsZero() {
		m.d.Negative = false
	}
	return m
}

// Cmp compares the sum with m.
func (a *Acc) Cmp(m Money) int {
	if !a.isSlow {
		if lo, hi, ok := attos(&m.d); ok {
			switch {
			case int64(a.hi) != int64(hi):
				if int64(a.hi) < int64(hi) {
					return -1
				}
				return 1
			case a.lo != lo:
				if a.lo < lo {
					return -1
				}
				return 1
			}
			return 0
		}
	}
	s := a.Money()
	return s.d.Cmp(&m.d)
}

// Mul returns m*o, exactly (a rate times an amount).
func (m Money) Mul(o Money) Money {
	var r Money
	mustExact(exact.Mul(&r.d, &m.d, &o.d))
	return r
}

// Min returns the smaller of m and o.
func Min(m, o Money) Money {
	if m.Cmp(o) <= 0 {
		return m
	}
	return o
}

// Max returns the larger of m and o.
func Max(m, o Money) Money {
	if m.Cmp(o) >= 0 {
		return m
	}
	return o
}

// MulDiv returns m*num/den rounded half-even to places decimal places: the
// one rounded operation, for schedules and projections (pro-rata shares of
// a window) that a finite decimal cannot hold exactly. den must be > 0.
func (m Money) MulDiv(num, den int64, places int32) Money {
	var r, n, d Money
	n.d.SetInt64(num)
	d.d.SetInt64(den)
	mustExact(exact.Mul(&r.d, &m.d, &n.d))
	ctx := apd.BaseContext.WithPrecision(200)
	ctx.Rounding = apd.RoundHalfEven
	if _, err := ctx.Quo(&r.d, &r.d, &d.d); err != nil {
		panic(err)
	}
	if _, err := ctx.Quantize(&r.d, &r.d, -places); err != nil {
		panic(err)
	}
	if r.d.IsZero() {
		r.d.Negative = false
	}
	return r
}

// Float returns m as a float64, for scores and gauges only (never for
// money arithmetic).
func (m Money) Float() float64 {
	f, _ := m.d.Float64()
	return f
}
