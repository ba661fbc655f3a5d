package fakeanthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// The wire bodies are built from ordered objects rather than structs or maps
// so that keys keep Anthropic's order and golden files pin it.

// field is one key of an object.
type field struct {
	key string
	val any
}

// object is a JSON object whose keys keep their order.
type object []field

// compactJSON encodes v without whitespace, as the API sends bodies and
// stream data. It supports object, []object, []any, string, int, bool,
// json.RawMessage (written verbatim, must be compact) and nil.
func compactJSON(v any) []byte {
	var b bytes.Buffer
	encodeValue(&b, v)
	return b.Bytes()
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
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.RawMessage:
		b.Write(x)
	default:
		panic(fmt.Sprintf("fakeanthropic: cannot encode %T", v))
	}
}

// encodeString quotes s as JSON without HTML escaping: the API sends "<" and
// "&" literally.
func encodeString(b *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Write(bytes.TrimSuffix(tmp.Bytes(), []byte("\n")))
}
