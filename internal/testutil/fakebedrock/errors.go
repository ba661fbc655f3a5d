package fakebedrock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Error type namespaces Bedrock puts after the type in x-amzn-ErrorType:
// service errors live in com.amazon.bedrock, authentication errors in the
// shared Coral frontend (seen e.g. in
// aws-samples/amazon-bedrock-client-for-mac#11 and BerriAI/litellm#14763).
const (
	nsBedrock = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
	nsCoral   = ":http://internal.amazon.com/coral/com.amazon.coral.service/"
)

// apiError is one restJson1 error answer: HTTP status, the x-amzn-ErrorType
// type and namespace, and the {"message"} body.
type apiError struct {
	status  int
	typ     string
	ns      string // nsBedrock when empty
	message string
}

const (
	msgSignature = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgThrottling   = "Too many requests, please wait before trying again."
	msgValidation   = "Malformed input request, please reformat your input and try again."
	msgAccessDenied = "You don't have access to the model with the specified model ID."
	msgNotFound     = "Could not resolve the foundation model from the provided model identifier."
	msgInternal     = "The system encountered an unexpected error during processing. Try your request again."
	msgUnavailable  = "Bedrock is unable to process your request."
	msgModelTimeout = "Model has timed out in processing the request. Try your request again."
	msgModelError   = "The model returned an error. Try your request again."
	msgModelStream  = "The model encountered an error while streaming the response. Try your request again."
)

// errScripted is Bedrock's error for a Behavior.Status.
func errScripted(status int, model string) apiError {
	switch status {
	case http.StatusBadRequest:
		return apiError{status: status, typ: "ValidationException", message: msgValidation}
	case http.StatusForbidden:
		return apiError{status: status, typ: "AccessDeniedException", message: msgAccessDenied}
	case http.StatusNotFound:
		return apiError{status: status, typ: "ResourceNotFoundException", message: msgNotFound}
	case http.StatusRequestTimeout:
		return apiError{status: status, typ: "ModelTimeoutException", message: msgModelTimeout}
	case http.StatusFailedDependency:
		return apiError{status: status, typ: "ModelErrorException", message: msgModelError}
	case http.StatusTooManyRequests:
		return apiError{status: status, typ: "ThrottlingException", message: msgThrottling}
	case http.StatusInternalServerError:
		return apiError{status: status, typ: "InternalServerException", message: msgInternal}
	case http.StatusServiceUnavailable:
		return apiError{status: status, typ: "ServiceUnavailableException", message: msgUnavailable}
	}
	typ := "ValidationException"
	if status >= 500 {
		typ = "InternalServerException"
	}
	return apiError{status: status, typ: typ, message: fmt.Sprintf("%s (model %s)", http.StatusText(status), model)}
}

func errUnknownOperation() apiError {
	return apiError{status: http.StatusNotFound, typ: "UnknownOperationException", ns: nsCoral, message: "Unknown operation"}
}

func errValidation(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "ValidationException", message: message}
}

// streamException is the payload message of an in-stream exception.
func streamException(typ string) string {
	switch typ {
	case "throttlingException":
		return msgThrottling
	case "internalServerException":
		return msgInternal
	case "serviceUnavailableException":
		return msgUnavailable
	case "validationException":
		return msgValidation
	}
	return msgModelStream
}

// writeError answers e as Bedrock does: the type in x-amzn-ErrorType and a
// {"message"} body.
func writeError(w http.ResponseWriter, e apiError) {
	ns := e.ns
	if ns == "" {
		ns = nsBedrock
	}
	w.Header().Set("x-amzn-ErrorType", e.typ+ns)
	writeJSON(w, e.status, map[string]any{"message": e.message})
}

// writeJSON answers v as compact JSON with sorted keys.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body := marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// marshal encodes v compactly without HTML escaping; maps come out with
// sorted keys, which is the order Bedrock's serializer uses.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only maps, slices, strings, numbers and json.RawMessage validated
		// by parseConverse reach here; this is a programming error.
		panic("fakebedrock: marshal: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
