package gemini

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a hand-written decoder for one stream chunk (a
// GenerateContentResponse), so that decoding an event allocates nothing but
// the strings the event carries. It decodes exactly as encoding/json would
// into genResponse (FuzzChunkScanner checks this): the same syntax, keys
// matched exactly and then case-insensitively, null leaving a value (and
// clearing a pointer or slice), duplicate keys decoding into the value the
// first left, invalid UTF-8 replaced by U+FFFD, and a type error reported
// after the whole value was checked.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// errNeedMore reports a chunk whose JSON continues in the next SSE event
// (the old json.Decoder joined events' data with newlines).
var errNeedMore = errors.New("chunk continues in the next event")

// chunkSyntaxError is a chunk that is not JSON.
type chunkSyntaxError struct {
	msg    string
	Offset int
}

func (e *chunkSyntaxError) Error() string { return e.msg }

// chunkTypeError is a JSON value of the wrong type for its field.
type chunkTypeError struct {
	field string
	what  string
}

func (e *chunkTypeError) Error() string {
	return "cannot unmarshal " + e.what + " into field " + e.field
}

// Decoded chunk. Byte slices view the event's data or the scanner's
// scratch buffer and are valid until the next chunk.
type (
	wireChunk struct {
		cands    []wireCand
		candKept int // elements of cands that hold data (see grow)

		hasFeedback bool
		blockReason []byte
		hasUsage    bool
		usage       usageMetadata
		model, id   []byte
		err         *googleError
	}
	wireCand struct {
		parts    []wirePart
		partKept int
		finish   []byte
		index    int64
	}
	wirePart struct {
		text, sig          []byte
		thought            bool
		hasCall            bool
		callID, name, args []byte
	}
)

func (c *wireCand) reset() {
	c.parts, c.partKept, c.finish, c.index = c.parts[:0], 0, nil, 0
}

func (c *wireChunk) reset() {
	*c = wireChunk{cands: c.cands[:0]}
}

// jscan reads one JSON value from b[i:].
type jscan struct {
	b       []byte
	i       int
	depth   int
	err     error // the first syntax error, or errNeedMore
	typeErr error // the first type error
	key     []byte
	scratch []byte // unescaped strings
}

func (s *jscan) syntax(msg string) {
	if s.err == nil {
		s.err = &chunkSyntaxError{msg: fmt.Sprintf("invalid JSON at offset %d: %s", s.i, msg), Offset: s.i}
	}
}

func (s *jscan) typeError(field, what string) {
	if s.typeErr == nil {
		s.typeErr = &chunkTypeError{field: field, what: what}
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipWS skips white space; at the end of the data it reports errNeedMore,
// for it is called only inside an object or array.
func (s *jscan) skipWS() bool {
	for s.i < len(s.b) {
		if !isSpace(s.b[s.i]) {
			return true
		}
		s.i++
	}
	if s.err == nil {
		s.err = errNeedMore
	}
	return false
}

// kind returns the kind of the value at s.i: one of {["tfn or '0' for a
// number; 0 after an error.
func (s *jscan) kind() byte {
	if s.err != nil || !s.skipWS() {
		return 0
	}
	switch c := s.b[s.i]; c {
	case '{', '[', '"', 't', 'f', 'n':
		return c
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return '0'
	}
	s.syntax(fmt.Sprintf("invalid character %q looking for beginning of value", s.b[s.i]))
	return 0
}

func kindName(k byte) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// objectFirst consumes '{' and the first key; it returns false for an
// empty object or an error.
func (s *jscan) objectFirst() bool {
	s.i++ // '{'
	if s.depth++; s.depth > maxDepth {
		s.syntax("exceeded max depth")
		return false
	}
	if !s.skipWS() {
		return false
	}
	if s.b[s.i] == '}' {
		s.i++
		s.depth--
		return false
	}
	return s.member()
}

// objectNext consumes ',' and the next key; false at '}' or an error.
func (s *jscan) objectNext() bool {
	if s.err != nil || !s.skipWS() {
		return false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		if !s.skipWS() {
			return false
		}
		return s.member()
	case '}':
		s.i++
		s.depth--
		return false
	}
	s.syntax("invalid character after object key:value pair")
	return false
}

// member reads a key and its colon into s.key.
func (s *jscan) member() bool {
	if s.b[s.i] != '"' {
		s.syntax("invalid character looking for beginning of object key string")
		return false
	}
	k, ok := s.str()
	if !ok || !s.skipWS() {
		return false
	}
	if s.b[s.i] != ':' {
		s.syntax("invalid character after object key")
		return false
	}
	s.i++
	s.key = k
	return true
}

// arrayFirst consumes '[' and reports whether an element follows.
func (s *jscan) arrayFirst() bool {
	s.i++
	if s.depth++; s.depth > maxDepth {
		s.syntax("exceeded max depth")
		return false
	}
	if !s.skipWS() {
		return false
	}
	if s.b[s.i] == ']' {
		s.i++
		s.depth--
		return false
	}
	return true
}

// arrayNext consumes ',' and reports whether an element follows.
func (s *jscan) arrayNext() bool {
	if s.err != nil || !s.skipWS() {
		return false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true
	case ']':
		s.i++
		s.depth--
		return false
	}
	s.syntax("invalid character after array element")
	return false
}

// skip checks and skips a value of kind k.
func (s *jscan) skip(k byte) {
	switch k {
	case '{':
		for more := s.objectFirst(); more; more = s.objectNext() {
			s.skip(s.kind())
		}
	case '[':
		for more := s.arrayFirst(); more; more = s.arrayNext() {
			s.skip(s.kind())
		}
	case '"':
		s.str()
	case 't':
		s.literal("true")
	case 'f':
		s.literal("false")
	case 'n':
		s.literal("null")
	case '0':
		s.number()
	}
}

// value skips a value and returns its text.
func (s *jscan) value() []byte {
	k := s.kind()
	start := s.i
	s.skip(k)
	if s.err != nil {
		return nil
	}
	return s.b[start:s.i]
}

func (s *jscan) literal(lit string) bool {
	for j := 0; j < len(lit); j++ {
		if s.i >= len(s.b) || s.b[s.i] != lit[j] {
			s.syntax("invalid character in literal " + lit)
			return false
		}
		s.i++
	}
	return true
}

// number reads a number; the end of the data ends it (a newline followed
// each event's data).
func (s *jscan) number() []byte {
	b, start := s.b, s.i
	i := s.i
	digit := func() bool { return i < len(b) && b[i] >= '0' && b[i] <= '9' }
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digit():
		for digit() {
			i++
		}
	default:
		s.i = i
		s.syntax("invalid character in numeric literal")
		return nil
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digit() {
			s.i = i
			s.syntax("invalid character after decimal point in numeric literal")
			return nil
		}
		for digit() {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digit() {
			s.i = i
			s.syntax("invalid character in exponent of numeric literal")
			return nil
		}
		for digit() {
			i++
		}
	}
	s.i = i
	return b[start:i]
}

// str reads a string at s.i and returns its value: a view of the data
// when it has no escapes and is valid UTF-8, else decoded into scratch.
func (s *jscan) str() ([]byte, bool) {
	b := s.b
	start := s.i + 1
	esc, high := false, false
	i := start
	for {
		if i >= len(b) {
			s.i = i
			s.syntax("unexpected end of string literal")
			return nil, false
		}
		c := b[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			s.i = i
			s.syntax("invalid character in string literal")
			return nil, false
		}
		if c == '\\' {
			esc = true
			i++
			if i >= len(b) {
				s.i = i
				s.syntax("unexpected end of string literal")
				return nil, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for j := 1; j <= 4; j++ {
					if i+j >= len(b) || unhex(b[i+j]) < 0 {
						s.i = i + j
						s.syntax("invalid character in \\u hexadecimal character escape")
						return nil, false
					}
				}
				i += 4
			default:
				s.i = i
				s.syntax("invalid character in string escape code")
				return nil, false
			}
		} else if c >= utf8.RuneSelf {
			high = true
		}
		i++
	}
	s.i = i + 1
	raw := b[start:i]
	if !esc && (!high || utf8.Valid(raw)) {
		return raw, true
	}
	n := len(s.scratch)
	s.scratch = unquote(s.scratch, raw)
	return s.scratch[n:len(s.scratch):len(s.scratch)], true
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		h := unhex(c)
		if h < 0 {
			return -1
		}
		r = r*16 + rune(h)
	}
	return r
}

// unquote appends the value of a checked string body as encoding/json
// decodes it.
func unquote(dst, s []byte) []byte {
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			switch s[r+1] {
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
				rr := getu4(s[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, getu4(s[r:])); dec != unicode.ReplacementChar {
						r += 6
						dst = utf8.AppendRune(dst, dec)
						continue
					}
					rr = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			default: // " \ /
				dst = append(dst, s[r+1])
			}
			r += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			dst = utf8.AppendRune(dst, rr)
		}
	}
	return dst
}

// keyIs reports whether key names field (ASCII, lower case first letter
// as in the json tags), as encoding/json matches: exactly, else folded
// (ASCII upper case; other runes ToUpper(ToLower(r)), so U+017F matches
// 's' and U+212A 'k').
func keyIs(key []byte, field string) bool {
	if string(key) == field {
		return true
	}
	j := 0
	for i := 0; i < len(key); {
		r, size := rune(key[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(key[i:])
			r = unicode.ToUpper(unicode.ToLower(r))
		} else if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		i += size
		if j >= len(field) {
			return false
		}
		f := rune(field[j])
		if 'a' <= f && f <= 'z' {
			f -= 'a' - 'A'
		}
		if r != f {
			return false
		}
		j++
	}
	return j == len(field)
}

// stringField decodes a string value into *dst (null leaves it).
func (s *jscan) stringField(dst *[]byte, field string) {
	switch k := s.kind(); k {
	case '"':
		if v, ok := s.str(); ok {
			*dst = v
		}
	case 'n':
		s.literal("null")
	case 0:
	default:
		s.typeError(field, kindName(k))
		s.skip(k)
	}
}

// intField decodes an integer value into *dst.
func (s *jscan) intField(dst *int64, field string) {
	switch k := s.kind(); k {
	case '0':
		num := s.number()
		if s.err != nil {
			return
		}
		if n, ok := parseInt(num); ok {
			*dst = n
		} else {
			s.typeError(field, "number "+string(num))
		}
	case 'n':
		s.literal("null")
	case 0:
	default:
		s.typeError(field, kindName(k))
		s.skip(k)
	}
}

// parseInt is strconv.ParseInt(b, 10, 64) on a checked JSON number.
func parseInt(b []byte) (int64, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > 1<<63 {
			return 0, false
		}
	}
	if !neg {
		if n > 1<<63-1 {
			return 0, false
		}
		return int64(n), true
	}
	return -int64(n), true // n == 1<<63 wraps to MinInt64
}

// boolField decodes a bool value into *dst.
func (s *jscan) boolField(dst *bool, field string) {
	switch k := s.kind(); k {
	case 't':
		if s.literal("true") {
			*dst = true
		}
	case 'f':
		if s.literal("false") {
			*dst = false
		}
	case 'n':
		s.literal("null")
	case 0:
	default:
		s.typeError(field, kindName(k))
		s.skip(k)
	}
}

// openOrNull reports whether an object ('{') or array ('[') follows, as
// open says (consuming nothing); it consumes a null (setting *null) and
// skips a value of another kind as a type error.
func (s *jscan) openOrNull(open byte, field string, null *bool) bool {
	*null = false
	switch k := s.kind(); k {
	case open:
		return true
	case 'n':
		*null = s.literal("null")
	case 0:
	default:
		s.typeError(field, kindName(k))
		s.skip(k)
	}
	return false
}

// chunk decodes one GenerateContentResponse into c, which must be reset.
func (s *jscan) chunk(c *wireChunk) {
	var null bool
	if !s.openOrNull('{', "", &null) {
		return // null decodes to nothing; anything else is a type error
	}
	for more := s.objectFirst(); more; more = s.objectNext() {
		switch key := s.key; {
		case keyIs(key, "candidates"):
			if !s.openOrNull('[', "candidates", &null) {
				if null {
					c.cands, c.candKept = c.cands[:0], 0
				}
				continue
			}
			n := 0
			for more := s.arrayFirst(); more; more = s.arrayNext() {
				c.cands, c.candKept = growCands(c.cands, c.candKept, n)
				s.candidate(&c.cands[n])
				n++
			}
			if n == 0 { // [] makes a new slice
				c.candKept = 0
			}
			if n < len(c.cands) {
				c.cands = c.cands[:n]
			}
		case keyIs(key, "promptFeedback"):
			if !s.openOrNull('{', "promptFeedback", &null) {
				if null {
					c.hasFeedback = false
				}
				continue
			}
			if !c.hasFeedback {
				c.hasFeedback, c.blockReason = true, nil
			}
			for more := s.objectFirst(); more; more = s.objectNext() {
				if keyIs(s.key, "blockReason") {
					s.stringField(&c.blockReason, "promptFeedback.blockReason")
				} else {
					s.skip(s.kind())
				}
			}
		case keyIs(key, "usageMetadata"):
			if !s.openOrNull('{', "usageMetadata", &null) {
				if null {
					c.hasUsage = false
				}
				continue
			}
			if !c.hasUsage {
				c.hasUsage, c.usage = true, usageMetadata{}
			}
			s.usage(&c.usage)
		case keyIs(key, "modelVersion"):
			s.stringField(&c.model, "modelVersion")
		case keyIs(key, "responseId"):
			s.stringField(&c.id, "responseId")
		case keyIs(key, "createTime"):
			var t []byte
			s.stringField(&t, "createTime")
		case keyIs(key, "error"):
			if !s.openOrNull('{', "error", &null) {
				if null {
					c.err = nil
				}
				continue
			}
			raw := s.value()
			if s.err != nil {
				continue
			}
			if c.err == nil {
				c.err = new(googleError)
			}
			if err := json.Unmarshal(raw, c.err); err != nil && s.typeErr == nil {
				s.typeErr = err
			}
		default:
			s.skip(s.kind())
		}
	}
}

func (s *jscan) usage(u *usageMetadata) {
	for more := s.objectFirst(); more; more = s.objectNext() {
		switch key := s.key; {
		case keyIs(key, "promptTokenCount"):
			s.intField(&u.PromptTokenCount, "usageMetadata.promptTokenCount")
		case keyIs(key, "candidatesTokenCount"):
			s.intField(&u.CandidatesTokenCount, "usageMetadata.candidatesTokenCount")
		case keyIs(key, "cachedContentTokenCount"):
			s.intField(&u.CachedContentTokenCount, "usageMetadata.cachedContentTokenCount")
		case keyIs(key, "thoughtsTokenCount"):
			s.intField(&u.ThoughtsTokenCount, "usageMetadata.thoughtsTokenCount")
		case keyIs(key, "toolUsePromptTokenCount"):
			s.intField(&u.ToolUsePromptTokenCount, "usageMetadata.toolUsePromptTokenCount")
		default:
			s.skip(s.kind())
		}
	}
}

// growCands readies element n of an array being decoded into cands, as
// encoding/json does: an element within the kept ones is decoded into as
// it is, one past them starts from zero.
func growCands(cands []wireCand, kept, n int) ([]wireCand, int) {
	if n >= len(cands) {
		if n < cap(cands) {
			cands = cands[:n+1]
		} else {
			cands = append(cands, wireCand{})
		}
	}
	if n >= kept {
		cands[n].reset()
		kept = n + 1
	}
	return cands, kept
}

func growParts(parts []wirePart, kept, n int) ([]wirePart, int) {
	if n >= len(parts) {
		if n < cap(parts) {
			parts = parts[:n+1]
		} else {
			parts = append(parts, wirePart{})
		}
	}
	if n >= kept {
		parts[n] = wirePart{}
		kept = n + 1
	}
	return parts, kept
}

func (s *jscan) candidate(c *wireCand) {
	var null bool
	if !s.openOrNull('{', "candidates", &null) {
		return // null leaves the element as it is
	}
	for more := s.objectFirst(); more; more = s.objectNext() {
		switch key := s.key; {
		case keyIs(key, "content"):
			if !s.openOrNull('{', "candidates.content", &null) {
				continue // null leaves a struct
			}
			for more := s.objectFirst(); more; more = s.objectNext() {
				if !keyIs(s.key, "parts") {
					s.skip(s.kind())
					continue
				}
				if !s.openOrNull('[', "candidates.content.parts", &null) {
					if null {
						c.parts, c.partKept = c.parts[:0], 0
					}
					continue
				}
				n := 0
				for more := s.arrayFirst(); more; more = s.arrayNext() {
					c.parts, c.partKept = growParts(c.parts, c.partKept, n)
					s.part(&c.parts[n])
					n++
				}
				if n == 0 {
					c.partKept = 0
				}
				if n < len(c.parts) {
					c.parts = c.parts[:n]
				}
			}
		case keyIs(key, "finishReason"):
			s.stringField(&c.finish, "candidates.finishReason")
		case keyIs(key, "index"):
			s.intField(&c.index, "candidates.index")
		default:
			s.skip(s.kind())
		}
	}
}

func (s *jscan) part(p *wirePart) {
	var null bool
	if !s.openOrNull('{', "candidates.content.parts", &null) {
		return
	}
	for more := s.objectFirst(); more; more = s.objectNext() {
		switch key := s.key; {
		case keyIs(key, "text"):
			s.stringField(&p.text, "candidates.content.parts.text")
		case keyIs(key, "thought"):
			s.boolField(&p.thought, "candidates.content.parts.thought")
		case keyIs(key, "thoughtSignature"):
			s.stringField(&p.sig, "candidates.content.parts.thoughtSignature")
		case keyIs(key, "functionCall"):
			if !s.openOrNull('{', "candidates.content.parts.functionCall", &null) {
				if null {
					p.hasCall = false
				}
				continue
			}
			if !p.hasCall {
				p.hasCall, p.callID, p.name, p.args = true, nil, nil, nil
			}
			for more := s.objectFirst(); more; more = s.objectNext() {
				switch key := s.key; {
				case keyIs(key, "id"):
					s.stringField(&p.callID, "candidates.content.parts.functionCall.id")
				case keyIs(key, "name"):
					s.stringField(&p.name, "candidates.content.parts.functionCall.name")
				case keyIs(key, "args"):
					if v := s.value(); s.err == nil {
						p.args = v
					}
				default:
					s.skip(s.kind())
				}
			}
		default:
			s.skip(s.kind())
		}
	}
}

// appendCompactJSON appends checked JSON text without its white space, as
// json.Compact does.
func appendCompactJSON(dst, src []byte) []byte {
	in := false
	start := 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case in:
			if c == '\\' {
				i++
			} else if c == '"' {
				in = false
			}
		case c == '"':
			in = true
		case isSpace(c):
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}
