package openai

import (
	"net/http"
	"strconv"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// errorType maps a kind to OpenAI's error "type" and a default "code".
func errorType(k apierr.Kind) (typ, code string) {
	switch k {
	case apierr.BadRequest:
		return "invalid_request_error", ""
	case apierr.TooLarge:
		return "invalid_request_error", "request_too_large"
	case apierr.NotFound:
		return "invalid_request_error", "model_not_found"
	case apierr.Unauthorized:
		return "invalid_request_error", "invalid_api_key"
	case apierr.Forbidden:
		return "permission_error", "model_not_allowed"
	case apierr.RateLimited:
		return "requests", "rate_limit_exceeded"
	case apierr.UpstreamTimeout:
		return "server_error", "upstream_timeout"
	case apierr.UpstreamUnavailable:
		return "server_error", "upstream_unavailable"
	}
	return "server_error", ""
}

// AppendError appends e as OpenAI's error object:
// {"error":{"message":...,"type":...,"param":...,"code":...}}.
func AppendError(b []byte, e *apierr.Error) []byte {
	typ, code := errorType(e.Kind)
	if e.Code != "" {
		code = e.Code
	}
	b = append(b, `{"error":{"message":`...)
	b = llm.AppendJSONString(b, e.Message)
	b = append(b, `,"type":`...)
	b = llm.AppendJSONString(b, typ)
	b = append(b, `,"param":`...)
	b = appendNullable(b, e.Param)
	b = append(b, `,"code":`...)
	b = appendNullable(b, code)
	return append(b, "}}"...)
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return llm.AppendJSONString(b, s)
}

// WriteError writes e as an OpenAI error response with e's status.
func WriteError(w http.ResponseWriter, e *apierr.Error) {
	body := AppendError(make([]byte, 0, 128+len(e.Message)), e)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if e.RetryAfter != "" {
		h.Set("Retry-After", e.RetryAfter)
	}
	status := e.Kind.Status()
	if e.Kind == apierr.ClientCanceled {
		status = http.StatusBadRequest // never seen by the client that left
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// AppendStreamError appends e as an SSE event in the form OpenAI uses for an
// error inside a stream: a data line holding the error object.
func AppendStreamError(b []byte, e *apierr.Error) []byte {
	b = append(b, "data: "...)
	b = AppendError(b, e)
	return append(b, "\n\n"...)
}
