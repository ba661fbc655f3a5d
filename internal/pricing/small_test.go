package pricing

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/apd/v3"
)

// exactCeilMicros is CeilMicros in rational arithmetic; slowString and
// slowCost (Cost without costSmall) are the apd paths the fast paths must
// agree with.
func exactCeilMicros(m Money) (int64, bool) {
	r, ok := new(big.Rat).SetString(m.d.String())
	if !ok {
		panic(m.d.String())
	}
	r.Mul(r, big.NewRat(1_000_000, 1))
	q, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if rem.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

func slowString(m Money) string {
	if m.d.IsZero() {
		return "0"
	}
	var r apd.Decimal
	r.Reduce(&m.d)
	return string(r.Append(nil, 'f'))
}

func slowCost(p Price, u Usage) Money {
	terms := costTerms(&p, u)
	return costExact(&terms)
}

// randomMoney returns amounts around the edges of the fast paths: up to 20
// digits, exponents from -30 to 5, either sign.
func randomMoney(r *rand.Rand) Money {
	var digits []byte
	for range 1 + r.IntN(21) {
		digits = append(digits, byte('0'+r.IntN(10)))
	}
	if r.IntN(4) == 0 {
		digits = append(digits, "000"...)
	}
	var m Money
	if _, _, err := m.d.SetString(string(digits)); err != nil {
		panic(err)
	}
	m.d.Exponent = int32(r.IntN(36) - 30)
	m.d.Negative = r.IntN(5) == 0 && !m.d.IsZero()
	return m
}

func TestSmallPathsMatchApd(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		m := randomMoney(r)
		if got, want := m.String(), slowString(m); got != want {
			t.Fatalf("String(%s) = %s, want %s", m.d.String(), got, want)
		}
		gotN, gotOK := m.CeilMicros()
		wantN, wantOK := exactCeilMicros(m)
		if gotN != wantN || gotOK != wantOK {
			t.Fatalf("CeilMicros(%s) = %d, %v; want %d, %v", m.d.String(), gotN, gotOK, wantN, wantOK)
		}
	}
	tokens := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return r.Int64N(100_000)
		case 2:
			return r.Int64()
		}
		return r.Int64N(1<<40) - 1<<20
	}
	for range 100_000 {
		p := Price{Input: randomMoney(r), Output: randomMoney(r), CachedInput: randomMoney(r), CacheWrite: randomMoney(r)}
		u := Usage{InputTokens: tokens(), OutputTokens: tokens(), CachedTokens: tokens(), CacheWriteTokens: tokens()}
		got, want := Cost(p, u), slowCost(p, u)
		if got.d.Cmp(&want.d) != 0 || got.d.Exponent != want.d.Exponent || got.d.Negative != want.d.Negative {
			t.Fatalf("Cost(%+v, %+v) = %s, want %s", p, u, got.d.String(), want.d.String())
		}
	}
}

func TestSmallPathsEdges(t *testing.T) {
	for _, s := range []string{"0.000001", "0.0000005", "-0.0000005", "18446744073709551615", "0.18446744073709551615",
		"9223372036854.775807", "9223372036854.775808", "-9223372036854.775808", "100", "1000000000000", "0.1", "12.5",
		"0.00000001", "0.000000000001", "-0.000000000001", "123456789012345678901234.5", "0.000000000000000000000000000001"} {
		m := MustMoney(s)
		if got, want := m.String(), slowString(m); got != want {
			t.Errorf("String(%s) = %s, want %s", s, got, want)
		}
		gotN, gotOK := m.CeilMicros()
		wantN, wantOK := exactCeilMicros(m)
		if gotN != wantN || gotOK != wantOK {
			t.Errorf("CeilMicros(%s) = %d, %v; want %d, %v", s, gotN, gotOK, wantN, wantOK)
		}
	}
}

func BenchmarkMoney(b *testing.B) {
	p := Price{Input: MustMoney("0.15"), Output: MustMoney("0.60"), CachedInput: MustMoney("0.075"), CacheWrite: MustMoney("0.15")}
	u := Usage{InputTokens: 1234, OutputTokens: 16384}
	b.Run("Cost", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = Cost(p, u)
		}
	})
	c := Cost(p, u)
	b.Run("CeilMicros", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.CeilMicros()
		}
	})
	b.Run("AppendText", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64)
		for b.Loop() {
			buf, _ = c.AppendText(buf[:0])
		}
	})
}
