package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/multipolar/multipolar/internal/server"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

// FuzzChatEndpoint posts arbitrary bytes to /v1/chat/completions and
// checks that the gateway never answers 500 and that every error is a
// well-formed OpenAI error object.
func FuzzChatEndpoint(f *testing.F) {
	u := fakeupstream.New(fakeupstream.Options{})
	up := httptest.NewServer(u)
	f.Cleanup(up.Close)
	f.Cleanup(u.Close)
	cfg := parseConfig(f, fmt.Sprintf(`
server:
  max_body: 4KiB
providers:
  - {name: compat, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [compat]}
  - {name: llama, routes: [{provider: compat, model: upstream-llama}]}
`+keysYAML, up.URL))
	srv, err := server.New(server.Options{Config: cfg})
	if err != nil {
		f.Fatal(err)
	}
	gw := httptest.NewServer(srv)
	f.Cleanup(gw.Close)

	for _, seed := range []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"llama","messages":[{"role":"user","content":"hi"}]}`,
		`{"mod\u0065l":"gpt-4o","messages":[]}`,
		`{"model":"gpt-4o","stream":"yes"}`,
		`{"model":"gpt-4o","stream_options":null,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":123}`,
		`{"model":""}`,
		`{"model":"\u0000\ud800"}`,
		"{\"model\":\"\xff\xfe\"}",
		`{"model":"text-embedding-3-small"}`,
		`[]`,
		`null`,
		` `,
		``,
		`{"model":"gpt-4o",`,
		`{"model":"gpt-4o"}{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := http.NewRequest(http.MethodPost, gw.URL+"/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+keyGPT)
		req.Header.Set("Content-Type", "application/json")
		resp, err := gw.Client().Do(req)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("read body: %v", err)
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("POST %q = %d %s, want no server error", body, resp.StatusCode, got)
		}
		if resp.StatusCode < 400 {
			return
		}
		if !utf8.Valid(got) {
			t.Errorf("POST %q = %d with a body that is not UTF-8: %q", body, resp.StatusCode, got)
		}
		var e struct {
			Error *struct {
				Message *string `json:"message"`
				Type    *string `json:"type"`
				Param   *string `json:"param"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(got, &e); err != nil {
			t.Fatalf("POST %q = %d %q: body is not JSON: %v", body, resp.StatusCode, got, err)
		}
		if e.Error == nil || e.Error.Message == nil || e.Error.Type == nil || *e.Error.Type == "" {
			t.Errorf("POST %q = %d %s, want OpenAI's {\"error\":{\"message\",\"type\",\"param\",\"code\"}}", body, resp.StatusCode, got)
		}
		var raw map[string]map[string]json.RawMessage
		if json.Unmarshal(got, &raw) == nil {
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := raw["error"][k]; !ok {
					t.Errorf("POST %q = %d %s: error object lacks %q", body, resp.StatusCode, got, k)
				}
			}
		}
	})
}
