package bedrock

import (
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// deltaKind is what a contentBlockDelta carries.
type deltaKind uint8

const (
	deltaText deltaKind = iota + 1
	deltaToolInput
)

// parseDelta reads the common contentBlockDelta payloads without
// allocating, in the exact form Bedrock's serializer writes them (keys
// sorted, compact):
//
//	{"contentBlockIndex":N,"delta":{"text":"…"},"p":"…"}
//	{"contentBlockIndex":N,"delta":{"toolUse":{"input":"…"}},"p":"…"}
//
// The string is unescaped into scratch (or aliases payload when it has no
// escapes). Anything else — reasoning, other key orders, whitespace, odd
// escapes — returns ok false and is decoded by encoding/json instead.
func parseDelta(payload, scratch []byte) (idx int, kind deltaKind, text string, newScratch []byte, ok bool) {
	const prefix = `{"contentBlockIndex":`
	b, ok := cutPrefix(payload, prefix)
	if !ok {
		return 0, 0, "", scratch, false
	}
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' && n < 6 {
		idx = idx*10 + int(b[n]-'0')
		n++
	}
	if n == 0 || (n > 1 && b[0] == '0') {
		return 0, 0, "", scratch, false
	}
	b = b[n:]
	closing := `"}`
	if b, ok = cutPrefix(b, `,"delta":{"text":"`); ok {
		kind = deltaText
	} else if b, ok = cutPrefix(b, `,"delta":{"toolUse":{"input":"`); ok {
		kind, closing = deltaToolInput, `"}}`
	} else {
		return 0, 0, "", scratch, false
	}
	// Find the closing quote, noting escapes.
	end, escaped := 0, false
	for ; end < len(b); end++ {
		c := b[end]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return 0, 0, "", scratch, false
		}
		if c == '\\' {
			escaped = true
			end++
		}
	}
	if end >= len(b) {
		return 0, 0, "", scratch, false
	}
	raw := b[:end]
	if !utf8.Valid(raw) {
		// encoding/json replaces invalid bytes with U+FFFD; let it.
		return 0, 0, "", scratch, false
	}
	rest, ok := cutPrefix(b[end:], closing)
	if !ok || !validTail(rest) {
		return 0, 0, "", scratch, false
	}
	if !escaped {
		return idx, kind, bytesString(raw), scratch, true
	}
	start := len(scratch)
	scratch, ok = appendUnescaped(scratch, raw)
	if !ok {
		return 0, 0, "", scratch[:start], false
	}
	return idx, kind, bytesString(scratch[start:]), scratch, true
}

// validTail accepts the end of a delta payload: "}" or `,"p":"<padding>"}`.
func validTail(b []byte) bool {
	if len(b) == 1 && b[0] == '}' {
		return true
	}
	b, ok := cutPrefix(b, `,"p":"`)
	if !ok || len(b) < 2 || string(b[len(b)-2:]) != `"}` {
		return false
	}
	for _, c := range b[:len(b)-2] {
		if c == '"' || c == '\\' || c < 0x20 {
			return false
		}
	}
	return true
}

func cutPrefix(b []byte, prefix string) ([]byte, bool) {
	if len(b) < len(prefix) || string(b[:len(prefix)]) != prefix {
		return b, false
	}
	return b[len(prefix):], true
}

// appendUnescaped appends the JSON string body raw (no quotes), unescaped,
// to dst. ok is false for an invalid escape.
func appendUnescaped(dst, raw []byte) ([]byte, bool) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(raw) {
			return dst, false
		}
		switch raw[i] {
		case '"', '\\', '/':
			dst = append(dst, raw[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw[i+1:])
			if !ok {
				return dst, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(0), false
				if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2, ok2 = hex4(raw[i+3:])
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, false
		}
	}
	return dst, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// bytesString returns b as a string without copying. The string aliases
// b: it is valid only while b is not modified, which llm.Event allows
// (strings are valid until the next Next).
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
