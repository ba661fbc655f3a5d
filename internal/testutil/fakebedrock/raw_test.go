package fakebedrock

import (
	"context"
	"encoding/hex"
	"errors"
	"github.com/multipolar/multipolar/internal/testutil/goldenfile"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
)

// post sends body unsigned to a fake without credentials.
func post(t *testing.T, ts *httptest.Server, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestValidation(t *testing.T) {
	const path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
	for _, tc := range []struct {
		name, path, body string
		status           int
		errType, substr  string
	}{
		{"bad json", path, `{`, 400, "ValidationException", "Malformed input request"},
		{"no messages", path, `{}`, 400, "ValidationException", "'messages'"},
		{"assistant first", path, `{"messages":[{"role":"assistant","content":[{"text":"hi"}]}]}`, 400, "ValidationException", "must start with a user message"},
		{"not alternating", path, `{"messages":[{"role":"user","content":[{"text":"a"}]},{"role":"user","content":[{"text":"b"}]}]}`,
			400, "ValidationException", "alternate"},
		{"empty content", path, `{"messages":[{"role":"user","content":[]}]}`, 400, "ValidationException", "messages.0 is empty"},
		{"unknown path", "/model/x/invoke-nothing", `{}`, 404, "UnknownOperationException", "Unknown operation"},
		{"missing auth", path, `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`, 403,
			"MissingAuthenticationTokenException", "Missing Authentication Token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{}
			if tc.status == 403 {
				opts = Options{AccessKeyID: testAKID, SecretAccessKey: testSecret}
			}
			_, ts := start(t, opts)
			resp, body := post(t, ts, tc.path, tc.body)
			typ, _, _ := strings.Cut(resp.Header.Get("x-amzn-ErrorType"), ":")
			if resp.StatusCode != tc.status || typ != tc.errType || !strings.Contains(string(body), tc.substr) {
				t.Errorf("got %d %s %s; want %d %s containing %q", resp.StatusCode, typ, body, tc.status, tc.errType, tc.substr)
			}
			if !strings.HasPrefix(string(body), `{"message":`) {
				t.Errorf("body = %s, want {\"message\":...}", body)
			}
		})
	}
}

// arrivals returns an OnRequest hook and the channel it reports to.
func arrivals() (func(Request), <-chan Request) {
	ch := make(chan Request, 16)
	return func(r Request) { ch <- r }, ch
}

func TestHangAndClose(t *testing.T) {
	hook, arrived := arrivals()
	fake, ts := start(t, Options{OnRequest: hook})
	fake.SetDefault(Behavior{Hang: true})
	client := newClient(ts, testSecret)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := client.Converse(ctx, converseInput(testModel))
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}

	go func() {
		_, err := client.Converse(context.Background(), converseInput(testModel))
		done <- err
	}()
	<-arrived
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
	srv, baseURL, shutdown, err := Listen("127.0.0.1:0", Options{AccessKeyID: testAKID, SecretAccessKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown()
	client := bedrockruntime.New(bedrockruntime.Options{Region: "us-east-1", BaseEndpoint: aws.String(baseURL),
		Credentials: staticCreds(testAKID, testSecret, ""), RetryMaxAttempts: 1})
	if _, err := client.Converse(t.Context(), converseInput(testModel)); err != nil {
		t.Fatalf("Converse: %v", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("len(Requests()) = %d, want 1", n)
	}
	shutdown()
}

// TestGolden pins exact bytes against testdata: the Converse JSON and the
// ConverseStream event stream as a hex dump. Refresh with -update and
// review the diff.
func TestGolden(t *testing.T) {
	const body = `{"messages":[{"role":"user","content":[{"text":"Say hello"}]}]}`
	const path = "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/"
	for _, tc := range []struct {
		file, op string
		b        Behavior
		hexDump  bool
	}{
		{"converse.json", "converse", Behavior{}, false},
		{"converse-tool.json", "converse", Behavior{ToolCall: &ToolCall{Name: "get_weather", Input: `{"city":"Paris"}`}}, false},
		{"converse-stream.hex", "converse-stream", Behavior{Content: "Checking.", ToolCall: &ToolCall{Name: "get_weather", Input: `{"city":"Paris"}`}}, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			fake, ts := start(t, Options{
				Chunks: 3, CacheReadTokens: 3,
				Now: func() time.Time { return time.Unix(fixedUnix, 0) },
				IDs: func() string { return fixedID },
			})
			fake.Enqueue(tc.b)
			resp, raw := post(t, ts, path+tc.op, body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, body %s", resp.StatusCode, raw)
			}
			got := string(raw)
			if tc.hexDump {
				got = hex.Dump(raw)
			}
			file := filepath.Join("testdata", tc.file)
			goldenfile.Check(t, file, []byte(got))
		})
	}
}
