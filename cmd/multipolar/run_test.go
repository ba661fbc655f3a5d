package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

const (
	clientKey   = "sk-mp-test-client-0123456789"
	upstreamKey = "sk-mp-test-upstream-0123456789"
	// waitFor bounds every poll; polls never sleep a fixed time first.
	waitFor = 10 * time.Second
)

// testEnv is the environment injected into run: the secrets the configs
// reference and nothing from the real environment.
func testEnv(name string) (string, bool) {
	switch name {
	case "MP_CLIENT_KEY":
		return clientKey, true
	case "MP_UPSTREAM_KEY":
		return upstreamKey, true
	}
	return "", false
}

// syncBuffer is a bytes.Buffer safe for a writer and a poller at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddr returns a loopback address with a port that was free a moment
// ago; run does not report the port it bound, so tests choose it.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// gatewayConfig writes a configuration with one openai-compatible provider
// at upstream (a fake's base URL) serving models, and returns its path.
func gatewayConfig(t *testing.T, path, listen, upstream string, models ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, `listen: %s
log: {level: info, format: text}
server: {drain_timeout: 10s}
providers:
  - name: fake
    type: openai-compatible
    base_url: %s/v1
    api_key: ${MP_UPSTREAM_KEY}
models:
`, listen, upstream)
	for _, m := range models {
		fmt.Fprintf(&b, "  - {name: %s, routes: [fake]}\n", m)
	}
	b.WriteString("keys:\n  - name: tests\n    key: ${MP_CLIENT_KEY}\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startFake serves a fake upstream that requires upstreamKey.
func startFake(t *testing.T, opts fakeupstream.Options) (*fakeupstream.Server, string) {
	t.Helper()
	opts.APIKey = upstreamKey
	srv, base, shutdown, err := fakeupstream.Listen("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shutdown)
	return srv, base
}

// running is one run call in a goroutine.
type running struct {
	cancel         context.CancelFunc
	done           chan struct{}
	code           int
	stdout, stderr *syncBuffer
}

// startRun calls run(ctx, args) in a goroutine. At cleanup it cancels ctx
// and waits for run to return.
func startRun(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{}), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	go func() {
		defer close(r.done)
		r.code = run(ctx, args, testEnv, r.stdout, r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// stop cancels run's context and returns its exit code.
func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.code
	case <-time.After(waitFor):
		t.Fatalf("run did not return %v after cancel; stderr:\n%s", waitFor, r.stderr)
		return -1
	}
}

// waitHealthy polls http://addr/healthz until it answers 200. exited, when
// it closes first, means the gateway stopped: the test fails at once with
// logs() in the message.
func waitHealthy(t *testing.T, addr string, exited <-chan struct{}, logs fmt.Stringer) {
	t.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := c.Get("http://" + addr + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz on %s did not answer 200 within %v (last error %v); logs:\n%s", addr, waitFor, err, logs)
		}
		select {
		case <-exited:
			t.Fatalf("gateway exited before /healthz answered; logs:\n%s", logs)
		case <-tick.C:
		}
	}
}

// sdkClient is the official OpenAI SDK pointed at the gateway on addr.
func sdkClient(addr, key string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL("http://"+addr+"/v1/"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
		option.WithRequestTimeout(waitFor),
	)
}

func userMessage(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
	}
}

// runSync runs a command that returns by itself.
func runSync(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, testEnv, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunCommands(t *testing.T) {
	versionLine := regexp.MustCompile(`^multipolar \S+\n$`)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout *regexp.Regexp // nil: stdout must be empty
		wantStderr []string       // substrings; nil: stderr must be empty
	}{
		{name: "version", args: []string{"version"}, wantStdout: versionLine},
		{name: "--version", args: []string{"--version"}, wantStdout: versionLine},
		{name: "-v", args: []string{"-v"}, wantStdout: versionLine},
		{name: "help", args: []string{"help"}, wantStdout: regexp.MustCompile(`(?s)^usage: multipolar <command>.*serve.*validate.*demo.*version`)},
		{name: "no args", args: nil, wantCode: 2, wantStderr: []string{"usage: multipolar <command>"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantStderr: []string{`unknown command "frobnicate"`, "usage: multipolar <command>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runSync(tc.args...)
			if code != tc.wantCode {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tc.args, code, tc.wantCode, stderr)
			}
			if tc.wantStdout == nil && stdout != "" {
				t.Errorf("run(%q) stdout = %q, want empty", tc.args, stdout)
			}
			if tc.wantStdout != nil && !tc.wantStdout.MatchString(stdout) {
				t.Errorf("run(%q) stdout = %q, want match for %s", tc.args, stdout, tc.wantStdout)
			}
			if tc.wantStderr == nil && stderr != "" {
				t.Errorf("run(%q) stderr = %q, want empty", tc.args, stderr)
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("run(%q) stderr = %q, want it to contain %q", tc.args, stderr, want)
				}
			}
		})
	}
}

