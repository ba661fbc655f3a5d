package fakeanthropic

import "strings"

// operation is what a path asks for.
type operation int

const (
	opMessages operation = iota + 1
	opCountTokens
	opModels
	opModel
)

// route is a recognised path.
type route struct {
	op operation
	// vertex is set for Claude-on-Vertex paths.
	vertex bool
	// model is the model named by the path: Vertex rawPredict paths and
	// GET /v1/models/{model}.
	model string
}

// parseRoute recognises the first-party and Vertex paths listed in the
// package comment.
func parseRoute(path string) (route, bool) {
	switch path {
	case "/v1/messages":
		return route{op: opMessages}, true
	case "/v1/messages/count_tokens":
		return route{op: opCountTokens}, true
	case "/v1/models":
		return route{op: opModels}, true
	}
	if id, ok := strings.CutPrefix(path, "/v1/models/"); ok && id != "" && !strings.Contains(id, "/") {
		return route{op: opModel, model: id}, true
	}
	return parseVertexRoute(path)
}

// parseVertexRoute recognises
// /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{model}:{method}.
func parseVertexRoute(path string) (route, bool) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 9 || parts[0] != "v1" || parts[1] != "projects" || parts[3] != "locations" ||
		parts[5] != "publishers" || parts[6] != "anthropic" || parts[7] != "models" || parts[2] == "" || parts[4] == "" {
		return route{}, false
	}
	model, method, ok := strings.Cut(parts[8], ":")
	if !ok || model == "" {
		return route{}, false
	}
	switch {
	case model == "count-tokens" && method == "rawPredict":
		return route{op: opCountTokens, vertex: true}, true
	case method == "rawPredict", method == "streamRawPredict":
		// Whether to stream follows the body's "stream", which Vertex passes
		// to Anthropic unchanged; the two methods differ only in how Google's
		// frontend buffers the answer.
		return route{op: opMessages, vertex: true, model: model}, true
	}
	return route{}, false
}
