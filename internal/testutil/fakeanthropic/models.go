package fakeanthropic

import (
	"net/http"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ModelCreatedAt is the created_at of every listed model.
const ModelCreatedAt = "2025-09-29T00:00:00Z"

// modelLines are the values ModelInfo.line may take.
var modelLines = []string{"haiku", "sonnet", "opus"}

// serveModels answers GET /v1/models with every model on one page.
func (s *Server) serveModels(w http.ResponseWriter, requestID string) {
	data := make([]object, len(s.opts.Models))
	for i, m := range s.opts.Models {
		data[i] = modelInfo(m)
	}
	var first, last any
	if n := len(s.opts.Models); n > 0 {
		first, last = s.opts.Models[0], s.opts.Models[n-1]
	}
	writeJSON(w, http.StatusOK, requestID, compactJSON(object{
		{"data", data},
		{"has_more", false},
		{"first_id", first},
		{"last_id", last},
	}))
}

// serveModel answers GET /v1/models/{model}: the ModelInfo, or 404
// not_found_error for a model not in Options.Models.
func (s *Server) serveModel(w http.ResponseWriter, requestID, model string) {
	if !slices.Contains(s.opts.Models, model) {
		writeError(w, requestID, apiError{status: http.StatusNotFound, typ: "not_found_error", message: "model: " + model})
		return
	}
	writeJSON(w, http.StatusOK, requestID, compactJSON(modelInfo(model)))
}

// modelInfo renders one ModelInfo. Everything but id, display_name and line
// is the same for every model.
func modelInfo(id string) object {
	var line any
	for _, l := range modelLines {
		if strings.Contains(id, "-"+l) {
			line = l
		}
	}
	yes := object{{"supported", true}}
	no := object{{"supported", false}}
	return object{
		{"type", "model"},
		{"id", id},
		{"display_name", displayName(id)},
		{"created_at", ModelCreatedAt},
		{"lifecycle", "active"},
		{"line", line},
		{"deprecated_at", nil},
		{"retires_at", nil},
		{"max_input_tokens", 200000},
		{"max_tokens", 64000},
		{"capabilities", object{
			{"batch", yes},
			{"citations", yes},
			{"code_execution", yes},
			{"context_management", object{
				{"clear_thinking_20251015", yes},
				{"clear_tool_uses_20250919", yes},
				{"compact_20260112", no},
				{"supported", true},
			}},
			{"effort", object{
				{"high", yes}, {"low", yes}, {"max", no}, {"medium", yes}, {"supported", true}, {"xhigh", nil},
			}},
			{"image_input", yes},
			{"pdf_input", yes},
			{"server_tools", object{{"code_execution", yes}, {"supported", true}, {"web_search", yes}}},
			{"structured_outputs", yes},
			{"thinking", object{
				{"supported", true},
				{"types", object{{"adaptive", no}, {"between_tools", no}, {"disabled", yes}, {"enabled", yes}}},
			}},
		}},
	}
}

// displayName turns "claude-sonnet-4-5" into "Claude Sonnet 4.5": words are
// capitalised and runs of numeric parts joined by dots.
func displayName(id string) string {
	var words []string
	for _, p := range strings.Split(id, "-") {
		if p == "" {
			continue
		}
		r, _ := utf8.DecodeRuneInString(p)
		if unicode.IsDigit(r) && len(words) > 0 {
			prev := words[len(words)-1]
			if pr, _ := utf8.DecodeRuneInString(prev); unicode.IsDigit(pr) && len(p) < 3 {
				words[len(words)-1] = prev + "." + p
				continue
			}
		}
		if len(p) >= 8 && unicode.IsDigit(r) {
			continue // a date suffix such as 20250929 is not part of the name
		}
		words = append(words, strings.ToUpper(p[:1])+p[1:])
	}
	return strings.Join(words, " ")
}
