package bedrock

import (
	"unicode/utf8"
	"unsafe"

	"github.com/multipolar/multipolar/internal/llm/jsonscan"
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
	scratch, ok = jsonscan.AppendUnescaped(scratch, raw)
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

// bytesString returns b as a string without copying. The string aliases
// b: it is valid only while b is not modified, which llm.Event allows
// (strings are valid until the next Next).
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
