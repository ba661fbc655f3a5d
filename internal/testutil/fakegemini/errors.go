package fakegemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// apiError is Google's error object: {"error": {"code", "message",
// "status", "details"}} with the HTTP status in code and the canonical
// gRPC status name in status.
type apiError struct {
	code    int
	status  string
	message string
	details []any
}

// MarshalJSON renders e wrapped in {"error": ...}, keys in Google's order.
func (e apiError) MarshalJSON() ([]byte, error) {
	type body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []any  `json:"details,omitempty"`
	}
	return json.Marshal(struct {
		Error body `json:"error"`
	}{body{e.code, e.message, e.status, e.details}})
}

// statusNames maps HTTP statuses to the canonical status names Google
// pairs them with.
var statusNames = map[int]string{
	http.StatusBadRequest:          "INVALID_ARGUMENT",
	http.StatusUnauthorized:        "UNAUTHENTICATED",
	http.StatusForbidden:           "PERMISSION_DENIED",
	http.StatusNotFound:            "NOT_FOUND",
	http.StatusConflict:            "ABORTED",
	http.StatusTooManyRequests:     "RESOURCE_EXHAUSTED",
	499:                            "CANCELLED",
	http.StatusInternalServerError: "INTERNAL",
	http.StatusNotImplemented:      "UNIMPLEMENTED",
	http.StatusServiceUnavailable:  "UNAVAILABLE",
	http.StatusGatewayTimeout:      "DEADLINE_EXCEEDED",
}

// errScripted is Google's error for a Behavior.Status (or a stream
// error's StreamErrorStatus) on rt's backend.
func errScripted(code int, rt route) apiError {
	e := apiError{code: code, status: statusNames[code]}
	if e.status == "" {
		e.status = "UNKNOWN"
		if code < 500 {
			e.status = "FAILED_PRECONDITION"
		}
	}
	vertex := rt.backend == BackendVertex
	switch code {
	case http.StatusBadRequest:
		e.message = "Request contains an invalid argument."
	case http.StatusUnauthorized:
		return errUnauthenticated()
	case http.StatusForbidden:
		e.message = "The caller does not have permission"
	case http.StatusNotFound:
		e.message = fmt.Sprintf("models/%s is not found for API version %s, or is not supported for generateContent. "+
			"Call ListModels to see the list of available models and their supported methods.", rt.model, rt.version)
		if vertex {
			e.message = fmt.Sprintf("Publisher Model `projects/%s/locations/%s/publishers/google/models/%s` was not found "+
				"or your project does not have access to it. Please ensure you are using a valid model version. "+
				"For more information, see: https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions",
				rt.project, rt.location, rt.model)
		}
	case http.StatusTooManyRequests:
		e.message = "You exceeded your current quota, please check your plan and billing details. " +
			"For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
		if vertex {
			e.message = "Resource exhausted. Please try again later. Please refer to " +
				"https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."
		}
	case http.StatusInternalServerError:
		e.message = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
		if vertex {
			e.message = "Internal error encountered."
		}
	case http.StatusServiceUnavailable:
		e.message = "The model is overloaded. Please try again later."
	case http.StatusGatewayTimeout:
		e.message = "Deadline expired before operation could complete."
	default:
		e.message = http.StatusText(code)
	}
	return e
}

func errUnauthenticated() apiError {
	return apiError{code: http.StatusUnauthorized, status: "UNAUTHENTICATED",
		message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other " +
			"valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."}
}

func errUnregisteredCaller() apiError {
	return apiError{code: http.StatusForbidden, status: "PERMISSION_DENIED",
		message: "Method doesn't allow unregistered callers (callers without established identity). " +
			"Please use API Key or other form of API consumer identity to call this API."}
}

// errAPIKeyInvalid is the Gemini API's answer to a wrong key: 400, not 401.
func errAPIKeyInvalid() apiError {
	return apiError{code: http.StatusBadRequest, status: "INVALID_ARGUMENT",
		message: "API key not valid. Please pass a valid API key.",
		details: []any{map[string]any{
			"@type":    "type.googleapis.com/google.rpc.ErrorInfo",
			"reason":   "API_KEY_INVALID",
			"domain":   "googleapis.com",
			"metadata": map[string]any{"service": "generativelanguage.googleapis.com"},
		}}}
}

func errInvalid(message string) *apiError {
	return &apiError{code: http.StatusBadRequest, status: "INVALID_ARGUMENT", message: message}
}

// writeError answers e indented, as Google does.
func writeError(w http.ResponseWriter, e apiError) {
	writeJSON(w, e.code, indentJSON(e))
}

// writeNotFoundPage answers an unknown path with a short version of the
// HTML page Google's frontend sends; it is not JSON.
func writeNotFoundPage(w http.ResponseWriter, path string) {
	body := "<!DOCTYPE html>\n<html lang=en>\n<title>Error 404 (Not Found)!!1</title>\n" +
		"<p><b>404.</b> <ins>That’s an error.</ins>\n<p>The requested URL <code>" + path +
		"</code> was not found on this server.  <ins>That’s all we know.</ins>\n"
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(body))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// compactJSON encodes v on one line without HTML escaping.
func compactJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only the package's own types and validated json.RawMessage reach
		// here; this is a programming error.
		panic("fakegemini: marshal: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// indentJSON encodes v indented by two spaces with a trailing newline.
func indentJSON(v any) []byte {
	var out bytes.Buffer
	if err := json.Indent(&out, compactJSON(v), "", "  "); err != nil {
		panic("fakegemini: indent: " + err.Error())
	}
	out.WriteByte('\n')
	return out.Bytes()
}
