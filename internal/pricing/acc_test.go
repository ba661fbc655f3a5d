package pricing

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestAccExact: the fast and the slow parts together always equal Sum, for
// amounts of every size and sign, compared both ways.
func TestAccExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	amount := func() Money {
		var s string
		switch rng.IntN(6) {
		case 0: // ordinary cost
			s = fmt.Sprintf("%d.%06d", rng.IntN(10), rng.IntN(1_000_000))
		case 1: // a discount: rate × cost, many decimals
			s = fmt.Sprintf("0.%018d", rng.Int64N(1e18))
		case 2: // below the atto-dollar: the slow part
			s = fmt.Sprintf("0.%025d", rng.Int64N(1e18))
		case 3: // trillions
			s = fmt.Sprintf("%d%012d.5", rng.IntN(1000), rng.Int64N(1e12))
		case 4: // a huge coefficient: the slow part
			s = fmt.Sprintf("%d%020d", 1+rng.IntN(9), rng.Int64N(1e18))
		default:
			s = "0"
		}
		if rng.IntN(3) == 0 {
			s = "-" + s
		}
		return MustMoney(s)
	}
	for run := range 200 {
		var acc Acc
		var all []Money
		for range 1 + rng.IntN(50) {
			m := amount()
			acc.Add(m)
			all = append(all, m)
			want := Sum(all...)
			if got := acc.Money(); !got.Equal(want) {
				t.Fatalf("run %d: Acc = %s, Sum = %s (added %v)", run, got, want, all)
			}
			probe := amount()
			if got, want := acc.Cmp(probe), want.Cmp(probe); got != want {
				t.Fatalf("run %d: Cmp(%s) with sum %s = %d, want %d", run, probe, acc.Money(), got, want)
			}
			if acc.Cmp(want) != 0 {
				t.Fatalf("run %d: Cmp with its own sum %s != 0", run, want)
			}
		}
		if s := acc.Money().String(); s != Sum(all...).String() {
			t.Fatalf("canonical form %q, want %q", s, Sum(all...).String())
		}
	}
	// Near the fast part's limit the sum spills into the slow part, exactly.
	big := MustMoney("40000000000000000000") // 4e19 USD: 4e37 atto-dollars, under 2^126
	var acc Acc
	var all []Money
	for range 6 {
		acc.Add(big)
		all = append(all, big)
	}
	if got, want := acc.Money(), Sum(all...); !got.Equal(want) {
		t.Errorf("sum past 2^127 atto-dollars = %s, want %s", got, want)
	}
	var zero Acc
	if zero.Money().String() != "0" || zero.Cmp(Money{}) != 0 {
		t.Error("zero Acc is not 0")
	}
}

func BenchmarkAccAdd(b *testing.B) {
	m := MustMoney("0.002814")
	var acc Acc
	b.ReportAllocs()
	for b.Loop() {
		acc.Add(m)
	}
}
