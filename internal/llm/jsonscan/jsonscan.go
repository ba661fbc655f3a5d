// Package jsonscan walks JSON text without decoding it: the gateway reads a
// request's top-level fields (model, stream, max_tokens…) and forwards the
// client's bytes untouched. Every function expects valid JSON (check with
// json.Valid first) and does not allocate, except to decode escapes.
package jsonscan

import "encoding/json"

// EachMember calls fn for each member of the object starting at body[i]
// ('{'), with the raw key (quotes stripped, escapes kept) and the value's
// span. body must be valid JSON.
func EachMember(body []byte, i int, fn func(key []byte, vs, ve int) error) error {
	i = SkipSpace(body, i+1)
	if body[i] == '}' {
		return nil
	}
	for {
		ks := i
		ke := SkipString(body, ks)
		i = SkipSpace(body, ke)
		i = SkipSpace(body, i+1) // ':'
		vs := i
		ve := SkipValue(body, vs)
		if err := fn(body[ks+1:ke-1], vs, ve); err != nil {
			return err
		}
		i = SkipSpace(body, ve)
		if body[i] == '}' {
			return nil
		}
		i = SkipSpace(body, i+1) // ','
	}
}

// KeyIs reports whether the raw key equals name. A key written with escape
// sequences is decoded first.
func KeyIs(raw []byte, name string) bool {
	for _, c := range raw {
		if c == '\\' {
			var k string
			quoted := make([]byte, 0, len(raw)+2)
			quoted = append(append(append(quoted, '"'), raw...), '"')
			if json.Unmarshal(quoted, &k) != nil {
				return false
			}
			return k == name
		}
	}
	return string(raw) == name
}

// StringValue decodes a JSON string token (quotes included).
func StringValue(tok []byte) string {
	for _, c := range tok {
		if c == '\\' {
			var s string
			_ = json.Unmarshal(tok, &s) // tok is a valid string token
			return s
		}
	}
	return string(tok[1 : len(tok)-1])
}

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// SkipString returns the index just past the string token at b[i] ('"').
func SkipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// SkipValue returns the index just past the value starting at b[i].
func SkipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = SkipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	default: // number, true, false, null
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		return i
	}
}
