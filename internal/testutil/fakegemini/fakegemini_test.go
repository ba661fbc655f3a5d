package fakegemini

import (
	"context"
	"errors"
	"github.com/multipolar/multipolar/internal/testutil/goldenfile"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/auth"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/genai"
)

const (
	testKey   = "AIzaFakeGeminiKey0123456789abcdefghijk"
	testToken = "ya29.fake-vertex-token"
	testModel = "gemini-2.5-flash"
	fixedID   = "FakeGeminiResponseId01"
	fixedUnix = 1735689600 // 2025-01-01T00:00:00Z
)

// start serves a new fake on an httptest server, both closed at cleanup.
// It also clears the environment genai.NewClient reads.
func start(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	for _, k := range []string{"GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_API_KEY", "GEMINI_API_KEY",
		"GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_CLOUD_REGION", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_VERTEX_BASE_URL"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	fake := New(opts)
	ts := httptest.NewServer(fake)
	t.Cleanup(func() {
		fake.Close()
		ts.Close()
	})
	return fake, ts
}

func geminiClient(t *testing.T, ts *httptest.Server, key string) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(t.Context(), &genai.ClientConfig{
		APIKey:      key,
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  ts.Client(),
		HTTPOptions: genai.HTTPOptions{BaseURL: ts.URL},
	})
	if err != nil {
		t.Fatalf("genai.NewClient: %v", err)
	}
	return c
}

// staticToken is an auth.TokenProvider that always returns one token.
type staticToken string

func (s staticToken) Token(context.Context) (*auth.Token, error) {
	return &auth.Token{Value: string(s), Type: "Bearer", Expiry: time.Now().Add(time.Hour)}, nil
}

func vertexClient(t *testing.T, ts *httptest.Server, token string) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(t.Context(), &genai.ClientConfig{
		Backend:     genai.BackendVertexAI,
		Project:     "my-project",
		Location:    "us-central1",
		Credentials: auth.NewCredentials(&auth.CredentialsOptions{TokenProvider: staticToken(token)}),
		HTTPOptions: genai.HTTPOptions{BaseURL: ts.URL, APIVersion: "v1"},
	})
	if err != nil {
		t.Fatalf("genai.NewClient: %v", err)
	}
	return c
}

// contents is a 3-turn conversation of 2 + 1 + 3 words with a 3-word
// system instruction: promptTokenCount = 9.
func contents() ([]*genai.Content, *genai.GenerateContentConfig) {
	return []*genai.Content{
			genai.NewContentFromText("Say hello", genai.RoleUser),
			genai.NewContentFromText("Hello", genai.RoleModel),
			genai.NewContentFromText("Say it again", genai.RoleUser),
		}, &genai.GenerateContentConfig{
			SystemInstruction: genai.NewContentFromText("You are terse.", genai.RoleUser),
		}
}

const wantPrompt = 9

func TestGenerateContent(t *testing.T) {
	fake, ts := start(t, Options{APIKey: testKey, CachedTokens: 4, ThoughtsTokens: 6})
	msgs, cfg := contents()
	resp, err := geminiClient(t, ts, testKey).Models.GenerateContent(t.Context(), testModel, msgs, cfg)
	if err != nil {
		t.Fatalf("GenerateContent: %v", err)
	}
	if resp.Text() != DefaultContent || resp.Candidates[0].FinishReason != genai.FinishReasonStop {
		t.Errorf("text, finish = %q %q; want %q STOP", resp.Text(), resp.Candidates[0].FinishReason, DefaultContent)
	}
	u := resp.UsageMetadata
	want := [5]int32{wantPrompt + 4, 5, wantPrompt + 4 + 5 + 6, 4, 6}
	if got := [5]int32{u.PromptTokenCount, u.CandidatesTokenCount, u.TotalTokenCount, u.CachedContentTokenCount, u.ThoughtsTokenCount}; got != want {
		t.Errorf("usage prompt, candidates, total, cached, thoughts = %v, want %v", got, want)
	}
	if resp.ModelVersion != testModel || resp.ResponseID == "" {
		t.Errorf("modelVersion, responseId = %q %q", resp.ModelVersion, resp.ResponseID)
	}
	req := fake.Requests()[0]
	if req.Backend != BackendGemini || req.Model != testModel || req.Path != "/v1beta/models/"+testModel+":generateContent" ||
		req.Header.Get("x-goog-api-key") != testKey || !strings.Contains(string(req.Body), `"systemInstruction"`) {
		t.Errorf("request = %+v", req)
	}
}