func TestValidateGood(t *testing.T) {
	code, stdout, stderr := runSync("validate", "--config", "testdata/good.yaml")
	if code != 0 {
		t.Fatalf("validate good.yaml = %d, want 0; stderr:\n%s", code, stderr)
	}
	if want := "testdata/good.yaml: valid: 1 provider, 1 model, 1 key\n"; stdout != want {
		t.Errorf("validate good.yaml stdout = %q, want %q", stdout, want)
	}
	if stderr != "" {
		t.Errorf("validate good.yaml stderr = %q, want empty", stderr)
	}
}

func TestValidateEveryProblem(t *testing.T) {
	// One path per commented line of several.bad.yaml.
	wantPaths := []string{
		"listen",
		"log.level",
		"log.format",
		"timeouts.connect",
		"providers[0].type",
		"providers[1].name",
		"providers[1].api_key",
		"providers[1].tyep",
		"models[0].routes[0]",
		"keys[0].key",
		"keys[0].models[0]",
	}
	code, stdout, stderr := runSync("validate", "--config", "testdata/several.bad.yaml")
	if code != 1 {
		t.Errorf("validate several.bad.yaml = %d, want 1", code)
	}
	if stdout != "" {
		t.Errorf("validate several.bad.yaml stdout = %q, want empty", stdout)
	}
	if want := fmt.Sprintf("testdata/several.bad.yaml: %d problem(s):\n", len(wantPaths)); !strings.HasPrefix(stderr, want) {
		t.Errorf("validate several.bad.yaml stderr starts %q, want %q", firstLine(stderr), want)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")[1:]
	for _, p := range wantPaths {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, p+": ") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("validate several.bad.yaml: no line starting %q; stderr:\n%s", p+": ", stderr)
		}
	}
	if len(lines) != len(wantPaths) {
		t.Errorf("validate several.bad.yaml printed %d problem lines, want %d; stderr:\n%s", len(lines), len(wantPaths), stderr)
	}
	if strings.Contains(stderr, "sk-literal-in-file") {
		t.Errorf("validate several.bad.yaml printed the literal secret:\n%s", stderr)
	}
}

func TestValidateMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	code, stdout, stderr := runSync("validate", "--config", path)
	if code != 1 {
		t.Errorf("validate missing.yaml = %d, want 1", code)
	}
	if stdout != "" {
		t.Errorf("validate missing.yaml stdout = %q, want empty", stdout)
	}
	if !strings.HasPrefix(stderr, path+": ") || !strings.Contains(stderr, "no such file or directory") {
		t.Errorf("validate missing.yaml stderr = %q, want %q and %q", stderr, path+": ", "no such file or directory")
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func TestServe(t *testing.T) {
	fake, base := startFake(t, fakeupstream.Options{})
	configured, listen := freeAddr(t), freeAddr(t)
	cfg := gatewayConfig(t, filepath.Join(t.TempDir(), "multipolar.yaml"), configured, base, "gpt-4o")
	r := startRun(t, "serve", "--config", cfg, "--listen", listen)
	waitHealthy(t, listen, r.done, r.stderr)

	// --listen wins over the file's listen: nothing serves there.
	if conn, err := net.DialTimeout("tcp", configured, time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("the configured listen %s accepts connections; want only --listen %s", configured, listen)
	}

	client := sdkClient(listen, clientKey)
	got, err := client.Chat.Completions.New(t.Context(), userMessage("gpt-4o"))
	if err != nil {
		t.Fatalf("Chat.Completions.New through the gateway: %v; stderr:\n%s", err, r.stderr)
	}
	if len(got.Choices) != 1 || got.Choices[0].Message.Content != fakeupstream.DefaultContent {
		t.Errorf("completion choices = %+v, want one with %q", got.Choices, fakeupstream.DefaultContent)
	}
	if got.Model != "gpt-4o" {
		t.Errorf("completion model = %q, want gpt-4o", got.Model)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream saw %d requests, want 1", len(reqs))
	}
	if h := reqs[0].Header.Get("Authorization"); h != "Bearer "+upstreamKey {
		t.Errorf("upstream Authorization = %q, want the provider's key, not the client's", h)
	}

	// A wrong key is refused with OpenAI's error shape, which the SDK parses.
	wrong := sdkClient(listen, "sk-wrong")
	_, err = wrong.Chat.Completions.New(t.Context(), userMessage("gpt-4o"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
		t.Errorf("chat with a wrong key: err = %v, want a 401 *openai.Error", err)
	}

	if code := r.stop(t); code != 0 {
		t.Errorf("run(serve) after cancel = %d, want 0; stderr:\n%s", code, r.stderr)
	}
	if !strings.Contains(r.stderr.String(), "shutdown complete") {
		t.Errorf("stderr lacks %q:\n%s", "shutdown complete", r.stderr)
	}
}

func TestServeStreamThroughSDK(t *testing.T) {
	_, base := startFake(t, fakeupstream.Options{Chunks: 4})
	listen := freeAddr(t)
	cfg := gatewayConfig(t, filepath.Join(t.TempDir(), "multipolar.yaml"), "127.0.0.1:8080", base, "gpt-4o-mini")
	r := startRun(t, "serve", "--config", cfg, "--listen", listen)
	waitHealthy(t, listen, r.done, r.stderr)

	client := sdkClient(listen, clientKey)
	stream := client.Chat.Completions.NewStreaming(t.Context(), userMessage("gpt-4o-mini"))
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != fakeupstream.DefaultContent {
		t.Errorf("accumulated stream = %+v, want %q", acc.Choices, fakeupstream.DefaultContent)
	}
	if want := 4 + 2; chunks != want { // role, 4 pieces, finish
		t.Errorf("stream chunks = %d, want %d", chunks, want)
	}
	if code := r.stop(t); code != 0 {
		t.Errorf("run(serve) after cancel = %d, want 0; stderr:\n%s", code, r.stderr)
	}
}

func TestServeFlagAndConfigErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: nowhere\nproviders: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr []string
	}{
		{
			name:       "bad log level and listen",
			args:       []string{"serve", "--config", "testdata/good.yaml", "--log-level", "loud", "--listen", "nowhere"},
			wantCode:   1,
			wantStderr: []string{`--log-level "loud": want debug, info, warn or error`, `--listen "nowhere"`},
		},
		{
			name:       "bad listen, stray argument",
			args:       []string{"serve", "--listen", "127.0.0.1", "extra"},
			wantCode:   1,
			wantStderr: []string{`--listen "127.0.0.1"`, "unexpected arguments: [extra]"},
		},
		{
			name:       "bad log level alone",
			args:       []string{"serve", "--log-level", "verbose"},
			wantCode:   1,
			wantStderr: []string{`--log-level "verbose"`},
		},
		{
			name:       "missing config",
			args:       []string{"serve", "--config", filepath.Join(t.TempDir(), "nope.yaml")},
			wantCode:   1,
			wantStderr: []string{"nope.yaml", "no such file or directory"},
		},
		{
			name:       "invalid config lists every problem",
			args:       []string{"serve", "--config", bad},
			wantCode:   1,
			wantStderr: []string{"configuration " + bad, "listen: ", "providers: at least one provider is required", "models: at least one model is required"},
		},
		{
			name:       "help",
			args:       []string{"serve", "--help"},
			wantCode:   0,
			wantStderr: []string{"-config", "-listen", "-log-level"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// None of these may start a server, so run returns by itself.
			code, _, stderr := runSync(tc.args...)
			if code != tc.wantCode {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tc.args, code, tc.wantCode, stderr)
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("run(%q) stderr lacks %q:\n%s", tc.args, want, stderr)
				}
			}
		})
	}
}

func TestDemo(t *testing.T) {
	listen := freeAddr(t)
	r := startRun(t, "demo", "--listen", listen, "--ledger", filepath.Join(t.TempDir(), "demo.db"))
	waitHealthy(t, listen, r.done, r.stderr)

	out := r.stdout.String()
	if want := "curl -s http://" + listen + "/v1/chat/completions"; !strings.Contains(out, want) {
		t.Errorf("demo stdout lacks %q:\n%s", want, out)
	}
	if want := "Bearer " + demoKey; !strings.Contains(out, want) {
		t.Errorf("demo stdout lacks %q:\n%s", want, out)
	}

	client := sdkClient(listen, "sk-multipolar-demo")
	for _, model := range []string{"gpt-4o", "gpt-4o-mini"} {
		got, err := client.Chat.Completions.New(t.Context(), userMessage(model))
		if err != nil {
			t.Fatalf("demo chat %s: %v; stderr:\n%s", model, err, r.stderr)
		}
		if len(got.Choices) != 1 || got.Choices[0].Message.Content != fakeupstream.DefaultContent {
			t.Errorf("demo chat %s choices = %+v, want %q", model, got.Choices, fakeupstream.DefaultContent)
		}
	}
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !bytes.Contains(body, []byte("multipolar_")) {
		t.Errorf("GET /metrics on the demo has no multipolar_ series")
	}

	if code := r.stop(t); code != 0 {
		t.Errorf("run(demo) after cancel = %d, want 0; stderr:\n%s", code, r.stderr)
	}
}
