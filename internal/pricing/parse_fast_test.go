package pricing

import (
	"testing"
)

func TestParseMoneyBytesMatchesParseMoney(t *testing.T) {
	tests := []string{
		"0", "-0", "00", "1", "-1", "12.50", "0.000001", "-3.50", "-0.000", "1234567890123456789",
		"9999999999999999999", "18446744073709551615", "99999999999999999999", "0.0000000000000000000001",
		"123456789.987654321", "1000000000000", "007.10",
		"", "-", ".", "1.", ".5", "-.5", "+1", "1e5", "1.2.3", " 1", "1 ", "NaN", "inf", "--1", "1-", "0x10",
	}
	for _, s := range tests {
		want, wantErr := ParseMoney(s)
		got, err := ParseMoneyBytes([]byte(s))
		if (err != nil) != (wantErr != nil) {
			t.Errorf("ParseMoneyBytes(%q) error = %v, want %v", s, err, wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got.d.Cmp(&want.d) != 0 || got.d.Exponent != want.d.Exponent || got.d.Negative != want.d.Negative || got.String() != want.String() {
			t.Errorf("ParseMoneyBytes(%q) = %s (exp %d), want %s (exp %d)", s, got, got.d.Exponent, want, want.d.Exponent)
		}
	}
}

func TestParseMoneyBytesDoesNotAllocate(t *testing.T) {
	b := []byte("0.0123456789")
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseMoneyBytes(b) }); n != 0 {
		t.Errorf("ParseMoneyBytes allocs = %v, want 0", n)
	}
}

func FuzzParseMoneyBytes(f *testing.F) {
	for _, s := range []string{"0", "-0", "12.50", "1.", "99999999999999999999", "-0.0000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, wantErr := ParseMoney(s)
		got, err := ParseMoneyBytes([]byte(s))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("ParseMoneyBytes(%q) error = %v, want %v", s, err, wantErr)
		}
		if err == nil && (!got.Equal(want) || got.d.Exponent != want.d.Exponent || got.d.Negative != want.d.Negative) {
			t.Fatalf("ParseMoneyBytes(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkParseMoney(b *testing.B) {
	s := "0.0123456789"
	bs := []byte(s)
	b.Run("ParseMoney", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ParseMoney(s)
		}
	})
	b.Run("ParseMoneyBytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ParseMoneyBytes(bs)
		}
	})
}
