package gemini

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/testutil/fakegemini"
)

func TestRefusals(t *testing.T) {
	p := newGemini(t, "")
	user := func(parts ...llm.Part) []llm.Message {
		return []llm.Message{{Role: llm.RoleUser, Content: parts}}
	}
	text := llm.Part{Type: llm.PartText, Text: "hi"}
	for _, tc := range []struct {
		name string
		r    llm.Request
		want string
	}{
		{"unsupported names the first", llm.Request{Messages: user(text), Unsupported: []string{"audio", "logprobs"}},
			`feature "audio" is not supported by provider "gemini-test"`},
		{"several choices", llm.Request{Messages: user(text), N: 2},
			`feature "n" is not supported by provider "gemini-test"`},
		{"non-http image URL", llm.Request{Messages: user(llm.Part{Type: llm.PartImage, Image: &llm.Image{URL: "ftp://example.com/a.png"}})},
			`feature "image_url" is not supported by provider "gemini-test"`},
		{"image URL without a type", llm.Request{Messages: user(llm.Part{Type: llm.PartImage, Image: &llm.Image{URL: "https://example.com/render?id=3"}})},
			`provider "gemini-test" needs the media type of image URLs`},
		{"tool result image", llm.Request{Messages: []llm.Message{
			{Role: llm.RoleTool, Content: []llm.Part{{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "x", Name: "f",
				Content: []llm.Part{{Type: llm.PartImage, Image: &llm.Image{Data: "AA==", MediaType: "image/png"}}}}}}}}},
			`feature "tool_result_image" is not supported by provider "gemini-test"`},
		{"tool result without a call", llm.Request{Messages: []llm.Message{
			{Role: llm.RoleUser, Content: []llm.Part{text}},
			{Role: llm.RoleTool, Content: []llm.Part{{Type: llm.PartToolResult, ToolResult: &llm.ToolResult{CallID: "call_9", Content: []llm.Part{text}}}}}}},
			`tool result "call_9" does not answer any earlier tool call; provider "gemini-test" needs the function's name`},
		{"arguments not an object", llm.Request{Messages: []llm.Message{
			{Role: llm.RoleAssistant, Content: []llm.Part{{Type: llm.PartToolCall, ToolCall: &llm.ToolCall{ID: "c", Name: "f", Arguments: "[1]"}}}}}},
			`tool call "c" has arguments that are not a JSON object`},
		{"unknown reasoning effort", llm.Request{Messages: user(text), ReasoningEffort: "extreme"},
			`reasoning effort "extreme" is not supported by provider "gemini-test"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			r.Model = "gemini-2.5-flash"
			_, err := p.NewChatRequest(context.Background(), &r)
			ae, ok := err.(*apierr.Error)
			if !ok || ae.Kind != apierr.BadRequest || !strings.Contains(ae.Message, tc.want) {
				t.Errorf("NewChatRequest() = %v, want bad_request containing %q", err, tc.want)
			}
		})
	}
}

func TestNewOptions(t *testing.T) {
	ts := staticToken("t")
	for _, tc := range []struct {
		name    string
		o       Options
		wantURL string
		wantErr string
	}{
		{"gemini default", Options{Name: "g", APIKey: "k"}, "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent", ""},
		{"vertex regional", Options{Name: "v", Vertex: true, Project: "p", Region: "europe-west4", TokenSource: ts},
			"https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/publishers/google/models/m:generateContent", ""},
		{"vertex global", Options{Name: "v", Vertex: true, Project: "p", Region: "global", TokenSource: ts},
			"https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/m:generateContent", ""},
		{"base with slash", Options{Name: "g", BaseURL: mustURL(t, "http://127.0.0.1:9/proxy/")},
			"http://127.0.0.1:9/proxy/v1beta/models/m:generateContent", ""},
		{"vertex without project", Options{Name: "v", Vertex: true, Region: "us-central1", TokenSource: ts}, "", "project and a region"},
		{"vertex without token source", Options{Name: "v", Vertex: true, Project: "p", Region: "us-central1"}, "", "token source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New() = %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			req, err := p.NewChatRequest(context.Background(), &llm.Request{Model: "m",
				Messages: []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartText, Text: "x"}}}}})
			if err != nil {
				t.Fatal(err)
			}
			if got := req.URL.String(); got != tc.wantURL {
				t.Errorf("URL = %s, want %s", got, tc.wantURL)
			}
		})
	}
}

func TestDecodeError(t *testing.T) {
	p := newGemini(t, "")
	retryInfo := `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[
		{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},
		{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"}]}}`
	for _, tc := range []struct {
		name       string
		status     int
		header     string
		body       string
		kind       apierr.Kind
		retryAfter string
		msg        string
	}{
		{"retry info", 429, "", retryInfo, apierr.RateLimited, "12", `provider "gemini-test" is rate limiting`},
		{"header wins", 429, "30", retryInfo, apierr.RateLimited, "30", ""},
		{"fractional delay rounds up", 429, "", `{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.2s"}]}}`,
			apierr.RateLimited, "2", ""},
		{"invalid argument", 400, "", `{"error":{"code":400,"message":"Unable to submit request because it has an empty text parameter.","status":"INVALID_ARGUMENT"}}`,
			apierr.BadRequest, "", `provider "gemini-test": Unable to submit request because it has an empty text parameter.`},
		{"failed precondition", 400, "", `{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}`,
			apierr.BadRequest, "", `provider "gemini-test": User location`},
		{"api key invalid", 400, "", `{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}`,
			apierr.UpstreamUnavailable, "", `provider "gemini-test" rejected the gateway's credentials`},
		{"unauthenticated", 401, "", `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`,
			apierr.UpstreamUnavailable, "", "credentials"},
		{"permission denied", 403, "", `{"error":{"code":403,"message":"Permission denied on resource project x.","status":"PERMISSION_DENIED"}}`,
			apierr.UpstreamUnavailable, "", "credentials"},
		{"not found", 404, "", `{"error":{"code":404,"message":"models/nope is not found","status":"NOT_FOUND"}}`, apierr.NotFound, "", "does not serve"},
		{"html 404", 404, "", `<!DOCTYPE html><title>Error 404</title>`, apierr.NotFound, "", ""},
		{"deadline", 504, "", `{"error":{"code":504,"message":"Deadline expired","status":"DEADLINE_EXCEEDED"}}`, apierr.UpstreamTimeout, "", ""},
		{"unavailable", 503, "5", `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, apierr.UpstreamUnavailable, "5", ""},
		{"internal", 500, "", `{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}`, apierr.UpstreamUnavailable, "", ""},
		{"array body", 429, "", `[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]`, apierr.RateLimited, "", ""},
		{"too large", 413, "", `{"error":{"code":413,"message":"Request payload size exceeds the limit","status":"FAILED_PRECONDITION"}}`, apierr.BadRequest, "", ""},
		{"empty", 502, "", ``, apierr.UpstreamUnavailable, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			if tc.header != "" {
				resp.Header.Set("Retry-After", tc.header)
			}
			e := p.DecodeError(resp, []byte(tc.body))
			if e.Kind != tc.kind || e.RetryAfter != tc.retryAfter || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("DecodeError() = %v (retry %q), want %v retry %q message containing %q", e, e.RetryAfter, tc.kind, tc.retryAfter, tc.msg)
			}
			if e.Cause == nil {
				t.Error("Cause = nil, want the upstream detail for logs")
			}
		})
	}
}

// tokenServer is a fake OAuth2 token endpoint. Each grant returns
// "tok-N" with the next expires_in from expiries (the last repeats).
type tokenServer struct {
	mu       sync.Mutex
	calls    int
	expiries []int
	grants   []string
}

func (s *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.calls++
	s.grants = append(s.grants, r.PostForm.Get("grant_type"))
	exp := s.expiries[min(s.calls, len(s.expiries))-1]
	n := s.calls
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":%d}`, n, exp)
}

func (s *tokenServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// serviceAccountJSON returns a service-account key file whose token_uri is
// tokenURL, with a fresh RSA key.
func serviceAccountJSON(t *testing.T, tokenURL string) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "my-proj",
		"private_key_id": "key-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "gateway@my-proj.iam.gserviceaccount.com",
		"client_id":      "1234567890",
		"token_uri":      tokenURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVertexTokenRefresh drives VertexTokenSource against a fake token
// endpoint: a token that expires within oauth2's 10 s margin is fetched
// again on the next request, one with time to spare is reused. No sleeps:
// the first grant lives 5 s, so it is stale at once.
func TestVertexTokenRefresh(t *testing.T) {
	tokens := &tokenServer{expiries: []int{5, 3600}}
	tokSrv := httptest.NewServer(tokens)
	defer tokSrv.Close()
	fake, base := startFake(t, fakegemini.Options{})

	ts, err := VertexTokenSource(context.Background(), serviceAccountJSON(t, tokSrv.URL+"/token"))
	if err != nil {
		t.Fatalf("VertexTokenSource() = %v", err)
	}
	p := newVertex(t, base, ts)
	wantAuth := []string{"Bearer tok-1", "Bearer tok-2", "Bearer tok-2"}
	wantCalls := []int{1, 2, 2}
	for i := range wantAuth {
		if _, aerr := chat(t, p, userRequest("hi", false)); aerr != nil {
			t.Fatalf("request %d: %v", i, aerr)
		}
		if got := tokens.count(); got != wantCalls[i] {
			t.Errorf("after request %d the token endpoint was called %d times, want %d", i, got, wantCalls[i])
		}
	}
	for i, r := range fake.Requests() {
		if got := r.Header.Get("Authorization"); got != wantAuth[i] {
			t.Errorf("request %d Authorization = %q, want %q", i, got, wantAuth[i])
		}
	}
	if g := tokens.grants[0]; g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		t.Errorf("grant_type = %q, want the JWT bearer grant", g)
	}
}

func TestVertexTokenSourceRejects(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"not json", `{`, "parse google credentials"},
		{"unknown type", `{"type":"api_key"}`, `unsupported type "api_key"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VertexTokenSource(context.Background(), []byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("VertexTokenSource() = %v, want error containing %q", err, tc.want)
			}
		})
	}
}
