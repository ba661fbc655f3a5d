package anthropic

import (
	"strconv"
	"unsafe"

	"github.com/multipolar/multipolar/internal/llm/jsonscan"
)

// A minimal scanner over JSON already checked by json.Valid, so the stream
// decoder reads each event without allocating. It duplicates the few
// helpers of ingress/openai and ingress/anthropic because a provider
// package may import only llm and apierr.

// member is one object member: the raw key (quotes stripped, escapes kept)
// and the value token.
type member struct {
	key, val []byte
}

// objectIter walks the members of an object token.
type objectIter struct {
	b []byte
	i int
}

func newObjectIter(obj []byte) objectIter {
	if len(obj) == 0 || obj[0] != '{' {
		return objectIter{i: -1}
	}
	return objectIter{b: obj, i: jsonscan.SkipSpace(obj, 1)}
}

// next returns the next member; ok is false after the last.
func (it *objectIter) next() (m member, ok bool) {
	if it.i < 0 || it.i >= len(it.b) || it.b[it.i] == '}' {
		return m, false
	}
	ks := it.i
	ke := jsonscan.SkipString(it.b, ks)
	i := jsonscan.SkipSpace(it.b, ke)
	vs := jsonscan.SkipSpace(it.b, i+1)
	ve := jsonscan.SkipValue(it.b, vs)
	m = member{key: it.b[ks+1 : ke-1], val: it.b[vs:ve]}
	i = jsonscan.SkipSpace(it.b, ve)
	if i < len(it.b) && it.b[i] == ',' {
		i = jsonscan.SkipSpace(it.b, i+1)
	}
	it.i = i
	return m, true
}

// isNull reports whether tok is JSON null.
func isNull(tok []byte) bool { return len(tok) == 4 && tok[0] == 'n' }

// parseInt reads an integer token; null or anything else is 0, false.
func parseInt(tok []byte) (int64, bool) {
	if len(tok) == 0 || isNull(tok) {
		return 0, false
	}
	n, err := strconv.ParseInt(unsafe.String(&tok[0], len(tok)), 10, 64)
	return n, err == nil
}

// hasEscape reports whether a string token holds a backslash.
func hasEscape(tok []byte) bool {
	for _, c := range tok {
		if c == '\\' {
			return true
		}
	}
	return false
}

// bytesString views b as a string without copying; b must not change while
// the string is in use.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
