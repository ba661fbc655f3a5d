package fakeanthropic

import (
	"net/http"
	"strconv"
)

// apiError is one error answer in Anthropic's schema.
type apiError struct {
	status  int
	typ     string
	message string
}

// errInvalid is a 400 invalid_request_error with message.
func errInvalid(message string) apiError {
	return apiError{status: http.StatusBadRequest, typ: "invalid_request_error", message: message}
}

// errorType maps a status to Anthropic's error type, as
// https://docs.claude.com/en/api/errors lists them: other 4xx statuses use
// invalid_request_error and other 5xx statuses api_error.
func errorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// errScripted is the error answered for a Behavior.Status; model is the
// requested model, named in the 404 message as the API does.
func errScripted(status int, model string) apiError {
	e := apiError{status: status, typ: errorType(status)}
	switch status {
	case http.StatusBadRequest:
		e.message = "Invalid request"
	case http.StatusUnauthorized:
		e.message = "invalid x-api-key"
	case http.StatusForbidden:
		e.message = "Your API key does not have permission to use the specified resource."
	case http.StatusNotFound:
		e.message = "model: " + model
	case http.StatusRequestEntityTooLarge:
		e.message = "Request exceeds the maximum allowed number of bytes."
	case http.StatusTooManyRequests:
		e.message = "This request would exceed the rate limit for your organization of 50 requests per minute. " +
			"For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. " +
			"Please reduce the prompt length or the maximum tokens requested, or try again later. " +
			"You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase."
	case http.StatusInternalServerError:
		e.message = "Internal server error"
	case 529:
		e.message = "Overloaded"
	default:
		e.message = http.StatusText(status)
		if e.message == "" {
			e.message = "Error"
		}
	}
	return e
}

// errorBody renders {"type":"error","error":{...},"request_id":...}.
func errorBody(e apiError, requestID string) []byte {
	return compactJSON(object{
		{"type", "error"},
		{"error", object{{"type", e.typ}, {"message", e.message}}},
		{"request_id", requestID},
	})
}

// writeError answers e with the request-id header and body.
func writeError(w http.ResponseWriter, requestID string, e apiError) {
	writeJSON(w, e.status, requestID, errorBody(e, requestID))
}

// googleUnauthenticated is the body Google's frontend sends for a missing or
// bad OAuth token on aiplatform.googleapis.com.
const googleUnauthenticated = `{
  "error": {
    "code": 401,
    "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    "status": "UNAUTHENTICATED"
  }
}
`

// writeGoogleUnauthenticated answers a Vertex authentication failure as
// Google does, before the request reaches Anthropic.
func writeGoogleUnauthenticated(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(googleUnauthenticated)))
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(googleUnauthenticated))
}

// writeJSON answers body with status, Content-Type and the request-id header
// every Anthropic response carries.
func writeJSON(w http.ResponseWriter, status int, requestID string, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", requestID)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
