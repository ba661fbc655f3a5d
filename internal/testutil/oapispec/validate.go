package oapispec

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// maxViolations caps how many violations one failure lists; unions (anyOf,
// oneOf) can otherwise produce hundreds of branch failures.
const maxViolations = 40

// ValidateResponse checks a response to method+path against the operation's
// declared responses: that status is declared (or, for errors, see
// exceptions.go), that the Content-Type media type is declared for it, and that
// body satisfies the schema. path is the API path ("/v1/chat/completions" or
// "/chat/completions"; the servers base path is optional, a query is ignored).
// A text/event-stream body is split into SSE events and the data of each event
// except "[DONE]" is validated as one JSON document.
func (s *Spec) ValidateResponse(tb testing.TB, method, path string, status int, header http.Header, body []byte) {
	tb.Helper()
	what := fmt.Sprintf("%s %s %s → %d", s.name, method, path, status)
	opPtr, err := s.operation(method, path)
	if err != nil {
		tb.Errorf("%s: %v", what, err)
		return
	}
	respPtr, resp, ok := s.response(opPtr, status)
	if !ok {
		if status >= 400 && s.errorSchema != "" {
			// Exception: see exceptions.go, "Undeclared error statuses".
			mt, err := mediaType(header, "application/json")
			if err != nil || !isJSON(mt) {
				tb.Errorf("%s: error response Content-Type %q, want application/json", what, header.Get("Content-Type"))
				return
			}
			s.validate(tb, what+" (undeclared error status, checked as "+s.errorSchema+")",
				pointer("components", "schemas", s.errorSchema), body)
			return
		}
		tb.Errorf("%s: status %d is not declared; declared: %s", what, status, strings.Join(s.keys(opPtr+"/responses"), ", "))
		return
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(bytes.TrimSpace(body)) > 0 {
			tb.Errorf("%s: response declares no content, got %d bytes", what, len(body))
		}
		return
	}
	mt, err := mediaType(header, "")
	if err != nil {
		tb.Errorf("%s: %v", what, err)
		return
	}
	declared, ok := matchMediaType(content, mt)
	if !ok {
		tb.Errorf("%s: Content-Type %q is not declared; declared: %s", what, mt, strings.Join(s.keys(respPtr+"/content"), ", "))
		return
	}
	schemaPtr := respPtr + pointer("content", declared, "schema")
	if _, ok := s.lookup(schemaPtr); !ok {
		return // media type with no schema: anything goes
	}
	switch {
	case mt == "text/event-stream":
		for i, data := range sseData(body) {
			s.validate(tb, fmt.Sprintf("%s: SSE event %d", what, i), schemaPtr, data)
		}
	case isJSON(mt):
		s.validate(tb, what, schemaPtr, body)
	}
}

// ValidateRequest checks a request body sent to method+path against the
// operation's requestBody: that the Content-Type media type (application/json
// when header has none) is declared and that body satisfies its schema.
func (s *Spec) ValidateRequest(tb testing.TB, method, path string, header http.Header, body []byte) {
	tb.Helper()
	what := fmt.Sprintf("%s %s %s request", s.name, method, path)
	opPtr, err := s.operation(method, path)
	if err != nil {
		tb.Errorf("%s: %v", what, err)
		return
	}
	rbPtr, rb, ok := s.deref(opPtr + "/requestBody")
	if !ok {
		if len(bytes.TrimSpace(body)) > 0 {
			tb.Errorf("%s: operation declares no request body, got %d bytes", what, len(body))
		}
		return
	}
	content, _ := rb["content"].(map[string]any)
	mt, err := mediaType(header, "application/json")
	if err != nil {
		tb.Errorf("%s: %v", what, err)
		return
	}
	declared, ok := matchMediaType(content, mt)
	if !ok {
		tb.Errorf("%s: Content-Type %q is not declared; declared: %s", what, mt, strings.Join(s.keys(rbPtr+"/content"), ", "))
		return
	}
	if !isJSON(mt) {
		return
	}
	s.validate(tb, what, rbPtr+pointer("content", declared, "schema"), body)
}

