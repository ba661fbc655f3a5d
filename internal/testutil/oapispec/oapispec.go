// Package oapispec validates what the gateway returns and sends against the
// providers' published OpenAPI 3.1 descriptions: OpenAI's openai-openapi.yaml and
// the Anthropic spec shipped with anthropic-sdk-go.
//
// It is a test helper: import it only from _test.go files. Each Validate method
// reports every violation through tb.Errorf, with the JSON pointer of the
// offending value, so one failing test shows the whole list.
//
// The specs are embedded from testdata/ as gzipped JSON (the OpenAI YAML is
// converted to JSON once, by TestUpdateSpecs with -update, because decoding 3 MB
// of YAML takes seconds). Schemas are compiled lazily with
// github.com/santhosh-tekuri/jsonschema/v6: OpenAPI 3.1 schemas are JSON Schema
// 2020-12, and the whole spec is registered as one resource, so internal refs
// such as "#/components/schemas/X" resolve without rewriting. Only the schemas a
// test touches are ever compiled; github.com/pb33f/libopenapi-validator was
// rejected because it compiles every schema up front (about 18 s for the OpenAI
// spec and 60 s for Anthropic's, before -race).
//
// Known gaps between the specs and JSON Schema 2020-12, each handled narrowly,
// are listed in exceptions.go.
package oapispec

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed testdata/openai-openapi.json.gz
var openaiSpecGz []byte

//go:embed testdata/anthropic-openapi.json.gz
var anthropicSpecGz []byte

// Spec is a loaded OpenAPI document with a lazily filled cache of compiled
// schemas. It is safe for concurrent use; obtain one with OpenAI or Anthropic.
type Spec struct {
	name string
	url  string // resource URL the document is registered under
	doc  map[string]any
	// basePath is the path of servers[0].url ("/v1" for OpenAI), which callers
	// may include in request paths even though the spec's paths omit it.
	basePath string
	// errorSchema is the component used for error statuses an operation does
	// not declare; see exceptions.go.
	errorSchema string

	mu       sync.Mutex // guards compiler and compiled
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

var (
	loadOpenAI = sync.OnceValues(func() (*Spec, error) {
		return load(options{name: "openai", gz: openaiSpecGz, errorSchema: "ErrorResponse"})
	})
	loadAnthropic = sync.OnceValues(func() (*Spec, error) {
		return load(options{name: "anthropic", gz: anthropicSpecGz, errorSchema: "ErrorResponse"})
	})
)

// OpenAI returns the validator for OpenAI's published API spec, loaded once per
// process. It fails tb fatally if the embedded spec cannot be loaded.
func OpenAI(tb testing.TB) *Spec {
	tb.Helper()
	s, err := loadOpenAI()
	if err != nil {
		tb.Fatalf("oapispec: load OpenAI spec: %v", err)
	}
	return s
}

// Anthropic returns the validator for Anthropic's published API spec, loaded
// once per process. It fails tb fatally if the embedded spec cannot be loaded.
func Anthropic(tb testing.TB) *Spec {
	tb.Helper()
	s, err := loadAnthropic()
	if err != nil {
		tb.Fatalf("oapispec: load Anthropic spec: %v", err)
	}
	return s
}

type options struct {
	name        string
	gz          []byte
	errorSchema string
}

func load(o options) (*Spec, error) {
	zr, err := gzip.NewReader(bytes.NewReader(o.gz))
	if err != nil {
		return nil, fmt.Errorf("gunzip %s spec: %w", o.name, err)
	}
	v, err := jsonschema.UnmarshalJSON(zr)
	if err != nil {
		return nil, fmt.Errorf("decode %s spec: %w", o.name, err)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, fmt.Errorf("gunzip %s spec: %w", o.name, err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s spec: top level is %T, want object", o.name, v)
	}
	if ver, _ := doc["openapi"].(string); !strings.HasPrefix(ver, "3.1") {
		return nil, fmt.Errorf("%s spec: openapi version %q, want 3.1.x", o.name, ver)
	}
	rewriteNullable(doc)

	s := &Spec{
		name:        o.name,
		url:         "https://oapispec.invalid/" + o.name + ".json",
		doc:         doc,
		basePath:    serverBasePath(doc),
		errorSchema: o.errorSchema,
		compiler:    jsonschema.NewCompiler(),
		compiled:    make(map[string]*jsonschema.Schema),
	}
	s.compiler.DefaultDraft(jsonschema.Draft2020)
	s.compiler.UseRegexpEngine(ecmaRegexp)
	if err := s.compiler.AddResource(s.url, doc); err != nil {
		return nil, fmt.Errorf("register %s spec: %w", o.name, err)
	}
	return s, nil
}

// serverBasePath returns the path part of the first servers entry, without a
// trailing slash: "/v1" for "https://api.openai.com/v1", "" for Anthropic.
func serverBasePath(doc map[string]any) string {
	servers, _ := doc["servers"].([]any)
	if len(servers) == 0 {
		return ""
	}
	first, _ := servers[0].(map[string]any)
	raw, _ := first["url"].(string)
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.Path, "/")
}

// schema compiles (once) and returns the schema at the JSON pointer ptr of the
// document.
func (s *Spec) schema(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.compiled[ptr]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(s.url + "#" + ptr)
	if err != nil {
		return nil, fmt.Errorf("compile %s schema %s: %w", s.name, ptr, err)
	}
	s.compiled[ptr] = sch
	return sch, nil
}

// lookup returns the value at JSON pointer ptr ("" is the whole document).
func (s *Spec) lookup(ptr string) (any, bool) {
	var v any = s.doc
	if ptr == "" {
		return v, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		v, ok = m[unescapePointer(tok)]
		if !ok {
			return nil, false
		}
	}
	return v, true
}

// deref follows OpenAPI-level "$ref"s (response and request-body objects) within
// the document and returns the pointer and value of the target.
func (s *Spec) deref(ptr string) (string, map[string]any, bool) {
	for range 16 {
		v, ok := s.lookup(ptr)
		if !ok {
			return "", nil, false
		}
		m, ok := v.(map[string]any)
		if !ok {
			return "", nil, false
		}
		ref, ok := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#") {
			return ptr, m, true
		}
		ptr = strings.TrimPrefix(ref, "#")
	}
	return "", nil, false
}

func escapePointer(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
}

func unescapePointer(tok string) string {
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
}

func pointer(toks ...string) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteByte('/')
		b.WriteString(escapePointer(t))
	}
	return b.String()
}
