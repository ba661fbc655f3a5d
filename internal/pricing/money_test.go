package pricing

import (
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseMoneyString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"0", "0"},
		{"-0", "0"},
		{"0.000", "0"},
		{"1", "1"},
		{"1.50", "1.5"},
		{"100", "100"},
		{"1000000000000", "1000000000000"},
		{"0.000001", "0.000001"},
		{"0.000000000000000001", "0.000000000000000001"},
		{"-3.50", "-3.5"},
		{"007.10", "7.1"},
		{"123456789012345678901234567890.123456789012345678901234567890", "123456789012345678901234567890.12345678901234567890123456789"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			m, err := ParseMoney(tc.in)
			if err != nil {
				t.Fatalf("ParseMoney(%q) error: %v", tc.in, err)
			}
			if got := m.String(); got != tc.want {
				t.Errorf("ParseMoney(%q).String() = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseMoneyInvalid(t *testing.T) {
	for _, in := range []string{"", "-", ".", "1.", ".5", "1e3", "1E-2", "NaN", "Infinity", "+1", " 1", "1 ", "1,5", "0x10", "1.2.3", "--1"} {
		if m, err := ParseMoney(in); !errors.Is(err, ErrInvalidMoney) {
			t.Errorf("ParseMoney(%q) = %v, %v, want ErrInvalidMoney", in, m, err)
		}
	}
}

func TestMoneyArithmetic(t *testing.T) {
	a, b := MustMoney("0.1"), MustMoney("0.2")
	if got := a.Add(b); !got.Equal(MustMoney("0.3")) {
		t.Errorf("0.1+0.2 = %s, want 0.3", got)
	}
	if got := a.Sub(b); got.String() != "-0.1" {
		t.Errorf("0.1-0.2 = %s, want -0.1", got)
	}
	if got := MustMoney("0.000001").MulInt(3_000_000_000_000); got.String() != "3000000" {
		t.Errorf("0.000001*3e12 = %s, want 3000000", got)
	}
	if got := Sum(); !got.IsZero() || got.String() != "0" {
		t.Errorf("Sum() = %s, want 0", got)
	}
	if MustMoney("1.50").Cmp(MustMoney("1.5")) != 0 || MustMoney("2").Cmp(MustMoney("10")) != -1 {
		t.Error("Cmp does not compare by amount")
	}
}

// TestMoneyImmutable checks that large values (whose coefficient lives on
// the heap and is shared between copies) are never modified through a copy.
func TestMoneyImmutable(t *testing.T) {
	big1 := MustMoney("123456789012345678901234567890123456789012345678901234567890")
	cp := big1
	_ = cp.Add(MustMoney("1"))
	_ = Sum(cp, cp, cp)
	_ = cp.MulInt(7)
	_ = cp.String()
	if got := big1.String(); got != "123456789012345678901234567890123456789012345678901234567890" {
		t.Errorf("original changed to %s", got)
	}
	if got := Sum(big1, big1); got.String() != "246913578024691357802469135780246913578024691357802469135780" {
		t.Errorf("Sum(big, big) = %s", got)
	}
}

func TestMoneyJSON(t *testing.T) {
	type doc struct {
		M Money `json:"m"`
	}
	b, err := json.Marshal(doc{M: MustMoney("12.3400")})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"m":"12.34"}` {
		t.Errorf("json.Marshal = %s, want {\"m\":\"12.34\"}", b)
	}
	var d doc
	if err := json.Unmarshal([]byte(`{"m":"0.000000000000000000000001"}`), &d); err != nil {
		t.Fatal(err)
	}
	if d.M.String() != "0.000000000000000000000001" {
		t.Errorf("Unmarshal = %s", d.M)
	}
	if err := json.Unmarshal([]byte(`{"m":0.1}`), &d); !errors.Is(err, ErrInvalidMoney) {
		t.Errorf("Unmarshal of a JSON number: err = %v, want ErrInvalidMoney", err)
	}
}

func TestMoneyYAMLUnquotedIsExact(t *testing.T) {
	var v struct {
		M Money `yaml:"m"`
	}
	if err := yaml.Unmarshal([]byte("m: 0.1000000000000000000001\n"), &v); err != nil {
		t.Fatal(err)
	}
	if v.M.String() != "0.1000000000000000000001" {
		t.Errorf("yaml unquoted = %s, want 0.1000000000000000000001", v.M)
	}
}

func TestUnscaledRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "1.5", "-2.25", "98765432109876543210.0123456789", "0.000000000001"} {
		m := MustMoney(s)
		c, e := m.Unscaled()
		back := MoneyFromUnscaled(new(big.Int).Set(c), e)
		if !back.Equal(m) {
			t.Errorf("MoneyFromUnscaled(Unscaled(%s)) = %s", s, back)
		}
	}
}
