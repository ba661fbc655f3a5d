package openai

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/apierr"
)

func TestWriteError(t *testing.T) {
	tests := []struct {
		err        *apierr.Error
		status     int
		typ        string
		code       any
		param      any
		retryAfter string
	}{
		{apierr.New(apierr.BadRequest, "bad \"json\"\n"), 400, "invalid_request_error", nil, nil, ""},
		{apierr.New(apierr.NotFound, "no model").WithParam("model"), 404, "invalid_request_error", "model_not_found", "model", ""},
		{apierr.New(apierr.Unauthorized, "no key"), 401, "invalid_request_error", "invalid_api_key", nil, ""},
		{apierr.New(apierr.Forbidden, "not yours"), 403, "permission_error", "model_not_allowed", nil, ""},
		{apierr.New(apierr.TooLarge, "big"), 413, "invalid_request_error", "request_too_large", nil, ""},
		{&apierr.Error{Kind: apierr.RateLimited, Message: "slow", RetryAfter: "3"}, 429, "requests", "rate_limit_exceeded", nil, "3"},
		{apierr.New(apierr.UpstreamTimeout, "late"), 504, "server_error", "upstream_timeout", nil, ""},
		{apierr.New(apierr.UpstreamUnavailable, "down"), 502, "server_error", "upstream_unavailable", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.err.Kind.String(), func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tc.err)
			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			var got struct {
				Error map[string]any `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q is not JSON: %v", rec.Body, err)
			}
			want := map[string]any{"message": tc.err.Message, "type": tc.typ, "code": tc.code, "param": tc.param}
			if diff := cmp.Diff(want, got.Error); diff != "" {
				t.Errorf("error object mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
