package anthropic

import (
	"net/http"
	"strconv"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// CodeOverloaded is the apierr.Error Code that renders as Anthropic's 529
// overloaded_error. The kind stays UpstreamUnavailable, so other ingresses
// render it as their 502; only this schema has a status for "overloaded".
const CodeOverloaded = apierr.CodeOverloaded

// StatusOverloaded is Anthropic's non-standard HTTP status for overload.
const StatusOverloaded = 529

// errorStatus maps e to the HTTP status and Anthropic error type clients
// expect (https://docs.claude.com/en/api/errors). The SDKs pick their typed
// error by status, so the status matters more than the type string.
func errorStatus(e *apierr.Error) (status int, typ string) {
	if e.Code == CodeOverloaded {
		return StatusOverloaded, "overloaded_error"
	}
	switch e.Kind {
	case apierr.BadRequest:
		return http.StatusBadRequest, "invalid_request_error"
	case apierr.Unauthorized:
		return http.StatusUnauthorized, "authentication_error"
	case apierr.Forbidden:
		return http.StatusForbidden, "permission_error"
	case apierr.NotFound:
		return http.StatusNotFound, "not_found_error"
	case apierr.TooLarge:
		return http.StatusRequestEntityTooLarge, "request_too_large"
	case apierr.RateLimited:
		return http.StatusTooManyRequests, "rate_limit_error"
	case apierr.ClientCanceled:
		return http.StatusBadRequest, "invalid_request_error" // never seen by the client that left
	case apierr.UpstreamTimeout:
		// Anthropic's own 504 type; the status stays the gateway's.
		return http.StatusGatewayTimeout, "timeout_error"
	case apierr.UpstreamUnavailable:
		return http.StatusBadGateway, "api_error"
	}
	return http.StatusInternalServerError, "api_error"
}

// AppendError appends e as Anthropic's error body:
// {"type":"error","error":{"type":...,"message":...},"request_id":null}.
func AppendError(b []byte, e *apierr.Error) []byte {
	_, typ := errorStatus(e)
	b = append(b, `{"type":"error","error":{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","message":`...)
	b = llm.AppendJSONString(b, e.Message)
	return append(b, `},"request_id":null}`...)
}

// WriteError writes e as an Anthropic error response, with Retry-After
// when e carries one.
func WriteError(w http.ResponseWriter, e *apierr.Error) {
	status, _ := errorStatus(e)
	body := AppendError(make([]byte, 0, 96+len(e.Message)), e)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if e.RetryAfter != "" {
		h.Set("Retry-After", e.RetryAfter)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// AppendStreamError appends e as the SSE error event Anthropic sends
// inside a stream: "event: error\ndata: {...}\n\n".
func AppendStreamError(b []byte, e *apierr.Error) []byte {
	b = append(b, "event: error\ndata: "...)
	b = AppendError(b, e)
	return append(b, "\n\n"...)
}
