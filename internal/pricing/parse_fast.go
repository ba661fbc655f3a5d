package pricing

import "github.com/cockroachdb/apd/v3"

// maxFastDigits is the most digits whose value always fits a uint64:
// 10^19-1 < 2^64.
const maxFastDigits = 19

// ParseMoneyBytes is ParseMoney for a byte slice, for store scans that
// read amounts from a reused buffer. It accepts and rejects exactly what
// ParseMoney does and returns the same value, but amounts of up to 19
// digits, which is every price and nearly every cost, are parsed without
// allocating. It does not retain b.
func ParseMoneyBytes(b []byte) (Money, error) {
	if m, ok := parseSmallMoney(b); ok {
		return m, nil
	}
	return ParseMoney(string(b))
}

// parseSmallMoney parses a plain decimal of at most maxFastDigits digits.
// It reports false for anything else, valid or not, leaving the verdict to
// ParseMoney.
func parseSmallMoney(b []byte) (Money, bool) {
	i := 0
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		i++
	}
	var coeff uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c >= '0' && c <= '9':
			coeff = coeff*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot && digits > 0:
			dot = true
		default:
			return Money{}, false
		}
	}
	if digits == 0 || digits > maxFastDigits || (dot && frac == 0) {
		return Money{}, false
	}
	var m Money
	m.d.Form = apd.Finite
	m.d.Coeff.SetUint64(coeff)
	m.d.Exponent = int32(-frac)
	m.d.Negative = neg && coeff != 0 // "-0" is 0, as in ParseMoney
	return m, true
}
