package openai

import (
	"net/http"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/apierr"
)

func TestDecodeError(t *testing.T) {
	p := newProvider(t, Options{Name: "oai"})
	const openaiBody = `{"error":{"message":"Invalid value for 'temperature'.","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`
	tests := []struct {
		name             string
		status           int
		header           http.Header
		body             string
		kind             apierr.Kind
		msg, param, code string
		retryAfter       string
		mustNotContain   string
	}{
		{"bad request", 400, nil, openaiBody, apierr.BadRequest, `provider "oai": Invalid value for 'temperature'.`, "temperature", "invalid_value", "", ""},
		{"unprocessable", 422, nil, `{"error":{"message":"nope"}}`, apierr.BadRequest, `provider "oai": nope`, "", "", "", ""},
		{"auth", 401, nil, `{"error":{"message":"Incorrect API key provided: sk-abc***wxyz.","type":"invalid_request_error","code":"invalid_api_key"}}`,
			apierr.UpstreamUnavailable, `provider "oai" rejected the gateway's credentials`, "", "", "", "sk-abc"},
		{"azure auth", 401, nil, `{"error":{"code":"401","message":"Access denied due to invalid subscription key"}}`,
			apierr.UpstreamUnavailable, `provider "oai" rejected the gateway's credentials`, "", "", "", "subscription"},
		{"forbidden", 403, nil, `{"error":{"message":"key sk-1 is restricted"}}`, apierr.UpstreamUnavailable, `provider "oai" rejected the gateway's credentials`, "", "", "", "sk-1"},
		{"not found", 404, nil, `{"error":{"message":"The model ` + "`x`" + ` does not exist","type":"invalid_request_error","code":"model_not_found"}}`,
			apierr.NotFound, "provider \"oai\": The model `x` does not exist", "", "model_not_found", "", ""},
		{"azure not found", 404, nil, `{"error":{"code":"404","message": "Resource not found"}}`, apierr.NotFound, `provider "oai": Resource not found`, "", "", "", ""},
		{"too large", 413, nil, `{"error":{"message":"too big"}}`, apierr.TooLarge, `provider "oai": too big`, "", "", "", ""},
		{"rate limited seconds", 429, http.Header{"Retry-After": {"20"}}, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`,
			apierr.RateLimited, `provider "oai": Rate limit reached`, "", "rate_limit_exceeded", "20", ""},
		{"rate limited ms rounds up", 429, http.Header{"Retry-After": {"1"}, "Retry-After-Ms": {"1500"}}, `{"error":{"code":"429","message":"Requests exceeded"}}`,
			apierr.RateLimited, `provider "oai": Requests exceeded`, "", "", "2", ""},
		{"rate limited fractional", 429, http.Header{"Retry-After": {"0.2"}}, `{}`, apierr.RateLimited, `provider "oai": Too Many Requests`, "", "", "1", ""},
		{"quota", 429, nil, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`,
			apierr.UpstreamUnavailable, `provider "oai" is out of quota`, "", "", "", ""},
		{"timeout", 408, nil, ``, apierr.UpstreamTimeout, `provider "oai" timed out`, "", "", "", ""},
		{"gateway timeout", 504, nil, `<html>`, apierr.UpstreamTimeout, `provider "oai" timed out`, "", "", "", ""},
		{"server error", 500, nil, `{"error":{"message":"Traceback at /srv/internal.py","type":"server_error"}}`,
			apierr.UpstreamUnavailable, `provider "oai" is unavailable (status 500)`, "", "", "", ""},
		{"overloaded", 503, nil, `not json`, apierr.UpstreamUnavailable, `provider "oai" is unavailable (status 503)`, "", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			e := p.DecodeError(&http.Response{StatusCode: tc.status, Header: h}, []byte(tc.body))
			if e.Kind != tc.kind || e.Message != tc.msg || e.Param != tc.param || e.Code != tc.code || e.RetryAfter != tc.retryAfter {
				t.Errorf("DecodeError(%d, %s) = {%v %q param %q code %q retry %q}, want {%v %q param %q code %q retry %q}",
					tc.status, tc.body, e.Kind, e.Message, e.Param, e.Code, e.RetryAfter, tc.kind, tc.msg, tc.param, tc.code, tc.retryAfter)
			}
			if tc.mustNotContain != "" && strings.Contains(e.Error(), tc.mustNotContain) {
				t.Errorf("DecodeError(%d).Error() = %q, must not quote %q", tc.status, e.Error(), tc.mustNotContain)
			}
		})
	}
}
