package fakeupstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The wire bodies are built from ordered objects rather than structs or maps
// so one construction serves both flavors: OpenAI keeps its own key order,
// Azure sorts keys (its frontend re-serialises bodies that way).

// field is one key of an object.
type field struct {
	key string
	val any
}

// object is a JSON object whose keys keep their order.
type object []field

// number is a JSON number written verbatim.
type number string

// compactJSON encodes v without whitespace. It supports object, []any,
// []object, string, int, bool, number and nil.
func compactJSON(v any) []byte {
	var b bytes.Buffer
	encodeValue(&b, v)
	return b.Bytes()
}

// indentJSON encodes v indented by indent, with a trailing newline, as
// api.openai.com does for non-streamed bodies.
func indentJSON(v any, indent string) []byte {
	var out bytes.Buffer
	if err := json.Indent(&out, compactJSON(v), "", indent); err != nil {
		// encodeValue only emits valid JSON; this is a programming error.
		panic("fakeupstream: indent: " + err.Error())
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func encodeValue(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case object:
		b.WriteByte('{')
		for i, f := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeString(b, f.key)
			b.WriteByte(':')
			encodeValue(b, f.val)
		}
		b.WriteByte('}')
	case []object:
		b.WriteByte('[')
		for i, o := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeValue(b, o)
		}
		b.WriteByte(']')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeValue(b, e)
		}
		b.WriteByte(']')
	case string:
		encodeString(b, x)
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case number:
		b.WriteString(string(x))
	default:
		panic(fmt.Sprintf("fakeupstream: cannot encode %T", v))
	}
}

// encodeString quotes s as JSON without HTML escaping: the real servers send
// "<" and "&" literally.
func encodeString(b *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Write(bytes.TrimSuffix(tmp.Bytes(), []byte("\n")))
}

// sortKeys returns v with the keys of every object, at any depth, sorted.
func sortKeys(v any) any {
	switch x := v.(type) {
	case object:
		out := make(object, len(x))
		for i, f := range x {
			out[i] = field{f.key, sortKeys(f.val)}
		}
		slices.SortStableFunc(out, func(a, b field) int { return strings.Compare(a.key, b.key) })
		return out
	case []object:
		out := make([]object, len(x))
		for i, o := range x {
			out[i] = sortKeys(o).(object)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = sortKeys(e)
		}
		return out
	default:
		return v
	}
}
