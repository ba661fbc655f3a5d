package fakeupstream

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// Dimensions is the length of every embedding vector.
const Dimensions = 8

// ModelCreated is the "created" of every entry in the models list.
const ModelCreated = 1715367049

func errInvalidInput() apiError {
	return apiError{status: http.StatusBadRequest,
		message: "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
		typ:     "invalid_request_error"}
}

// embeddingInput is one input: text, or a token array.
type embeddingInput struct {
	text   string
	tokens []int
	isText bool
}

// parseInputs accepts what the API accepts: a string, an array of strings,
// an array of tokens or an array of token arrays.
func parseInputs(raw json.RawMessage) ([]embeddingInput, *apiError) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, ptr(errInvalidInput())
		}
		return []embeddingInput{{text: s, isText: true}}, nil
	}
	var strs []string
	if json.Unmarshal(raw, &strs) == nil && len(strs) > 0 {
		out := make([]embeddingInput, len(strs))
		for i, s := range strs {
			if s == "" {
				return nil, ptr(errInvalidInput())
			}
			out[i] = embeddingInput{text: s, isText: true}
		}
		return out, nil
	}
	var toks []int
	if json.Unmarshal(raw, &toks) == nil && len(toks) > 0 {
		return []embeddingInput{{tokens: toks}}, nil
	}
	var arrs [][]int
	if json.Unmarshal(raw, &arrs) == nil && len(arrs) > 0 {
		out := make([]embeddingInput, len(arrs))
		for i, a := range arrs {
			if len(a) == 0 {
				return nil, ptr(errInvalidInput())
			}
			out[i] = embeddingInput{tokens: a}
		}
		return out, nil
	}
	return nil, ptr(errInvalidInput())
}

func (in embeddingInput) tokenCount() int {
	if in.isText {
		return len(strings.Fields(in.text))
	}
	return len(in.tokens)
}

// vector derives Dimensions values in [-1, 1) from the input with
// splitmix64. Each value has a 24-bit mantissa, so it is exact as a float32
// and the float and base64 encodings carry the same numbers.
func (in embeddingInput) vector() []float32 {
	h := fnv.New64a()
	if in.isText {
		h.Write([]byte(in.text))
	} else {
		for _, t := range in.tokens {
			h.Write(strconv.AppendInt(nil, int64(t), 10))
			h.Write([]byte{','})
		}
	}
	x := h.Sum64()
	v := make([]float32, Dimensions)
	for i := range v {
		x += 0x9E3779B97F4A7C15
		z := x
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		z ^= z >> 31
		v[i] = float32(int64(z>>40)-(1<<23)) / (1 << 23)
	}
	return v
}

// Vector returns the embedding the Server answers for a string input, so
// tests can assert it without hard-coding numbers.
func Vector(input string) []float32 {
	return embeddingInput{text: input, isText: true}.vector()
}

func (s *Server) serveEmbeddings(w http.ResponseWriter, rt route, body []byte) {
	m, e := decodeObject(body)
	if e != nil {
		writeError(w, s.opts.Flavor, *e)
		return
	}
	model, e := s.parseModel(m, rt)
	if e != nil {
		writeError(w, s.opts.Flavor, *e)
		return
	}
	raw, ok := m["input"]
	if !ok || isNull(raw) {
		writeError(w, s.opts.Flavor, errMissingParam("input"))
		return
	}
	inputs, e := parseInputs(raw)
	if e != nil {
		writeError(w, s.opts.Flavor, *e)
		return
	}
	format := "float"
	if raw, ok := m["encoding_format"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &format) != nil || (format != "float" && format != "base64") {
			writeError(w, s.opts.Flavor, errInvalidValue("encoding_format",
				"Invalid value for 'encoding_format': expected one of 'float' or 'base64'."))
			return
		}
	}

	data := make([]object, len(inputs))
	tokens := 0
	for i, in := range inputs {
		tokens += in.tokenCount()
		data[i] = object{
			{"object", "embedding"},
			{"index", i},
			{"embedding", encodeVector(in.vector(), format)},
		}
	}
	resp := object{
		{"object", "list"},
		{"data", data},
		{"model", model},
		{"usage", object{{"prompt_tokens", tokens}, {"total_tokens", tokens}}},
	}
	writeBody(w, http.StatusOK, s.render(resp))
}

// encodeVector renders v as a JSON array of float32 values, or for base64
// as OpenAI does: the little-endian float32 bytes, base64-encoded.
func encodeVector(v []float32, format string) any {
	if format == "base64" {
		buf := make([]byte, 0, 4*len(v))
		for _, f := range v {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(f))
		}
		return base64.StdEncoding.EncodeToString(buf)
	}
	out := make([]any, len(v))
	for i, f := range v {
		out[i] = number(strconv.FormatFloat(float64(f), 'g', -1, 32))
	}
	return out
}

func (s *Server) serveModels(w http.ResponseWriter) {
	data := make([]object, len(s.opts.Models))
	for i, id := range s.opts.Models {
		data[i] = object{{"id", id}, {"object", "model"}, {"created", ModelCreated}, {"owned_by", "system"}}
	}
	writeBody(w, http.StatusOK, s.render(object{{"object", "list"}, {"data", data}}))
}

// render shapes a non-streamed body for the flavor: indented for OpenAI,
// compact with sorted keys for Azure.
func (s *Server) render(o object) []byte {
	if s.opts.Flavor == FlavorAzure {
		return compactJSON(sortKeys(o))
	}
	return indentJSON(o, "  ")
}

// decodeObject parses a request body that must be a JSON object.
func decodeObject(body []byte) (map[string]json.RawMessage, *apiError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, ptr(errInvalidJSON())
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// jsonKind names raw's JSON type the way OpenAI's type errors do.
func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func ptr[T any](v T) *T { return &v }

func itoa(i int) string { return strconv.Itoa(i) }
