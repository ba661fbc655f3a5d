package gemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/multipolar/multipolar/internal/apierr"
)

// googleError is Google's error object, {"error": {...}}
// (https://cloud.google.com/apis/design/errors).
type googleError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []struct {
		Type       string `json:"@type"`
		Reason     string `json:"reason"`
		RetryDelay string `json:"retryDelay"`
	} `json:"details"`
}

// DecodeError maps a non-2xx answer to an *apierr.Error. The canonical
// status name decides the kind, the HTTP status when there is none:
//
//	RESOURCE_EXHAUSTED, 429                  RateLimited (Retry-After from the header or RetryInfo)
//	INVALID_ARGUMENT, FAILED_PRECONDITION, 400  BadRequest, Google's message prefixed with the provider
//	OUT_OF_RANGE                             BadRequest
//	UNAUTHENTICATED, PERMISSION_DENIED, 401, 403, API_KEY_INVALID
//	                                         UpstreamUnavailable: the gateway's credential, not the client's
//	NOT_FOUND, 404                           NotFound
//	413                                      TooLarge
//	DEADLINE_EXCEEDED, 504                   UpstreamTimeout
//	anything else (UNAVAILABLE, INTERNAL, 5xx) UpstreamUnavailable
func (p *Provider) DecodeError(resp *http.Response, body []byte) *apierr.Error {
	var ge googleError
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' { // streamGenerateContent without alt=sse wraps errors in an array
		var arr []struct {
			Error *googleError `json:"error"`
		}
		if json.Unmarshal(b, &arr) == nil && len(arr) > 0 && arr[0].Error != nil {
			ge = *arr[0].Error
		}
	} else {
		var w struct {
			Error *googleError `json:"error"`
		}
		if json.Unmarshal(b, &w) == nil && w.Error != nil {
			ge = *w.Error
		}
	}
	status, retryAfter := 0, ""
	if resp != nil {
		status = resp.StatusCode
		retryAfter = resp.Header.Get("Retry-After")
	}
	return p.apiError(&ge, status, retryAfter)
}

// apiError maps ge (with the HTTP status, 0 for an error inside a stream
// or body) to an *apierr.Error.
func (p *Provider) apiError(ge *googleError, status int, retryAfter string) *apierr.Error {
	if status == 0 {
		status = ge.Code
	}
	cause := fmt.Errorf("provider %q: upstream status %d %s: %s", p.name, status, ge.Status, ge.Message)
	var e *apierr.Error
	switch {
	case ge.hasReason("API_KEY_INVALID"), ge.Status == "UNAUTHENTICATED", ge.Status == "PERMISSION_DENIED",
		ge.Status == "" && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		e = apierr.Wrap(apierr.UpstreamUnavailable, cause, fmt.Sprintf("provider %q rejected the gateway's credentials", p.name))
	case ge.Status == "RESOURCE_EXHAUSTED", status == http.StatusTooManyRequests:
		e = apierr.Wrap(apierr.RateLimited, cause, fmt.Sprintf("provider %q is rate limiting requests; retry later", p.name))
	case ge.Status == "INVALID_ARGUMENT", ge.Status == "FAILED_PRECONDITION", ge.Status == "OUT_OF_RANGE",
		ge.Status == "" && status == http.StatusBadRequest:
		msg := strings.TrimSpace(ge.Message)
		if msg == "" {
			msg = "the request was rejected"
		}
		e = apierr.Wrap(apierr.BadRequest, cause, fmt.Sprintf("provider %q: %s", p.name, msg))
	case ge.Status == "NOT_FOUND", status == http.StatusNotFound:
		e = apierr.Wrap(apierr.NotFound, cause, fmt.Sprintf("provider %q does not serve the requested model", p.name)).WithCode("model_not_found")
	case status == http.StatusRequestEntityTooLarge:
		e = apierr.Wrap(apierr.TooLarge, cause, fmt.Sprintf("the request is too large for provider %q", p.name))
	case ge.Status == "DEADLINE_EXCEEDED", status == http.StatusGatewayTimeout:
		e = apierr.Wrap(apierr.UpstreamTimeout, cause, fmt.Sprintf("provider %q timed out", p.name))
	default:
		e = apierr.Wrap(apierr.UpstreamUnavailable, cause, fmt.Sprintf("provider %q is unavailable", p.name))
	}
	if retryAfter == "" {
		retryAfter = ge.retryDelay()
	}
	e.RetryAfter = retryAfter
	return e
}

func (ge *googleError) hasReason(reason string) bool {
	for _, d := range ge.Details {
		if d.Reason == reason {
			return true
		}
	}
	return false
}

// retryDelay returns google.rpc.RetryInfo's retryDelay ("12s", "1.5s", a
// protobuf Duration in JSON) as whole seconds for Retry-After, rounded up.
func (ge *googleError) retryDelay() string {
	for _, d := range ge.Details {
		if !strings.HasSuffix(d.Type, "google.rpc.RetryInfo") || d.RetryDelay == "" {
			continue
		}
		dur, err := time.ParseDuration(d.RetryDelay)
		if err != nil || dur < 0 {
			return ""
		}
		return strconv.FormatInt(int64(math.Ceil(dur.Seconds())), 10)
	}
	return ""
}
