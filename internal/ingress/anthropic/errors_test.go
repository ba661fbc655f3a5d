package anthropic

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

func TestWriteError(t *testing.T) {
	tests := []struct {
		err        *apierr.Error
		status     int
		typ        string
		retryAfter string
	}{
		{apierr.New(apierr.BadRequest, "bad \"json\"\n"), 400, "invalid_request_error", ""},
		{apierr.New(apierr.Unauthorized, "no key"), 401, "authentication_error", ""},
		{apierr.New(apierr.Forbidden, "not yours"), 403, "permission_error", ""},
		{apierr.New(apierr.NotFound, "no model"), 404, "not_found_error", ""},
		{apierr.New(apierr.TooLarge, "big"), 413, "request_too_large", ""},
		{&apierr.Error{Kind: apierr.RateLimited, Message: "slow", RetryAfter: "3"}, 429, "rate_limit_error", "3"},
		{apierr.New(apierr.Internal, "oops"), 500, "api_error", ""},
		{apierr.New(apierr.UpstreamUnavailable, "down"), 502, "api_error", ""},
		{apierr.New(apierr.UpstreamTimeout, "late"), 504, "timeout_error", ""},
		{apierr.New(apierr.UpstreamUnavailable, "busy").WithCode(CodeOverloaded), 529, "overloaded_error", ""},
		{apierr.New(apierr.ClientCanceled, "gone"), 400, "invalid_request_error", ""},
	}
	for _, tc := range tests {
		t.Run(tc.typ+"/"+tc.err.Kind.String(), func(t *testing.T) {
			rec := httptest.NewRecorder()
			WriteError(rec, tc.err)
			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q is not JSON: %v", rec.Body, err)
			}
			want := map[string]any{"type": "error", "error": map[string]any{"type": tc.typ, "message": tc.err.Message}, "request_id": nil}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("error body mismatch (-want +got):\n%s", diff)
			}
			if tc.status != 413 { // request_too_large is documented (docs.claude.com/en/api/errors) but absent from the spec's union
				oapispec.Anthropic(t).ValidateSchema(t, "ErrorResponse", rec.Body.Bytes())
			}
		})
	}
}

func TestAppendStreamError(t *testing.T) {
	got := string(AppendStreamError([]byte("x"), apierr.New(apierr.RateLimited, "slow")))
	want := "xevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow\"},\"request_id\":null}\n\n"
	if got != want {
		t.Errorf("AppendStreamError = %q, want %q", got, want)
	}
	if !strings.HasSuffix(got, "\n\n") {
		t.Error("stream error does not end the event")
	}
}
