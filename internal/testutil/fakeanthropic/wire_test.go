package fakeanthropic

import (
	"encoding/json"
	"github.com/multipolar/multipolar/internal/testutil/goldenfile"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/testutil/oapispec"
)

// post sends body to path with headers h and returns status, header and body.
func post(t *testing.T, url, path string, h map[string]string, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

var firstParty = map[string]string{"x-api-key": testKey, "anthropic-version": "2023-06-01", "content-type": "application/json"}

func TestRejects(t *testing.T) {
	const vpath = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5:rawPredict"
	vh := map[string]string{"Authorization": "Bearer " + vertexToken}
	msg := func(content string) string {
		return `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":` + content + `}]}`
	}
	for _, tc := range []struct {
		name, path string
		header     map[string]string
		body       string
		wantStatus int
		wantMsg    string
	}{
		{"no anthropic-version", "/v1/messages", map[string]string{"x-api-key": testKey}, msg(`"hi"`), 400, "anthropic-version: header is required"},
		{"no key", "/v1/messages", map[string]string{"anthropic-version": "2023-06-01"}, msg(`"hi"`), 401, "x-api-key header is required"},
		{"bad json", "/v1/messages", firstParty, `{`, 400, "There was an issue with the format of your request: the body must be a JSON object."},
		{"no max_tokens", "/v1/messages", firstParty, `{"model":"m","messages":[]}`, 400, "max_tokens: Field required"},
		{"no model", "/v1/messages", firstParty, `{"max_tokens":5,"messages":[]}`, 400, "model: Field required"},
		{"empty messages", "/v1/messages", firstParty, `{"model":"m","max_tokens":5,"messages":[]}`, 400, "messages: at least one message is required"},
		{"bad role", "/v1/messages", firstParty, `{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}`, 400,
			"messages.0.role: Input should be 'user' or 'assistant'"},
		{"bad media type", "/v1/messages", firstParty, msg(`[{"type":"image","source":{"type":"base64","media_type":"image/bmp","data":"AAAA"}}]`), 400,
			"messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"},
		{"bad base64", "/v1/messages", firstParty, msg(`[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"!!"}}]`), 400,
			"messages.0.content.0.image.source.base64.data: The image data is not valid base64"},
		{"bad url", "/v1/messages", firstParty, msg(`[{"type":"image","source":{"type":"url","url":"ftp://x"}}]`), 400,
			"messages.0.content.0.image.source.url.url: Input should be a valid URL"},
		{"tool_result no id", "/v1/messages", firstParty, msg(`[{"type":"tool_result","content":"x"}]`), 400,
			"messages.0.content.0.tool_result.tool_use_id: Field required"},
		{"tool_use from user", "/v1/messages", firstParty, msg(`[{"type":"tool_use","id":"t","name":"n","input":{}}]`), 400,
			"messages.0.content.0: tool_use blocks can only appear in assistant messages"},
		{"text without text", "/v1/messages", firstParty, msg(`[{"type":"text"}]`), 400, "messages.0.content.0.text.text: Field required"},
		{"tool without schema", "/v1/messages", firstParty, `{"model":"m","max_tokens":5,"tools":[{"name":"x"}],"messages":[{"role":"user","content":"hi"}]}`, 400,
			"tools.0.custom.input_schema: Field required"},
		{"unknown path", "/v1/nope", firstParty, `{}`, 404, "Not Found"},
		{"vertex model in body", vpath, vh, `{"anthropic_version":"vertex-2023-10-16","model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 400,
			"model: Extra inputs are not permitted"},
		{"vertex no version", vpath, vh, `{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 400, "anthropic_version: Field required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, ts := start(t, Options{APIKey: testKey, VertexToken: vertexToken, IDs: func() string { return fixedID }})
			status, header, body := post(t, ts.URL, tc.path, tc.header, tc.body)
			want := `{"type":"error","error":{"type":"` + errorType(tc.wantStatus) + `","message":` + string(mustJSON(t, tc.wantMsg)) +
				`},"request_id":"req_01FakeAnthropic0123456789"}`
			if status != tc.wantStatus || body != want {
				t.Errorf("POST %s = %d %s, want %d %s", tc.path, status, body, tc.wantStatus, want)
			}
			if header.Get("request-id") != "req_01FakeAnthropic0123456789" || header.Get("Content-Type") != "application/json" {
				t.Errorf("headers = %v", header)
			}
			if tc.path == "/v1/messages" {
				oapispec.Anthropic(t).ValidateResponse(t, "POST", tc.path, status, header, []byte(body))
			}
		})
	}
}

func TestVertexUnauthenticated(t *testing.T) {
	_, _, ts := start(t, Options{VertexToken: vertexToken})
	status, header, body := post(t, ts.URL, "/v1/projects/p/locations/global/publishers/anthropic/models/m:rawPredict",
		map[string]string{"Authorization": "Bearer wrong"}, `{}`)
	if status != 401 || body != googleUnauthenticated || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		t.Errorf("= %d %q %s, want 401 and Google's UNAUTHENTICATED body", status, header.Get("Content-Type"), body)
	}
}

