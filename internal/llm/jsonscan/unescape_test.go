package jsonscan

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzAppendUnescaped checks AppendUnescaped against encoding/json, on the
// strings encoding/json writes and on escapes written by hand.
func FuzzAppendUnescaped(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\/", "\x00\x1f<>&", "é🔑", "\u2028\u2029"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // encoding/json replaces invalid bytes
		}
		lit, _ := json.Marshal(s)
		got, ok := AppendUnescaped(nil, lit[1:len(lit)-1])
		if !ok || string(got) != s {
			t.Fatalf("AppendUnescaped(%s) = %q, %v; want %q", lit, got, ok, s)
		}
	})
}

func TestAppendUnescapedEscapes(t *testing.T) {
	for _, lit := range []string{`\ud83d\udd11`, `\ud83d`, `\ud83dx`, `\udd11\ud83d`, `\u00e9\n\t\b\f\r\/`} {
		var want string
		if err := json.Unmarshal([]byte(`"`+lit+`"`), &want); err != nil {
			t.Fatal(err)
		}
		if got, ok := AppendUnescaped(nil, []byte(lit)); !ok || string(got) != want {
			t.Errorf("AppendUnescaped(%s) = %q, %v; want %q", lit, got, ok, want)
		}
	}
	for _, bad := range []string{`\`, `\x`, `\u12`, `\u12g4`} {
		if _, ok := AppendUnescaped(nil, []byte(bad)); ok {
			t.Errorf("AppendUnescaped(%s) ok, want a malformed escape", bad)
		}
	}
}