// ValidateSchema checks one JSON document against the component schema named
// component, e.g. "CreateChatCompletionStreamResponse" for each SSE chunk or
// "ErrorResponse".
func (s *Spec) ValidateSchema(tb testing.TB, component string, doc []byte) {
	tb.Helper()
	ptr := pointer("components", "schemas", component)
	if _, ok := s.lookup(ptr); !ok {
		tb.Errorf("%s: no component schema %q", s.name, component)
		return
	}
	s.validate(tb, s.name+" "+component, ptr, doc)
}

// validate checks body against the schema at ptr and reports every violation
// in one Errorf call.
func (s *Spec) validate(tb testing.TB, what, ptr string, body []byte) {
	tb.Helper()
	sch, err := s.schema(ptr)
	if err != nil {
		tb.Errorf("%s: %v", what, err)
		return
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		tb.Errorf("%s: body is not valid JSON: %v\nbody: %s", what, err, truncate(body))
		return
	}
	err = sch.Validate(v)
	if err == nil {
		return
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		tb.Errorf("%s: validate: %v", what, err)
		return
	}
	var out []string
	s.collect(verr, &out)
	out = dedupe(out)
	if len(out) == 0 {
		return // every violation was an allowed exception
	}
	n := len(out)
	if n > maxViolations {
		out = append(out[:maxViolations], fmt.Sprintf("… and %d more", n-maxViolations))
	}
	tb.Errorf("%s: %d violation(s) of %s:\n\t%s\nbody: %s", what, n, ptr, strings.Join(out, "\n\t"), truncate(body))
}

var printer = message.NewPrinter(language.English)

// collect appends one line per leaf error, "<json pointer>: <message> (schema
// location)", skipping leaves the exception list allows.
func (s *Spec) collect(e *jsonschema.ValidationError, out *[]string) {
	if len(e.Causes) > 0 {
		for _, c := range pruneUnion(e) {
			s.collect(c, out)
		}
		return
	}
	inst := pointer(e.InstanceLocation...)
	schemaLoc := strings.TrimPrefix(e.SchemaURL, s.url)
	if allowed(s.name, schemaLoc, inst) {
		return
	}
	shown := strconv.Quote(inst)
	*out = append(*out, fmt.Sprintf("%s: %s (schema %s)", shown, e.ErrorKind.LocalizedString(printer), schemaLoc))
}

// pruneUnion returns the causes of e worth reporting. When an anyOf or oneOf
// fails, the branches whose "type" property (the discriminator in both specs)
// does not match say nothing useful, so they are dropped as long as at least
// one branch is left: a text block missing "citations" then reports that, not
// "must be 'thinking'" for every other block type.
func pruneUnion(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	switch e.ErrorKind.(type) {
	case *kind.AnyOf, *kind.OneOf:
	default:
		return e.Causes
	}
	typeLoc := append(slices.Clip(e.InstanceLocation), "type")
	var keep []*jsonschema.ValidationError
	for _, c := range e.Causes {
		if !typeMismatch(c, typeLoc) {
			keep = append(keep, c)
		}
	}
	if len(keep) == 0 {
		return e.Causes
	}
	return keep
}

// typeMismatch reports whether e contains a const or enum failure at typeLoc.
func typeMismatch(e *jsonschema.ValidationError, typeLoc []string) bool {
	switch e.ErrorKind.(type) {
	case *kind.Const, *kind.Enum:
		if slices.Equal(e.InstanceLocation, typeLoc) {
			return true
		}
	}
	for _, c := range e.Causes {
		if typeMismatch(c, typeLoc) {
			return true
		}
	}
	return false
}

