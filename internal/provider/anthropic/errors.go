package anthropic

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/multipolar/multipolar/internal/apierr"
)

// CodeOverloaded is set as apierr.Error.Code on Anthropic's overload
// (HTTP 529, overloaded_error), so an Anthropic ingress can answer 529.
const CodeOverloaded = "overloaded_error"

// StatusOverloaded is Anthropic's overload status.
const StatusOverloaded = 529

// DecodeError maps a non-2xx answer to an *apierr.Error:
//
//	429          RateLimited, RetryAfter from retry-after (or retry-after-ms)
//	529          UpstreamUnavailable with Code CodeOverloaded: the engine fails over
//	401, 403     UpstreamUnavailable with a generic message: the upstream's
//	             wording about the gateway's key never reaches a client
//	400, other   BadRequest, the upstream's message prefixed by the provider
//	404          NotFound, likewise
//	413          TooLarge, likewise
//	408, 504     UpstreamTimeout
//	5xx          UpstreamUnavailable
//
// The upstream's full answer is kept as the cause, for logs.
func (p *Provider) DecodeError(resp *http.Response, body []byte) *apierr.Error {
	var w wireError
	_ = json.Unmarshal(body, &w) // an unparsable body still maps by status
	msg := w.Error.Message
	cause := fmt.Errorf("anthropic HTTP %d %s: %s", resp.StatusCode, w.Error.Type, truncate(msg))
	status := resp.StatusCode
	if w.Error.Type == "overloaded_error" {
		status = StatusOverloaded
	}
	var e *apierr.Error
	switch {
	case status == http.StatusTooManyRequests:
		e = apierr.Wrap(apierr.RateLimited, cause, fmt.Sprintf("provider %q is rate limited", p.name))
		e.RetryAfter = retryAfter(resp.Header)
	case status == StatusOverloaded:
		e = apierr.Wrap(apierr.UpstreamUnavailable, cause, fmt.Sprintf("provider %q is overloaded", p.name))
		e.Code = CodeOverloaded
		e.RetryAfter = retryAfter(resp.Header)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e = apierr.Wrap(apierr.UpstreamUnavailable, cause, fmt.Sprintf("provider %q rejected the gateway's credentials", p.name))
	case status == http.StatusNotFound:
		e = apierr.Wrap(apierr.NotFound, cause, p.prefixed(msg, "not found"))
	case status == http.StatusRequestEntityTooLarge:
		e = apierr.Wrap(apierr.TooLarge, cause, p.prefixed(msg, "request too large"))
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		e = apierr.Wrap(apierr.UpstreamTimeout, cause, fmt.Sprintf("provider %q timed out", p.name))
	case status >= 500:
		e = apierr.Wrap(apierr.UpstreamUnavailable, cause, fmt.Sprintf("provider %q failed (HTTP %d)", p.name, status))
	default:
		e = apierr.Wrap(apierr.BadRequest, cause, p.prefixed(msg, "invalid request"))
	}
	return e
}

func (p *Provider) prefixed(msg, fallback string) string {
	if msg == "" {
		msg = fallback
	}
	return p.name + ": " + msg
}

// streamError maps an in-stream error event, whose status is implied by
// its type.
func (p *Provider) streamError(typ, msg string) *apierr.Error {
	status := http.StatusInternalServerError
	switch typ {
	case "invalid_request_error":
		status = http.StatusBadRequest
	case "authentication_error":
		status = http.StatusUnauthorized
	case "permission_error", "billing_error":
		status = http.StatusForbidden
	case "not_found_error":
		status = http.StatusNotFound
	case "request_too_large":
		status = http.StatusRequestEntityTooLarge
	case "rate_limit_error":
		status = http.StatusTooManyRequests
	case "timeout_error":
		status = http.StatusGatewayTimeout
	case "overloaded_error":
		status = StatusOverloaded
	}
	body, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
	return p.DecodeError(&http.Response{StatusCode: status, Header: http.Header{}}, body)
}

func truncate(s string) string {
	if len(s) > 512 {
		return s[:512] + "…"
	}
	return s
}

// retryAfter reads retry-after (seconds or an HTTP date) or retry-after-ms,
// in whole seconds rounded up.
func retryAfter(h http.Header) string {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return strconv.Itoa(n)
		}
		if t, err := http.ParseTime(v); err == nil {
			d := max(time.Until(t), 0)
			return strconv.Itoa(int((d + time.Second - 1) / time.Second))
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return strconv.Itoa(int((ms + 999) / 1000))
		}
	}
	return ""
}
