package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

// These tests run the real binary, so that signal handling in main (SIGTERM
// drains, SIGHUP reloads) is exercised as an operator would see it.

const binVersion = "v0.0.0-cmdtest"

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds the multipolar command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go tool not found: %w", err)
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "multipolar-cmdtest-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "multipolar")
		cmd := exec.Command(goTool, "build", "-ldflags=-X main.version="+binVersion, "-o", binPath, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is a running multipolar binary.
type process struct {
	cmd     *exec.Cmd
	stderr  *syncBuffer
	exited  chan struct{}
	waitErr error
}

// startProcess runs the binary with args and only the environment the
// configs reference. At cleanup a process still running is killed.
func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	return startProcessEnv(t, []string{"MP_CLIENT_KEY=" + clientKey, "MP_UPSTREAM_KEY=" + upstreamKey}, args...)
}

// startProcessEnv runs the binary with args and exactly the environment
// env. At cleanup a process still running is killed.
func startProcessEnv(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	p := &process{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = p.stderr
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// runCLI runs the binary with args and exactly the environment env to its
// end, and returns its exit code and output.
func runCLI(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("multipolar %s: %v", args[0], err)
	}
	return code, out.String(), errb.String()
}

func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait returns the exit code once the process has exited.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(waitFor):
		t.Fatalf("process did not exit within %v; output:\n%s", waitFor, p.stderr)
	}
	if p.waitErr != nil {
		if ee, ok := errors.AsType[*exec.ExitError](p.waitErr); ok {
			return ee.ExitCode()
		}
		t.Fatalf("wait: %v", p.waitErr)
	}
	return 0
}

// postChat sends a chat request and returns the response; the caller
// closes its body.
func postChat(addr, model string, stream bool) (*http.Response, error) {
	body := fmt.Sprintf(`{"model":%q,"stream":%t,"messages":[{"role":"user","content":"Say hello"}]}`, model, stream)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+clientKey)
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: waitFor, Transport: &http.Transport{DisableKeepAlives: true}}
	return c.Do(req)
}

// chatStatus returns the status of a non-streamed chat request, or 0 when
// the request failed.
func chatStatus(addr, model string) int {
	resp, err := postChat(addr, model, false)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// poll calls cond until it is true or the deadline passes.
func poll(t *testing.T, what string, logs fmt.Stringer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v; logs:\n%s", what, waitFor, logs)
		}
		<-tick.C
	}
}

func TestProcessVersion(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary(t), "version").Output()
	if err != nil {
		t.Fatalf("multipolar version: %v", err)
	}
	if want := "multipolar " + binVersion + "\n"; string(out) != want {
		t.Errorf("multipolar version = %q, want %q", out, want)
	}
}

func TestProcessSIGTERMDrainsStream(t *testing.T) {
	t.Parallel()
	const chunks = 10
	fake, base := startFake(t, fakeupstream.Options{Chunks: chunks})
	fake.SetDefault(fakeupstream.Behavior{ChunkDelay: 100 * time.Millisecond})
	addr := freeAddr(t)
	cfg := gatewayConfig(t, filepath.Join(t.TempDir(), "multipolar.yaml"), addr, base, "gpt-4o")
	p := startProcess(t, "serve", "--config", cfg)
	waitHealthy(t, addr, p.exited, p.stderr)

	resp, err := postChat(addr, "gpt-4o", true)
	if err != nil {
		t.Fatalf("stream request: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream status = %d, want 200", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "data: {") {
		t.Fatalf("first stream line = %q, %v; want a data event", first, err)
	}

	// Mid-stream: the first event is in, ten more are ~100ms apart.
	p.signal(t, syscall.SIGTERM)
	// The listener closes at once while the stream keeps going.
	poll(t, "new connections refused while draining", p.stderr, func() bool {
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + addr + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
		}
		return err != nil
	})

	var data []string
	for line := first; ; {
		if s, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok {
			data = append(data, s)
		}
		if line, err = br.ReadString('\n'); err != nil {
			break
		}
	}
	if len(data) == 0 || data[len(data)-1] != "[DONE]" {
		t.Fatalf("stream after SIGTERM ended without data: [DONE]; events %q; err %v; logs:\n%s", data, err, p.stderr)
	}
	// role + content pieces + finish + [DONE]
	if want := 1 + chunks + 1 + 1; len(data) != want {
		t.Errorf("stream had %d data events, want %d: %q", len(data), want, data)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0; logs:\n%s", code, p.stderr)
	}
	if logs := p.stderr.String(); !strings.Contains(logs, "shutdown complete") {
		t.Errorf("logs lack %q:\n%s", "shutdown complete", logs)
	}
}

func TestProcessSIGHUPReloads(t *testing.T) {
	t.Parallel()
	_, base := startFake(t, fakeupstream.Options{})
	addr := freeAddr(t)
	cfg := gatewayConfig(t, filepath.Join(t.TempDir(), "multipolar.yaml"), addr, base, "gpt-4o")
	p := startProcess(t, "serve", "--config", cfg)
	waitHealthy(t, addr, p.exited, p.stderr)

	if got := chatStatus(addr, "gpt-4o"); got != http.StatusOK {
		t.Fatalf("chat gpt-4o = %d, want 200; logs:\n%s", got, p.stderr)
	}
	if got := chatStatus(addr, "gpt-4o-mini"); got != http.StatusNotFound {
		t.Fatalf("chat gpt-4o-mini before reload = %d, want 404", got)
	}

	gatewayConfig(t, cfg, addr, base, "gpt-4o", "gpt-4o-mini")
	p.signal(t, syscall.SIGHUP)
	poll(t, "gpt-4o-mini answers 200 after SIGHUP", p.stderr, func() bool {
		return chatStatus(addr, "gpt-4o-mini") == http.StatusOK
	})

	// A broken file: the reload fails, says why, and the last good
	// configuration keeps serving.
	broken := "listen: " + addr + "\nproviders: []\nmodels:\n  - {name: gpt-4o, routes: [gone]}\n"
	if err := os.WriteFile(cfg, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	poll(t, "reload failure logged", p.stderr, func() bool {
		return strings.Contains(p.stderr.String(), "configuration reload failed")
	})
	logs := p.stderr.String()
	for _, want := range []string{"providers: at least one provider is required", `models[0].routes[0]: unknown provider \"gone\"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("reload failure log lacks the reason %q:\n%s", want, logs)
		}
	}
	for _, model := range []string{"gpt-4o", "gpt-4o-mini"} {
		if got := chatStatus(addr, model); got != http.StatusOK {
			t.Errorf("chat %s after a failed reload = %d, want 200", model, got)
		}
	}

	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0; logs:\n%s", code, p.stderr)
	}
}
