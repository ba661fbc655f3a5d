package openai

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/multipolar/multipolar/internal/apierr"
)

// DecodeError maps a non-2xx OpenAI or Azure OpenAI answer to an
// *apierr.Error. The kind follows the status:
//
//	400, other 4xx  BadRequest        (upstream message, prefixed)
//	401, 403        UpstreamUnavailable, generic message: the upstream
//	                refused the gateway's credentials, a provider fault; its
//	                message may quote part of the key, so it is not shown
//	404             NotFound          (upstream message, prefixed)
//	408, 504        UpstreamTimeout   (generic)
//	413             TooLarge          (upstream message, prefixed)
//	429             RateLimited, RetryAfter from retry-after-ms or
//	                Retry-After in whole seconds, rounded up; but
//	                code insufficient_quota (the gateway's account is out
//	                of credit) is UpstreamUnavailable, generic
//	5xx             UpstreamUnavailable (generic)
//
// 4xx messages are the upstream's error.message prefixed with the provider
// name: they describe the client's request and are safe to show. The
// upstream's body is kept in Cause (except for auth failures) for logs.
func (p *Provider) DecodeError(resp *http.Response, body []byte) *apierr.Error {
	var w struct {
		Error *wireError `json:"error"`
	}
	_ = json.Unmarshal(body, &w)
	var we wireError
	if w.Error != nil {
		we = *w.Error
	}
	status := resp.StatusCode
	cause := fmt.Errorf("provider %q: status %d: %s", p.name, status, truncate(we.Message, 512))
	clientMsg := func() string {
		if we.Message == "" {
			return fmt.Sprintf("provider %q: %s", p.name, http.StatusText(status))
		}
		return fmt.Sprintf("provider %q: %s", p.name, we.Message)
	}
	var e *apierr.Error
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// Not even the cause quotes the message: it may hold part of a key.
		return &apierr.Error{
			Kind:    apierr.UpstreamUnavailable,
			Message: fmt.Sprintf("provider %q rejected the gateway's credentials", p.name),
			Cause:   fmt.Errorf("provider %q: status %d, type %q, code %v", p.name, status, we.Type, we.Code),
		}
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		e = &apierr.Error{Kind: apierr.UpstreamTimeout, Message: fmt.Sprintf("provider %q timed out", p.name)}
	case status == http.StatusTooManyRequests:
		if code, _ := we.Code.(string); code == "insufficient_quota" {
			e = &apierr.Error{Kind: apierr.UpstreamUnavailable, Message: fmt.Sprintf("provider %q is out of quota", p.name)}
			break
		}
		e = &apierr.Error{Kind: apierr.RateLimited, Message: clientMsg(), RetryAfter: retryAfter(resp.Header)}
	case status == http.StatusNotFound:
		e = &apierr.Error{Kind: apierr.NotFound, Message: clientMsg()}
	case status == http.StatusRequestEntityTooLarge:
		e = &apierr.Error{Kind: apierr.TooLarge, Message: clientMsg()}
	case status >= 500:
		e = &apierr.Error{Kind: apierr.UpstreamUnavailable, Message: fmt.Sprintf("provider %q is unavailable (status %d)", p.name, status)}
	default:
		e = &apierr.Error{Kind: apierr.BadRequest, Message: clientMsg()}
		if param, ok := we.Param.(string); ok {
			e.Param = param
		}
	}
	if code, ok := we.Code.(string); ok && e.Kind != apierr.UpstreamUnavailable && !isDigits(code) {
		e.Code = code // OpenAI's codes; Azure's numeric codes only repeat the status
	}
	e.Cause = cause
	return e
}

// retryAfter returns the Retry-After value to pass on, in whole seconds:
// retry-after-ms (OpenAI, Azure) rounded up, else Retry-After as seconds or
// an HTTP date. "" when neither is usable.
func retryAfter(h http.Header) string {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 && !math.IsInf(ms, 0) {
			return strconv.FormatInt(int64(math.Ceil(ms/1000)), 10)
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return ""
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 && !math.IsInf(s, 0) {
		return strconv.FormatInt(int64(math.Ceil(s)), 10)
	}
	if t, err := http.ParseTime(v); err == nil {
		d := time.Until(t)
		if d < 0 {
			d = 0
		}
		return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
	}
	return ""
}

// streamError maps an error object sent inside a stream. Its type decides
// the kind; only client errors show the upstream's message.
func (p *Provider) streamError(we *wireError) *apierr.Error {
	code, _ := we.Code.(string)
	cause := fmt.Errorf("provider %q: stream error: type %q code %q: %s", p.name, we.Type, code, truncate(we.Message, 512))
	switch {
	case we.Type == "invalid_request_error":
		return &apierr.Error{Kind: apierr.BadRequest, Message: fmt.Sprintf("provider %q: %s", p.name, we.Message), Cause: cause}
	case code == "rate_limit_exceeded" || we.Type == "requests" || we.Type == "tokens":
		return &apierr.Error{Kind: apierr.RateLimited, Message: fmt.Sprintf("provider %q: %s", p.name, we.Message), Cause: cause}
	}
	return &apierr.Error{Kind: apierr.UpstreamUnavailable, Message: fmt.Sprintf("provider %q failed mid-stream", p.name), Cause: cause}
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