// operation returns the JSON pointer of the operation object for method+path.
func (s *Spec) operation(method, path string) (string, error) {
	paths, _ := s.doc["paths"].(map[string]any)
	method = strings.ToLower(method)
	find := func(key string) (string, bool) {
		item, _ := paths[key].(map[string]any)
		if _, ok := item[method].(map[string]any); ok {
			return pointer("paths", key, method), true
		}
		return "", false
	}
	// Exact key first: Anthropic lists "/v1/messages?beta=true" separately.
	if ptr, ok := find(path); ok {
		return ptr, nil
	}
	p, _, _ := strings.Cut(path, "?")
	cands := []string{p}
	if s.basePath != "" && strings.HasPrefix(p, s.basePath+"/") {
		cands = append(cands, strings.TrimPrefix(p, s.basePath))
	}
	best, bestParams := "", -1
	for _, c := range cands {
		for key := range paths {
			if strings.Contains(key, "?") {
				continue
			}
			n, ok := matchTemplate(key, c)
			if !ok || (bestParams >= 0 && n >= bestParams) {
				continue
			}
			if _, ok := find(key); ok {
				best, bestParams = key, n
			}
		}
	}
	if bestParams < 0 {
		return "", fmt.Errorf("no operation %s %s in the spec", strings.ToUpper(method), path)
	}
	ptr, _ := find(best)
	return ptr, nil
}

// matchTemplate reports whether path matches the OpenAPI path template and how
// many template parameters it used (fewer is a more specific match).
func matchTemplate(tmpl, path string) (int, bool) {
	ts := strings.Split(strings.Trim(tmpl, "/"), "/")
	ps := strings.Split(strings.Trim(path, "/"), "/")
	if len(ts) != len(ps) {
		return 0, false
	}
	params := 0
	for i, t := range ts {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if ps[i] == "" {
				return 0, false
			}
			params++
			continue
		}
		if t != ps[i] {
			return 0, false
		}
	}
	return params, true
}

// response returns the pointer and object of the response declared for status:
// the exact code, then a range such as "4XX", then "default".
func (s *Spec) response(opPtr string, status int) (string, map[string]any, bool) {
	code := strconv.Itoa(status)
	for _, key := range []string{code, code[:1] + "XX", code[:1] + "xx", "default"} {
		if ptr, m, ok := s.deref(opPtr + pointer("responses", key)); ok {
			return ptr, m, true
		}
	}
	return "", nil, false
}

// keys lists the keys of the object at ptr, sorted, for messages.
func (s *Spec) keys(ptr string) []string {
	_, m, _ := s.deref(ptr)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// mediaType returns the lower-case media type of header's Content-Type, or def
// when there is none (an error if def is empty).
func mediaType(header http.Header, def string) (string, error) {
	ct := header.Get("Content-Type")
	if ct == "" {
		if def == "" {
			return "", errors.New("no Content-Type header")
		}
		return def, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", fmt.Errorf("parse Content-Type %q: %w", ct, err)
	}
	return mt, nil
}

// matchMediaType finds the content key that covers mt: exact, "type/*", "*/*".
func matchMediaType(content map[string]any, mt string) (string, bool) {
	major, _, _ := strings.Cut(mt, "/")
	for _, k := range []string{mt, major + "/*", "*/*"} {
		for key := range content {
			if kmt, _, err := mime.ParseMediaType(key); err == nil && kmt == k {
				return key, true
			}
		}
	}
	return "", false
}

func isJSON(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// sseData returns the data of each event in an SSE stream (multi-line data
// joined with "\n"), skipping events without data and OpenAI's "[DONE]".
func sseData(body []byte) [][]byte {
	body = bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
	var out [][]byte
	for _, ev := range bytes.Split(body, []byte("\n\n")) {
		var data [][]byte
		for _, line := range bytes.Split(ev, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				data = append(data, bytes.TrimPrefix(d, []byte(" ")))
			}
		}
		if len(data) == 0 {
			continue
		}
		joined := bytes.Join(data, []byte("\n"))
		if string(bytes.TrimSpace(joined)) == "[DONE]" {
			continue
		}
		out = append(out, joined)
	}
	return out
}

// dedupe removes repeated lines, keeping the first of each.
func dedupe(lines []string) []string {
	seen := make(map[string]bool, len(lines))
	out := lines[:0]
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

func truncate(b []byte) string {
	const max = 2000
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
