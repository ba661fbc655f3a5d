package bedrock

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/multipolar/multipolar/internal/apierr"
)

// DecodeError maps a non-2xx Bedrock answer to an *apierr.Error. The error
// type comes from x-amzn-ErrorType ("ThrottlingException:http://internal…",
// the part after the colon is dropped as the AWS SDKs do), falling back to
// the status. Only validation messages are shown to clients, prefixed with
// the provider's name; authentication and authorization messages are never
// quoted (a signature mismatch echoes the canonical request), and Bedrock's
// message is kept as the cause, for logs.
func (p *Provider) DecodeError(resp *http.Response, body []byte) *apierr.Error {
	var e struct {
		Message string `json:"message"`
		// Message is "Message" in some frontend (Coral) errors.
		MessageUpper string `json:"Message"`
	}
	_ = json.Unmarshal(body, &e) // a non-JSON body leaves the message empty
	msg := e.Message
	if msg == "" {
		msg = e.MessageUpper
	}
	typ := resp.Header.Get("X-Amzn-Errortype")
	if i := strings.IndexByte(typ, ':'); i >= 0 {
		typ = typ[:i]
	}
	cause := fmt.Errorf("provider %q: status %d %s: %s", p.name, resp.StatusCode, typ, msg)
	kind, safe := p.classifyError(resp.StatusCode, typ, msg)
	ae := apierr.Wrap(kind, cause, safe)
	if kind == apierr.RateLimited {
		ae.RetryAfter = resp.Header.Get("Retry-After")
	}
	return ae
}

// classifyError returns the kind and client-safe message for an error type
// and status.
func (p *Provider) classifyError(status int, typ, msg string) (apierr.Kind, string) {
	switch typ {
	case "ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException":
		return apierr.RateLimited, "the upstream provider is rate limiting requests"
	case "ValidationException":
		return apierr.BadRequest, p.validationMessage(msg)
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
		"ExpiredTokenException", "IncompleteSignatureException", "MissingAuthenticationTokenException":
		return apierr.UpstreamUnavailable, "the upstream provider rejected the gateway's credentials"
	case "ResourceNotFoundException":
		return apierr.NotFound, "the model was not found at the upstream provider"
	case "ModelTimeoutException":
		return apierr.UpstreamTimeout, "the upstream model timed out"
	case "InternalServerException", "ServiceUnavailableException", "ModelNotReadyException", "ModelErrorException":
		return apierr.UpstreamUnavailable, "the upstream provider is not available"
	}
	switch {
	case status == http.StatusTooManyRequests:
		return apierr.RateLimited, "the upstream provider is rate limiting requests"
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
		return apierr.BadRequest, p.validationMessage(msg)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return apierr.UpstreamUnavailable, "the upstream provider rejected the gateway's credentials"
	case status == http.StatusNotFound:
		return apierr.NotFound, "the model was not found at the upstream provider"
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		return apierr.UpstreamTimeout, "the upstream model timed out"
	}
	return apierr.UpstreamUnavailable, "the upstream provider is not available"
}

// validationMessage is the client-facing text of a validation error:
// Bedrock's own words, which describe the client's request, under the
// provider's name.
func (p *Provider) validationMessage(msg string) string {
	if msg == "" {
		return p.name + ": the upstream provider rejected the request"
	}
	return p.name + ": " + msg
}
