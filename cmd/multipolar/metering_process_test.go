package main

// Metering tests against real processes: the budget race across replicas
// sharing Redis and PostgreSQL, ledger durability across SIGTERM and
// SIGKILL, and `multipolar usage` against /admin/usage.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/store/postgres"
	"github.com/multipolar/multipolar/internal/store/sqlite"
	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
	"github.com/multipolar/multipolar/internal/testutil/redistest"
)

const (
	postgresEnv = "MULTIPOLAR_TEST_POSTGRES"
	adminSecret = "mp-test-admin-token-0123456789"
	// redisPrefix is the gateways' key prefix in Redis in these tests, apart
	// from any other test's.
	redisPrefix = "mptest-process-budget"
)

// startMeteredProcess runs the binary like startProcess, with extra
// environment variables for the configuration to reference.
func startMeteredProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	return startProcessEnv(t, meteredEnv(env...), args...)
}

// meteredEnv is the environment the metered configurations reference,
// then extra.
func meteredEnv(extra ...string) []string {
	return append([]string{"MP_CLIENT_KEY=" + clientKey, "MP_UPSTREAM_KEY=" + upstreamKey, "MP_ADMIN_TOKEN=" + adminSecret}, extra...)
}

// meteredConfig writes a configuration with one priced model, "metered",
// served by the fake at upstream, one key (clientKey, named "tests")
// carrying keyExtra, and the given ledger and limits lines. It returns the
// path.
func meteredConfig(t *testing.T, dir, listen, upstream, ledgerYAML, limitsYAML, keyExtra string) string {
	t.Helper()
	path := filepath.Join(dir, "multipolar-"+strings.ReplaceAll(listen, ":", "-")+".yaml")
	yaml := fmt.Sprintf(`listen: %s
log: {level: warn, format: text}
server: {drain_timeout: 10s}
providers:
  - name: fake
    type: openai-compatible
    base_url: %s/v1
    api_key: ${MP_UPSTREAM_KEY}
models:
  - {name: metered, routes: [fake]}
prices:
  - {provider: fake, model: metered, input: "0.01", output: "10.00"}
%s
%s
admin:
  token: ${MP_ADMIN_TOKEN}
keys:
  - name: tests
    key: ${MP_CLIENT_KEY}
%s`, listen, upstream, ledgerYAML, limitsYAML, keyExtra)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// chatResult is what one raw chat request came back with.
type chatResult struct {
	status int
	id     string
	body   []byte
	err    error // transport or body read error
}

var meterClient = &http.Client{Timeout: waitFor, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// meteredChat posts a chat request for the model "metered" and reads the
// whole answer.
func meteredChat(addr string, stream bool, maxTokens int) chatResult {
	body := fmt.Sprintf(`{"model":"metered","stream":%t,"max_tokens":%d,"messages":[{"role":"user","content":"Say hello"}]}`, stream, maxTokens)
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return chatResult{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+clientKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := meterClient.Do(req)
	if err != nil {
		return chatResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return chatResult{status: resp.StatusCode, id: resp.Header.Get("X-Request-Id"), body: b, err: err}
}

// postgresDSN creates a fresh schema, dropped at cleanup, and returns a
// DSN whose search_path points at it, as the store's own tests do.
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv(postgresEnv)
	if base == "" {
		t.Skip(postgresEnv + " not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect %s: %v", postgresEnv, err)
	}
	defer conn.Close(ctx)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	schema := "multipolar_cmdtest_" + hex.EncodeToString(rnd[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		t.Fatalf("%s must be a URL (postgres://...): %q", postgresEnv, base)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// redisURL returns the URL in MULTIPOLAR_TEST_REDIS with the gateway's keys deleted,
// and deletes them again at cleanup. Tests using it must not run in
// parallel: the gateway's prefix is fixed.
func redisURL(t *testing.T) string {
	t.Helper()
	c := redistest.Client(t) // skips without the server; closed at cleanup, after the flush below
	flush := func() {
		ctx := context.Background()
		for _, pattern := range []string{"{" + redisPrefix + "}*", redisPrefix + "*"} {
			iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				if err := c.Del(ctx, iter.Val()).Err(); err != nil {
					t.Errorf("delete %s: %v", iter.Val(), err)
				}
			}
			if err := iter.Err(); err != nil {
				t.Fatalf("scan %s in %s: %v", pattern, redistest.Env, err)
			}
		}
	}
	flush()
	t.Cleanup(flush)
	return os.Getenv(redistest.Env)
}

// TestProcessBudgetRaceAcrossReplicas runs three gateways sharing Redis
// and PostgreSQL in front of one fake and fires 500 concurrent requests of
// about $0.01 each at one key with a $1.00 hard budget.
func TestProcessBudgetRaceAcrossReplicas(t *testing.T) {
	dsn := postgresDSN(t)
	rurl := redisURL(t)
	const (
		replicas = 3
		requests = 500
		output   = 1000 // completion tokens: $0.01 at $10 per 1M
	)
	fake, base := startFake(t, fakeupstream.Options{Chunks: output})
	fake.SetDefault(fakeupstream.Behavior{Content: strings.Repeat("x", output)})
	dir := t.TempDir()
	env := []string{"DATABASE_URL=" + dsn, "REDIS_URL=" + rurl}
	addrs := make([]string, replicas)
	procs := make([]*process, replicas)
	for i := range replicas {
		addrs[i] = freeAddr(t)
		cfg := meteredConfig(t, dir, addrs[i], base,
			"ledger: {driver: postgres, dsn: \"${DATABASE_URL}\"}", "limits: {driver: redis, url: \"${REDIS_URL}\", prefix: "+redisPrefix+"}",
			`    budgets: [{limit: "1.00", period: total, mode: hard}]`+"\n")
		procs[i] = startMeteredProcess(t, env, "serve", "--config", cfg)
	}
	for i := range replicas {
		waitHealthy(t, addrs[i], procs[i].exited, procs[i].stderr)
	}

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		counts  = map[int]int{}
		perProc = make([]int, replicas)
		other   []string
	)
	start := make(chan struct{})
	for i := range requests {
		wg.Go(func() {
			<-start
			r := meteredChat(addrs[i%replicas], false, output)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.err != nil:
				other = append(other, r.err.Error())
			case r.status == http.StatusOK:
				counts[r.status]++
				perProc[i%replicas]++
			case r.status == http.StatusTooManyRequests:
				counts[r.status]++
			default:
				other = append(other, fmt.Sprintf("%d %s", r.status, r.body))
			}
		})
	}
	close(start)
	wg.Wait()
	if len(other) > 0 {
		t.Errorf("%d requests neither 200 nor 429, e.g. %s", len(other), other[0])
	}
	// Drain every replica so its batch writer commits what is queued.
	for i, p := range procs {
		p.signal(t, syscall.SIGTERM)
		if code := p.wait(t); code != 0 {
			t.Errorf("replica %d exit code = %d, want 0; logs:\n%s", i, code, p.stderr)
		}
	}

	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn})
	if err != nil {
		t.Fatalf("open the ledger: %v", err)
	}
	defer st.Close()
	_, total, err := st.Usage(context.Background(), ledger.Query{})
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	ok := counts[http.StatusOK]
	t.Logf("%d requests over %d replicas: %d served (per replica %v), %d refused; ledger: %d billable records of %d, settled %s",
		requests, replicas, ok, perProc, counts[http.StatusTooManyRequests], total.Requests, total.Records, total.BillableCost)
	settled, _ := new(big.Rat).SetString(total.BillableCost.String())
	if settled == nil || settled.Cmp(big.NewRat(1, 1)) > 0 {
		t.Errorf("settled billable cost = %s, want <= 1.00", total.BillableCost)
	}
	if ok < 90 {
		t.Errorf("%d requests served, want at least 90", ok)
	}
	if total.Requests != int64(ok) {
		t.Errorf("ledger has %d billable records, want one per 200: %d", total.Requests, ok)
	}
	// Each served request cost exactly 6 input tokens at $0.01 and 1000
	// output tokens at $10 per 1M: $0.01000006.
	per, _ := new(big.Rat).SetString("0.01000006")
	if want := new(big.Rat).Mul(per, big.NewRat(int64(ok), 1)); settled != nil && settled.Cmp(want) != 0 {
		t.Errorf("settled billable cost = %s, want %d × 0.01000006 = %s", total.BillableCost, ok, want.FloatString(8))
	}
}

// missingBillable reports which of ids lack a billable record in the SQLite
// ledger at path.
func missingBillable(t *testing.T, path string, ids []string) []string {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatalf("open the ledger %s: %v", path, err)
	}
	defer st.Close()
	var missing []string
	for _, id := range ids {
		recs, err := st.Records(context.Background(), id)
		if err != nil {
			t.Fatalf("Records(%q): %v", id, err)
		}
		n := 0
		for _, r := range recs {
			if r.Billable {
				n++
			}
		}
		if n != 1 {
			missing = append(missing, fmt.Sprintf("%s (%d billable of %d)", id, n, len(recs)))
		}
	}
	return missing
}

