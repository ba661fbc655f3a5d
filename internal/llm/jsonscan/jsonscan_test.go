package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEachMember(t *testing.T) {
	body := []byte(" {\n \"a\" : 1, \"n\\u0061me\":\"x\\\"y\", \"o\": {\"a\": [1, {\"b\": \"}\"}]}, \"z\" : null }")
	var got []string
	err := EachMember(body, SkipSpace(body, 0), func(key []byte, vs, ve int) error {
		got = append(got, string(key)+"="+string(body[vs:ve]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `a=1|n\u0061me="x\"y"|o={"a": [1, {"b": "}"}]}|z=null`
	if strings.Join(got, "|") != want {
		t.Errorf("members = %q, want %q", strings.Join(got, "|"), want)
	}
	if !KeyIs([]byte(`n\u0061me`), "name") || KeyIs([]byte("nam"), "name") {
		t.Error("KeyIs does not decode escapes or matches a prefix")
	}
	if s := StringValue([]byte(`"x\"y"`)); s != `x"y` {
		t.Errorf("StringValue = %q", s)
	}
}

// FuzzEachMember: every member's value span of a valid object decodes on
// its own, and no input panics.
func FuzzEachMember(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, ` {"a" : [ {"b":"}"} ], "c":"\u00e9"} `, `{"a":{"b":{"c":[]}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		i := SkipSpace(b, 0)
		if b[i] != '{' {
			return
		}
		_ = EachMember(b, i, func(_ []byte, vs, ve int) error {
			if !json.Valid(b[vs:ve]) {
				t.Fatalf("value span %q of %q is not JSON", b[vs:ve], b)
			}
			return nil
		})
	})
}