func TestGenerateContentStream(t *testing.T) {
	_, ts := start(t, Options{APIKey: testKey, ThoughtsTokens: 2})
	client := geminiClient(t, ts, testKey)
	msgs, cfg := contents()
	whole, err := client.Models.GenerateContent(t.Context(), testModel, msgs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	var last *genai.GenerateContentResponseUsageMetadata
	var chunks int
	var prevCandidates int32
	for resp, err := range client.Models.GenerateContentStream(t.Context(), testModel, msgs, cfg) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		chunks++
		text.WriteString(resp.Text())
		if resp.UsageMetadata.CandidatesTokenCount < prevCandidates {
			t.Errorf("chunk %d candidatesTokenCount went down: %d < %d", chunks, resp.UsageMetadata.CandidatesTokenCount, prevCandidates)
		}
		prevCandidates = resp.UsageMetadata.CandidatesTokenCount
		last = resp.UsageMetadata
	}
	if text.String() != DefaultContent || chunks != 5 {
		t.Errorf("text, chunks = %q %d; want %q 5", text.String(), chunks, DefaultContent)
	}
	if diff := cmp.Diff(whole.UsageMetadata, last); diff != "" {
		t.Errorf("last chunk usage differs from GenerateContent usage (-whole +last):\n%s", diff)
	}
}