// TestRequestTooLarge checks the 413 shape; the spec (which knows only
// invalid_request_error for 413) is not consulted, because the documented
// type is request_too_large (https://docs.claude.com/en/api/errors).
func TestRequestTooLarge(t *testing.T) {
	fake, _, ts := start(t, Options{IDs: func() string { return fixedID }})
	fake.Enqueue(Behavior{Status: 413})
	status, _, body := post(t, ts.URL, "/v1/messages", firstParty, `{}`)
	want := `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."},"request_id":"req_01FakeAnthropic0123456789"}`
	if status != 413 || body != want {
		t.Errorf("= %d %s, want 413 %s", status, body, want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGolden pins exact bytes against testdata. Refresh with -update and
// review the diff against captures from the real API.
func TestGolden(t *testing.T) {
	const body = `{"model":"claude-sonnet-4-5","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Say hello"}]`
	const tools = `,"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]`
	for _, tc := range []struct {
		file, body string
		behavior   Behavior
	}{
		{"message.json", body + `}`, Behavior{}},
		{"stream.sse", body + `,"stream":true}`, Behavior{}},
		{"tool_stream.sse", body + tools + `,"stream":true}`, Behavior{ToolCall: &ToolCall{Name: "get_weather", Input: json.RawMessage(`{"city":"Paris"}`)}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			fake, _, ts := start(t, Options{
				CacheReadTokens: 4,
				Now:             func() time.Time { return time.Unix(1735689600, 0) },
				IDs:             func() string { return fixedID },
			})
			fake.SetDefault(tc.behavior)
			status, header, got := post(t, ts.URL, "/v1/messages", firstParty, tc.body)
			if status != http.StatusOK {
				t.Fatalf("status = %d, body %s", status, got)
			}
			spec := oapispec.Anthropic(t)
			if strings.HasSuffix(tc.file, ".json") {
				spec.ValidateResponse(t, "POST", "/v1/messages", status, header, []byte(got))
			} else {
				for _, ev := range parseSSE(t, []byte(got)) {
					if ev.name != "ping" {
						spec.ValidateSchema(t, "MessageStreamEvent", ev.data)
					}
				}
			}
			path := filepath.Join("testdata", tc.file)
			goldenfile.Check(t, path, []byte(got))
		})
	}
}

func TestScripting(t *testing.T) {
	var arrived = make(chan Request, 4)
	srv, baseURL, shutdown, err := Listen("127.0.0.1:0", Options{OnRequest: func(r Request) { arrived <- r }})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown()
	srv.Enqueue(Behavior{Hang: true}, Behavior{Status: 529})
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, baseURL+"/v1/messages", strings.NewReader(`{}`))
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	srv.Close() // releases the hung handler by dropping its connection
	if err := <-done; err == nil {
		t.Error("hung request after Close: err = nil, want a dropped connection")
	}
	if status, _, _ := post(t, baseURL, "/v1/messages", firstParty, `{}`); status != 529 {
		t.Errorf("second request status = %d, want 529 (second Behavior)", status)
	}
	<-arrived
	if n := len(srv.Requests()); n != 2 {
		t.Errorf("len(Requests()) = %d, want 2", n)
	}
	srv.Reset()
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("after Reset len(Requests()) = %d, want 0", n)
	}
}
