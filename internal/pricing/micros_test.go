package pricing

import "testing"

func TestCeilMicros(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"0.000001", 1, true},
		{"0.0000001", 1, true}, // a tenth of a micro-dollar is held as one
		{"0.0000039", 4, true},
		{"0.00000001", 1, true},      // however small, a positive amount holds a micro-dollar
		{"0.000000000001", 1, true},  // one token at a micro-dollar per million
		{"-0.000000000001", 0, true}, // towards +infinity
		{"1.5", 1_500_000, true},
		{"0.01", 10_000, true},
		{"-0.0000015", -1, true}, // towards +infinity
		{"9223372036854.775807", 9223372036854775807, true},
		{"9223372036854.775808", 0, false},
		{"300000000000", 300_000_000_000_000_000, true},
	}
	for _, tc := range tests {
		got, ok := MustMoney(tc.in).CeilMicros()
		if got != tc.want || ok != tc.ok {
			t.Errorf("CeilMicros(%s) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	m := MustMoney("0.0123456789")
	if n := testing.AllocsPerRun(100, func() { _, _ = m.CeilMicros() }); n != 0 {
		t.Errorf("CeilMicros allocates %v times", n)
	}
}