// loadUntil runs workers goroutines sending up to total chat requests to
// addr until they fail, and calls signal once after stopAfter requests
// have completed. It returns the ids of requests answered 200 whose body
// was read to its end (and, for streams, included [DONE]).
func loadUntil(addr string, workers, total, stopAfter int, signal func()) (served []string) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		next     atomic.Int64
		done     atomic.Int64
		signaled sync.Once
	)
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				r := meteredChat(addr, i%2 == 0, 0)
				if done.Add(1) == int64(stopAfter) {
					signaled.Do(signal)
				}
				if r.err != nil {
					if done.Load() >= int64(stopAfter) {
						return // the process is going away
					}
					continue
				}
				if r.status == http.StatusOK && (i%2 != 0 || bytes.Contains(r.body, []byte("data: [DONE]"))) {
					mu.Lock()
					served = append(served, r.id)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	signaled.Do(signal) // fewer requests than stopAfter completed
	return served
}

// TestProcessLedgerDurability checks that served requests are in the
// ledger after the process ends: drained by SIGTERM with the batch
// writer, and killed by SIGKILL with durability sync.
func TestProcessLedgerDurability(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		durability string
		sig        syscall.Signal
		wantExit   int // -1: killed
	}{
		{"SIGTERM batch", "batch", syscall.SIGTERM, 0},
		{"SIGKILL sync", "sync", syscall.SIGKILL, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, base := startFake(t, fakeupstream.Options{Chunks: 10})
			fake.SetDefault(fakeupstream.Behavior{ChunkDelay: 2 * time.Millisecond}) // requests overlap the signal
			dir := t.TempDir()
			db := filepath.Join(dir, "ledger.db")
			addr := freeAddr(t)
			cfg := meteredConfig(t, dir, addr, base,
				fmt.Sprintf("ledger: {path: %s, durability: %s}", db, tc.durability), "", "")
			p := startMeteredProcess(t, nil, "serve", "--config", cfg)
			waitHealthy(t, addr, p.exited, p.stderr)

			served := loadUntil(addr, 20, 300, 100, func() { _ = p.cmd.Process.Signal(tc.sig) })
			code := p.wait(t)
			if code != tc.wantExit {
				t.Errorf("exit code after %v = %d, want %d; logs:\n%s", tc.sig, code, tc.wantExit, p.stderr)
			}
			if len(served) < 50 {
				t.Fatalf("only %d requests served before %v; the test proves little", len(served), tc.sig)
			}
			missing := missingBillable(t, db, served)
			t.Logf("%s: %d requests served, %d without their billable record", tc.name, len(served), len(missing))
			if len(missing) > 0 {
				t.Errorf("%d of %d served requests lack their billable record after %v, e.g. %v", len(missing), len(served), tc.sig, missing[:min(5, len(missing))])
			}
		})
	}
}

