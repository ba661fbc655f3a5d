package pricing

import "github.com/cockroachdb/apd/v3"

// Acc is a running exact sum that adds in place, for loops over millions
// of records where Money's copy-per-operation would dominate. The zero
// value is 0. An Acc is not safe for concurrent use.
type Acc struct {
	d Money
}

// Add adds m to a.
func (a *Acc) Add(m Money) { mustExact(exact.Add(&a.d.d, &a.d.d, &m.d)) }

// AddAcc adds b to a.
func (a *Acc) AddAcc(b *Acc) { mustExact(exact.Add(&a.d.d, &a.d.d, &b.d.d)) }

// Money returns the sum so far.
func (a *Acc) Money() Money {
	var m Money
	m.d.Set(&a.d.d)
	return m
}

// Cmp compares the sum with m.
func (a *Acc) Cmp(m Money) int { return a.d.d.Cmp(&m.d) }

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
