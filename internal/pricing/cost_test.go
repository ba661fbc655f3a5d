package pricing

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestCost(t *testing.T) {
	gpt4o := Price{Input: MustMoney("2.50"), CachedInput: MustMoney("1.25"), Output: MustMoney("10"), CacheWrite: MustMoney("2.50")}
	sonnet := Price{Input: MustMoney("3"), CachedInput: MustMoney("0.30"), CacheWrite: MustMoney("3.75"), Output: MustMoney("15")}
	tiny := Price{Input: MustMoney("0.000001"), Output: MustMoney("0.000001"), CachedInput: MustMoney("0.000001"), CacheWrite: MustMoney("0.000001")}
	tests := []struct {
		name  string
		price Price
		usage Usage
		want  string
	}{
		{"zero", gpt4o, Usage{}, "0"},
		{"plain", gpt4o, Usage{InputTokens: 1000, OutputTokens: 500}, "0.0075"},
		// 1000 input of which 400 cached: 600*2.5 + 400*1.25 + 200*10 = 1500+500+2000 = 4000 / 1e6
		{"cached", gpt4o, Usage{InputTokens: 1000, CachedTokens: 400, OutputTokens: 200}, "0.004"},
		// reasoning tokens are inside output tokens; not priced twice
		{"reasoning", gpt4o, Usage{InputTokens: 10, OutputTokens: 100, ReasoningTokens: 80}, "0.001025"},
		// 100 uncached*3 + 1000 read*0.3 + 2000 write*3.75 + 50 out*15 = 300+300+7500+750 = 8850
		{"cache write", sonnet, Usage{InputTokens: 3100, CachedTokens: 1000, CacheWriteTokens: 2000, OutputTokens: 50}, "0.00885"},
		{"one token at a micro-micro-dollar", tiny, Usage{InputTokens: 1}, "0.000000000001"},
		{"trillions of dollars", Price{Input: MustMoney("75"), Output: MustMoney("75")}, Usage{InputTokens: 900_000_000_000_000_000, OutputTokens: 1}, "67500000000000.000075"},
		{"max int64 tokens", Price{Output: MustMoney("0.000001")}, Usage{OutputTokens: 1<<63 - 1}, "9223372.036854775807"},
		{"negative counts are zero", gpt4o, Usage{InputTokens: -5, OutputTokens: -1}, "0"},
		// cached > input: uncached is 0, cached still priced
		{"inconsistent cached", gpt4o, Usage{InputTokens: 10, CachedTokens: 20}, "0.000025"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Cost(tc.price, tc.usage); got.String() != tc.want {
				t.Errorf("Cost(%+v) = %s, want %s", tc.usage, got, tc.want)
			}
		})
	}
}

// TestCostSumsReconcile prices many random usages and checks the sum of
// the costs against the same sum computed independently with big.Rat.
func TestCostSumsReconcile(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	prices := []Price{
		{Input: MustMoney("2.50"), CachedInput: MustMoney("1.25"), Output: MustMoney("10"), CacheWrite: MustMoney("2.5")},
		{Input: MustMoney("0.000001"), CachedInput: MustMoney("0.0000001"), Output: MustMoney("0.0000003"), CacheWrite: MustMoney("0.00000125")},
		{Input: MustMoney("15"), CachedInput: MustMoney("1.50"), Output: MustMoney("75"), CacheWrite: MustMoney("18.75")},
		{Input: MustMoney("0.275"), CachedInput: MustMoney("0.0275"), Output: MustMoney("4.40"), CacheWrite: MustMoney("0.275")},
	}
	rat := func(m Money) *big.Rat { r, _ := new(big.Rat).SetString(m.String()); return r }
	var costs []Money
	want := new(big.Rat)
	for i := 0; i < 20000; i++ {
		p := prices[r.IntN(len(prices))]
		in := r.Int64N(1 << 40)
		cached := r.Int64N(in + 1)
		written := r.Int64N(in - cached + 1)
		u := Usage{InputTokens: in, CachedTokens: cached, CacheWriteTokens: written, OutputTokens: r.Int64N(1 << 40)}
		costs = append(costs, Cost(p, u))
		term := new(big.Rat).Mul(big.NewRat(in-cached-written, 1_000_000), rat(p.Input))
		term.Add(term, new(big.Rat).Mul(big.NewRat(cached, 1_000_000), rat(p.CachedInput)))
		term.Add(term, new(big.Rat).Mul(big.NewRat(written, 1_000_000), rat(p.CacheWrite)))
		term.Add(term, new(big.Rat).Mul(big.NewRat(u.OutputTokens, 1_000_000), rat(p.Output)))
		want.Add(want, term)
	}
	got := Sum(costs...)
	if rat(got).Cmp(want) != 0 {
		t.Errorf("sum of %d costs = %s, want %s", len(costs), got, want.FloatString(30))
	}
}

func BenchmarkCost(b *testing.B) {
	p := Price{Input: MustMoney("2.50"), CachedInput: MustMoney("1.25"), Output: MustMoney("10"), CacheWrite: MustMoney("2.5")}
	u := Usage{InputTokens: 12345, CachedTokens: 1024, OutputTokens: 678}
	b.ReportAllocs()
	for b.Loop() {
		_ = Cost(p, u)
	}
}