// TestProcessUsageCommand checks that `multipolar usage` prints the
// figures /admin/usage answers, as JSON, CSV and a table, and refuses an
// unknown group.
func TestProcessUsageCommand(t *testing.T) {
	t.Parallel()
	_, base := startFake(t, fakeupstream.Options{})
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := meteredConfig(t, dir, addr, base, fmt.Sprintf("ledger: {path: %s}", filepath.Join(dir, "ledger.db")), "", "")
	p := startMeteredProcess(t, nil, "serve", "--config", cfg)
	waitHealthy(t, addr, p.exited, p.stderr)

	const n = 7
	for i := range n {
		if r := meteredChat(addr, i%2 == 0, 0); r.err != nil || r.status != http.StatusOK {
			t.Fatalf("request %d = %d, %v: %s", i, r.status, r.err, r.body)
		}
	}
	var admin []byte
	poll(t, "the ledger counts every request", p.stderr, func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/admin/usage?group_by=key", nil)
		req.Header.Set("Authorization", "Bearer "+adminSecret)
		resp, err := meterClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		admin, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && bytes.Contains(admin, []byte(fmt.Sprintf(`"requests":%d`, n)))
	})

	usage := func(args ...string) (int, string, string) {
		return runCLI(t, meteredEnv(), append([]string{"usage", "--config", cfg}, args...)...)
	}

	code, out, errOut := usage("--group-by", "key", "--format", "json")
	if code != 0 {
		t.Fatalf("usage --format json exit = %d; stderr:\n%s", code, errOut)
	}
	if out != string(admin) {
		t.Errorf("usage --format json printed\n%s\nwant what /admin/usage answers:\n%s", out, admin)
	}

	// The one row: n requests of 6 input tokens at $0.01 and 5 output
	// tokens at $10 per 1M, $0.00005006 each.
	var got struct {
		Rows []struct {
			Cost string `json:"cost"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(admin, &got); err != nil || len(got.Rows) != 1 {
		t.Fatalf("/admin/usage?group_by=key = %s (%v), want one row", admin, err)
	}
	cost := got.Rows[0].Cost
	if c, ok := new(big.Rat).SetString(cost); !ok || c.Cmp(big.NewRat(n*5006, 100_000_000)) != 0 {
		t.Errorf("cost = %q, want %d × 0.00005006", cost, n)
	}
	row := []string{"tests", fmt.Sprint(n), fmt.Sprint(6 * n), fmt.Sprint(5 * n), "0", cost}
	wantJSON := fmt.Sprintf(`{"rows":[{"key":"tests","requests":%s,"input_tokens":%s,"output_tokens":%s,"cached_tokens":0,"cost":"%s"}],"total":{"requests":%s,"input_tokens":%s,"output_tokens":%s,"cached_tokens":0,"cost":"%s"}}`+"\n",
		row[1], row[2], row[3], row[5], row[1], row[2], row[3], row[5])
	if string(admin) != wantJSON {
		t.Errorf("/admin/usage?group_by=key =\n%s\nwant\n%s", admin, wantJSON)
	}

	code, out, errOut = usage("--group-by", "key", "--format", "csv")
	if code != 0 {
		t.Fatalf("usage --format csv exit = %d; stderr:\n%s", code, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("usage --format csv: %v\n%s", err, out)
	}
	wantCSV := [][]string{{"key", "requests", "input_tokens", "output_tokens", "cached_tokens", "cost"}, {row[0], row[1], row[2], row[3], row[4], row[5]}}
	if diff := cmp.Diff(wantCSV, recs); diff != "" {
		t.Errorf("usage --format csv (-want +got):\n%s", diff)
	}

	code, out, errOut = usage("--group-by", "key", "--format", "table")
	if code != 0 {
		t.Fatalf("usage --format table exit = %d; stderr:\n%s", code, errOut)
	}
	var lines [][]string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		lines = append(lines, strings.Fields(sc.Text()))
	}
	wantTable := [][]string{wantCSV[0], wantCSV[1], {"TOTAL", row[1], row[2], row[3], row[4], row[5]}}
	if diff := cmp.Diff(wantTable, lines); diff != "" {
		t.Errorf("usage --format table (-want +got):\n%s\n%s", diff, out)
	}

	code, out, errOut = usage("--group-by", "colour")
	if code == 0 {
		t.Errorf("usage --group-by colour exit = 0, want non-zero; stdout:\n%s", out)
	}
	if !strings.Contains(errOut, `unknown group field "colour"`) {
		t.Errorf("usage --group-by colour stderr = %q, want it to name the unknown group field", errOut)
	}

	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0; logs:\n%s", code, p.stderr)
	}
}
