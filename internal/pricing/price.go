package pricing

import (
	"time"
)

// Price is what a model costs during a period, in USD per one million
// tokens. It is a plain value, safe to copy.
type Price struct {
	// Input prices prompt tokens that were neither read from nor written to
	// a prompt cache.
	Input Money `json:"input"`
	// Output prices completion tokens, reasoning tokens included.
	Output Money `json:"output"`
	// CachedInput prices prompt tokens read from the provider's cache.
	CachedInput Money `json:"cached_input"`
	// CacheWrite prices prompt tokens written to the provider's cache
	// (Anthropic's cache_creation_input_tokens).
	CacheWrite Money `json:"cache_write"`
	// From is when the price takes effect; the zero time means "always".
	From time.Time `json:"from"`
}

// Usage counts the tokens of one upstream exchange.
//
// InputTokens is the whole prompt, as in OpenAI's usage (prompt_tokens):
// it INCLUDES CachedTokens and CacheWriteTokens. Adapters for providers
// that report them separately (Anthropic's input_tokens excludes cache
// reads and writes) add them up. Likewise OutputTokens includes
// ReasoningTokens, which is informational and never priced separately.
type Usage struct {
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CachedTokens     int64 `json:"cached_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens"`
	ReasoningTokens  int64 `json:"reasoning_tokens"`
}

// tokensPerUnit is the number of tokens a Price is quoted for, as a power
// of ten: prices are per 10^6 tokens.
const tokensPerUnitExp = 6

// Cost returns what u costs at p, exactly:
//
//	(uncached*Input + CachedTokens*CachedInput + CacheWriteTokens*CacheWrite
//	 + OutputTokens*Output) / 10^6
//
// where uncached = InputTokens - CachedTokens - CacheWriteTokens. Negative
// counts are taken as 0, and if the cached and cache-write counts exceed
// InputTokens (an inconsistent report) uncached is 0 rather than negative:
// a cost is never negative and every reported token is priced once.
func Cost(p Price, u Usage) Money {
	terms := costTerms(&p, u)
	if m, ok := costSmall(&terms); ok {
		return m
	}
	return costExact(&terms)
}

// costTerms splits u into the token counts each price of p applies to.
func costTerms(p *Price, u Usage) [4]costTerm {
	in := nonNeg(u.InputTokens)
	cached := nonNeg(u.CachedTokens)
	written := nonNeg(u.CacheWriteTokens)
	uncached := in - cached - written
	if uncached < 0 || cached > in || written > in { // also guards overflow
		uncached = 0
	}
	return [4]costTerm{
		{tokens: uncached, price: &p.Input},
		{tokens: cached, price: &p.CachedInput},
		{tokens: written, price: &p.CacheWrite},
		{tokens: nonNeg(u.OutputTokens), price: &p.Output},
	}
}

// costExact is Cost in apd arithmetic, for any prices and counts.
func costExact(terms *[4]costTerm) Money {
	var acc, term, n Money // all owned here: in-place arithmetic is safe
	for _, t := range terms {
		if t.tokens == 0 || t.price.d.IsZero() {
			continue
		}
		n.d.SetInt64(t.tokens)
		mustExact(exact.Mul(&term.d, &n.d, &t.price.d))
		mustExact(exact.Add(&acc.d, &acc.d, &term.d))
	}
	if acc.d.IsZero() {
		return Money{}
	}
	acc.d.Exponent -= tokensPerUnitExp // divide by 10^6: exact in decimal
	return acc
}

func nonNeg(n int64) int64 {
	if n < 0 {
		return 0
	}
	return n
}
