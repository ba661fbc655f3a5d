package oapispec

import (
	"regexp"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// This file lists every place where validation deliberately departs from a
// literal reading of the specs. Keep each entry narrow and say why.
//
// 1. "nullable: true" (OpenAI). openai-openapi.yaml declares OpenAPI 3.1 but
//    still carries about 110 OpenAPI 3.0 "nullable: true" keywords (for example
//    CreateChatCompletionRequest.max_completion_tokens). JSON Schema 2020-12
//    ignores the unknown keyword and would reject the null the spec means to
//    allow, so rewriteNullable turns each into an explicit null alternative.
//
// 2. Undeclared error statuses. OpenAI declares only 429 for most operations
//    (POST /chat/completions lists 200 and 429), yet documents that every
//    endpoint returns the same {"error": {...}} body on 400, 401, 403, 404, 500
//    and so on (https://platform.openai.com/docs/guides/error-codes). A status
//    >= 400 that an operation does not declare is therefore checked against the
//    spec's "ErrorResponse" component instead of being reported as undeclared.
//    Anthropic declares its error statuses explicitly, so this rarely applies.
//
// 3. ECMA-262 regular expressions. JSON Schema patterns are ECMA-262; the
//    Anthropic spec uses "\uXXXX" escapes (e.g. BrowserStateTabEntry.title),
//    which Go's regexp rejects, so ecmaRegexp rewrites them to "\x{XXXX}".
//
// 4. allowedViolations below: leaf violations ignored for a given schema
//    location and instance path. Empty today; add an entry only for a real,
//    documented response the spec rejects, with a link.

// violationException ignores leaf violations of one spec.
type violationException struct {
	spec     string         // "openai" or "anthropic"
	schema   *regexp.Regexp // matches the schema location, e.g. "#/components/schemas/X/required"
	instance *regexp.Regexp // matches the JSON pointer of the instance value
	why      string
}

var allowedViolations = []violationException{}

// allowed reports whether a leaf violation is covered by allowedViolations.
func allowed(spec, schemaLoc, instance string) bool {
	for _, e := range allowedViolations {
		if e.spec == spec && e.schema.MatchString(schemaLoc) && e.instance.MatchString(instance) {
			return true
		}
	}
	return false
}

// rewriteNullable replaces OpenAPI 3.0 "nullable: true" throughout v with the
// JSON Schema 2020-12 equivalent, in place where possible, and returns the
// (possibly replaced) value. See exception 1 above.
func rewriteNullable(v any) any {
	switch v := v.(type) {
	case []any:
		for i := range v {
			v[i] = rewriteNullable(v[i])
		}
		return v
	case map[string]any:
		for k, e := range v {
			v[k] = rewriteNullable(e)
		}
		if n, ok := v["nullable"].(bool); !ok {
			return v
		} else if !n {
			delete(v, "nullable")
			return v
		}
		delete(v, "nullable")
		if enum, ok := v["enum"].([]any); ok && !slices.Contains(enum, nil) {
			v["enum"] = append(enum, nil)
		}
		switch t := v["type"].(type) {
		case string:
			if t != "null" {
				v["type"] = []any{t, "null"}
			}
			return v
		case []any:
			if !slices.Contains(t, any("null")) {
				v["type"] = append(t, "null")
			}
			return v
		}
		// No type to widen (a $ref, allOf, …): accept null or the schema.
		return map[string]any{"anyOf": []any{v, map[string]any{"type": "null"}}}
	default:
		return v
	}
}

// ecmaRegexp compiles an ECMA-262 pattern with Go's regexp after rewriting the
// "\uXXXX" escapes Go lacks. See exception 3 above.
func ecmaRegexp(pattern string) (jsonschema.Regexp, error) {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '\\' || i+1 >= len(pattern) {
			b.WriteByte(c)
			continue
		}
		if pattern[i+1] == 'u' && i+6 <= len(pattern) && isHex(pattern[i+2:i+6]) {
			b.WriteString(`\x{` + pattern[i+2:i+6] + `}`)
			i += 5
			continue
		}
		b.WriteString(pattern[i : i+2]) // keep any other escape, including "\\"
		i++
	}
	return regexp.Compile(b.String())
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
