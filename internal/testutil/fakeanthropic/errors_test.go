package fakeanthropic

import (
	"errors"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
)

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		key        string
		behavior   Behavior
		wantStatus int
		wantType   string
	}{
		{name: "400 scripted", key: testKey, behavior: Behavior{Status: 400}, wantStatus: 400, wantType: "invalid_request_error"},
		{name: "401 wrong key", key: "sk-ant-wrong", wantStatus: 401, wantType: "authentication_error"},
		{name: "403", key: testKey, behavior: Behavior{Status: 403}, wantStatus: 403, wantType: "permission_error"},
		{name: "404", key: testKey, behavior: Behavior{Status: 404}, wantStatus: 404, wantType: "not_found_error"},
		{name: "429 retry-after", key: testKey, behavior: Behavior{Status: 429, RetryAfter: "17"}, wantStatus: 429, wantType: "rate_limit_error"},
		{name: "500", key: testKey, behavior: Behavior{Status: 500}, wantStatus: 500, wantType: "api_error"},
		{name: "529", key: testKey, behavior: Behavior{Status: 529}, wantStatus: 529, wantType: "overloaded_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, rec, ts := start(t, Options{APIKey: testKey, IDs: func() string { return fixedID }})
			fake.Enqueue(tc.behavior)
			client := sdkClient(ts, tc.key)
			_, err := client.Messages.New(t.Context(), textParams())
			apiErr, ok := errors.AsType[*anthropic.Error](err)
			if !ok {
				t.Fatalf("Messages.New error = %v, want *anthropic.Error", err)
			}
			if apiErr.StatusCode != tc.wantStatus || string(apiErr.Type()) != tc.wantType {
				t.Errorf("StatusCode, Type() = %d %q, want %d %q", apiErr.StatusCode, apiErr.Type(), tc.wantStatus, tc.wantType)
			}
			if apiErr.RequestID != "req_01FakeAnthropic0123456789" {
				t.Errorf("RequestID = %q", apiErr.RequestID)
			}
			if got := apiErr.Response.Header.Get("retry-after"); got != tc.behavior.RetryAfter {
				t.Errorf("retry-after = %q, want %q", got, tc.behavior.RetryAfter)
			}
			validateAll(t, fake, rec)
		})
	}
}

func TestStreamFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		behavior Behavior
		wantErr  string
	}{
		{"in-stream error", Behavior{StreamErrorAfter: 2}, "overloaded_error"},
		{"cut", Behavior{CutAfter: 2}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, rec, ts := start(t, Options{APIKey: testKey})
			fake.Enqueue(tc.behavior)
			client := sdkClient(ts, testKey)
			msg, types, err := accumulate(t, client.Messages.NewStreaming(t.Context(), textParams()))
			if err == nil {
				t.Fatalf("stream Err() = nil after %v, want an error", types)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("stream Err() = %v, want it to mention %q", err, tc.wantErr)
			}
			if tc.wantErr != "" {
				if _, ok := errors.AsType[*anthropic.Error](err); !ok {
					t.Errorf("stream Err() = %T, want *anthropic.Error", err)
				}
			}
			if got, want := msg.Content[0].Text, strings.Join(splitContent(DefaultContent, 5)[:2], ""); got != want {
				t.Errorf("text before failure = %q, want %q", got, want)
			}
			if tc.wantErr != "" {
				validateAll(t, fake, rec)
			}
		})
	}
}