func TestFunctionCall(t *testing.T) {
	fake, ts := start(t, Options{APIKey: testKey, Chunks: 2})
	fc := &FunctionCall{Name: "get_weather", Args: `{"city":"Paris"}`}
	fake.Enqueue(Behavior{FunctionCall: fc}, Behavior{Content: "Checking now.", FunctionCall: fc})
	client := geminiClient(t, ts, testKey)
	msgs, cfg := contents()
	resp, err := client.Models.GenerateContent(t.Context(), testModel, msgs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.FunctionCalls()
	if len(calls) != 1 || calls[0].Name != "get_weather" || calls[0].Args["city"] != "Paris" ||
		resp.Candidates[0].FinishReason != genai.FinishReasonStop {
		t.Errorf("function calls = %+v, finish %q", calls, resp.Candidates[0].FinishReason)
	}
	var text strings.Builder
	var streamed []*genai.FunctionCall
	for resp, err := range client.Models.GenerateContentStream(t.Context(), testModel, msgs, cfg) {
		if err != nil {
			t.Fatal(err)
		}
		text.WriteString(resp.Text())
		streamed = append(streamed, resp.FunctionCalls()...)
	}
	if text.String() != "Checking now." || len(streamed) != 1 || streamed[0].Name != "get_weather" {
		t.Errorf("stream text, calls = %q %+v", text.String(), streamed)
	}
}

func TestInlineImage(t *testing.T) {
	_, ts := start(t, Options{})
	client := geminiClient(t, ts, testKey)
	msgs := []*genai.Content{genai.NewContentFromParts([]*genai.Part{
		genai.NewPartFromText("Describe this"),
		genai.NewPartFromBytes([]byte("\x89PNG fake"), "image/png"),
	}, genai.RoleUser)}
	resp, err := client.Models.GenerateContent(t.Context(), testModel, msgs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.UsageMetadata.PromptTokenCount; got != 2+imageTokens {
		t.Errorf("promptTokenCount = %d, want %d", got, 2+imageTokens)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
	}{
		{400, "INVALID_ARGUMENT"}, {401, "UNAUTHENTICATED"}, {403, "PERMISSION_DENIED"}, {404, "NOT_FOUND"},
		{429, "RESOURCE_EXHAUSTED"}, {500, "INTERNAL"}, {503, "UNAVAILABLE"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			fake, ts := start(t, Options{APIKey: testKey})
			fake.Enqueue(Behavior{Status: tc.status}, Behavior{Status: tc.status})
			client := geminiClient(t, ts, testKey)
			_, err := client.Models.GenerateContent(t.Context(), testModel, genai.Text("hi"), nil)
			checkAPIError(t, err, tc.status, tc.want)
			for _, err := range client.Models.GenerateContentStream(t.Context(), testModel, genai.Text("hi"), nil) {
				checkAPIError(t, err, tc.status, tc.want)
				break
			}
		})
	}
}

func checkAPIError(t *testing.T, err error, code int, status string) {
	t.Helper()
	var api genai.APIError
	if !errors.As(err, &api) || api.Code != code || api.Status != status || api.Message == "" {
		t.Errorf("err = %v (%T), want APIError %d %s with a message", err, err, code, status)
	}
}

func TestAuth(t *testing.T) {
	_, ts := start(t, Options{APIKey: testKey, VertexToken: testToken})
	_, err := geminiClient(t, ts, "AIzaWrong").Models.GenerateContent(t.Context(), testModel, genai.Text("hi"), nil)
	checkAPIError(t, err, 400, "INVALID_ARGUMENT")
	if !strings.Contains(err.Error(), "API_KEY_INVALID") {
		t.Errorf("err = %v, want reason API_KEY_INVALID in details", err)
	}
	_, err = vertexClient(t, ts, "ya29.wrong").Models.GenerateContent(t.Context(), testModel, genai.Text("hi"), nil)
	checkAPIError(t, err, 401, "UNAUTHENTICATED")

	resp, body := post(t, ts, "/v1beta/models/"+testModel+":generateContent", `{"contents":[{"parts":[{"text":"hi"}]}]}`, nil)
	if resp.StatusCode != 403 || !strings.Contains(body, "PERMISSION_DENIED") {
		t.Errorf("no key: %d %s; want 403 PERMISSION_DENIED", resp.StatusCode, body)
	}
}

func TestStreamError(t *testing.T) {
	fake, ts := start(t, Options{APIKey: testKey})
	fake.Enqueue(Behavior{StreamErrorAfter: 2, StreamErrorStatus: 503})
	var text strings.Builder
	var gotErr error
	for resp, err := range geminiClient(t, ts, testKey).Models.GenerateContentStream(t.Context(), testModel, genai.Text("hi"), nil) {
		if err != nil {
			gotErr = err
			break
		}
		text.WriteString(resp.Text())
	}
	checkAPIError(t, gotErr, 503, "UNAVAILABLE")
	if text.String() != "Hello from" {
		t.Errorf("text before the error = %q, want %q", text.String(), "Hello from")
	}
}

func TestCutAfter(t *testing.T) {
	fake, ts := start(t, Options{APIKey: testKey})
	fake.Enqueue(Behavior{CutAfter: 2})
	var text strings.Builder
	var gotErr error
	var finish genai.FinishReason
	for resp, err := range geminiClient(t, ts, testKey).Models.GenerateContentStream(t.Context(), testModel, genai.Text("hi"), nil) {
		if err != nil {
			gotErr = err
			break
		}
		text.WriteString(resp.Text())
		finish = resp.Candidates[0].FinishReason
	}
	if gotErr == nil {
		t.Error("stream ended without error; want a truncated-body error")
	}
	if text.String() != "Hello from" || finish != "" {
		t.Errorf("text, finish = %q %q; want %q and none", text.String(), finish, "Hello from")
	}
}

// TestVertex drives the Vertex backend through genai with a static token
// from cloud.google.com/go/auth.
func TestVertex(t *testing.T) {
	fake, ts := start(t, Options{VertexToken: testToken})
	client := vertexClient(t, ts, testToken)
	msgs, cfg := contents()
	resp, err := client.Models.GenerateContent(t.Context(), testModel, msgs, cfg)
	if err != nil {
		t.Fatalf("GenerateContent: %v", err)
	}
	if resp.Text() != DefaultContent || resp.UsageMetadata.PromptTokenCount != wantPrompt || resp.CreateTime.IsZero() {
		t.Errorf("text, prompt, createTime = %q %d %v", resp.Text(), resp.UsageMetadata.PromptTokenCount, resp.CreateTime)
	}
	var text strings.Builder
	for resp, err := range client.Models.GenerateContentStream(t.Context(), testModel, msgs, cfg) {
		if err != nil {
			t.Fatal(err)
		}
		text.WriteString(resp.Text())
	}
	if text.String() != DefaultContent {
		t.Errorf("streamed text = %q", text.String())
	}
	reqs := fake.Requests()
	wantPath := "/v1/projects/my-project/locations/us-central1/publishers/google/models/" + testModel
	if len(reqs) != 2 || reqs[0].Path != wantPath+":generateContent" || reqs[1].Path != wantPath+":streamGenerateContent" ||
		reqs[1].RawQuery != "alt=sse" || reqs[0].Backend != BackendVertex || reqs[0].Project != "my-project" ||
		reqs[0].Header.Get("Authorization") != "Bearer "+testToken {
		t.Errorf("requests = %+v", reqs)
	}
}

// post sends body to the fake and returns the response and its body.
func post(t *testing.T, ts *httptest.Server, path, body string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestValidation(t *testing.T) {
	const path = "/v1beta/models/gemini-2.5-flash:generateContent"
	for _, tc := range []struct {
		name, path, body string
		status           int
		substr           string
	}{
		{"bad json", path, `{`, 400, "Invalid JSON payload received."},
		{"no contents", path, `{}`, 400, "contents is not specified"},
		{"empty parts", path, `{"contents":[{"role":"user","parts":[]}]}`, 400, "must not be empty"},
		{"bad role", path, `{"contents":[{"role":"assistant","parts":[{"text":"x"}]}]}`, 400, "valid role"},
		{"no mime", path, `{"contents":[{"parts":[{"inlineData":{"data":"aGk="}}]}]}`, 400, "mime_type is not specified"},
		{"bad base64", path, `{"contents":[{"parts":[{"inlineData":{"mimeType":"image/png","data":"!!"}}]}]}`, 400, "Base64 decoding failed"},
		{"unknown path", "/v1beta/models/x:embedContent", `{}`, 404, "Error 404 (Not Found)"},
		{"raw vertex", "/v1/projects/p/locations/global/publishers/google/models/m:generateContent",
			`{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`, 200, `"trafficType": "ON_DEMAND"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ts := start(t, Options{})
			resp, body := post(t, ts, tc.path, tc.body, nil)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.substr) {
				t.Errorf("got %d %s; want %d containing %q", resp.StatusCode, body, tc.status, tc.substr)
			}
		})
	}
}

func TestHangAndClose(t *testing.T) {
	ch := make(chan Request, 4)
	fake, ts := start(t, Options{OnRequest: func(r Request) { ch <- r }})
	fake.SetDefault(Behavior{Hang: true})
	client := geminiClient(t, ts, testKey)
	done := make(chan error, 1)
	go func() {
		_, err := client.Models.GenerateContent(context.Background(), testModel, genai.Text("hi"), nil)
		done <- err
	}()
	<-ch
	fake.Close()
	if err := <-done; err == nil {
		t.Error("request released by Close succeeded; want a dropped-connection error")
	}
	fake.Reset()
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("len(Requests()) after Reset = %d, want 0", n)
	}
}

func TestListen(t *testing.T) {
	srv, baseURL, shutdown, err := Listen("127.0.0.1:0", Options{APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown()
	client, err := genai.NewClient(t.Context(), &genai.ClientConfig{APIKey: testKey, Backend: genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: baseURL}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Models.GenerateContent(t.Context(), testModel, genai.Text("hi"), nil); err != nil {
		t.Fatalf("GenerateContent: %v", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("len(Requests()) = %d, want 1", n)
	}
	shutdown()
}

// TestGolden pins exact bytes against testdata. Refresh with -update and
// review the diff.
func TestGolden(t *testing.T) {
	const body = `{"contents":[{"role":"user","parts":[{"text":"Say hello"}]}]}`
	const gemini = "/v1beta/models/gemini-2.5-flash:"
	const vertex = "/v1/projects/my-project/locations/us-central1/publishers/google/models/gemini-2.5-flash:"
	for _, tc := range []struct {
		file, path string
	}{
		{"generate.gemini.json", gemini + "generateContent"},
		{"stream.gemini.sse", gemini + "streamGenerateContent?alt=sse"},
		{"generate.vertex.json", vertex + "generateContent"},
		{"stream.vertex.json", vertex + "streamGenerateContent"},
		{"error429.gemini.json", gemini + "generateContent"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			fake, ts := start(t, Options{
				Chunks: 3, CachedTokens: 2, ThoughtsTokens: 4,
				Now: func() time.Time { return time.Unix(fixedUnix, 0) },
				IDs: func() string { return fixedID },
			})
			if strings.HasPrefix(tc.file, "error429") {
				fake.Enqueue(Behavior{Status: 429})
			}
			_, got := post(t, ts, tc.path, body, nil)
			file := filepath.Join("testdata", tc.file)
			goldenfile.Check(t, file, []byte(got))
		})
	}
}
