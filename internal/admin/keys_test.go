package admin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"

	"github.com/multipolar/multipolar/internal/admin"
	"github.com/multipolar/multipolar/internal/store/postgres"
	"github.com/multipolar/multipolar/internal/store/sqlite"
)

const pgEnv = "MULTIPOLAR_TEST_POSTGRES"

// forEachStore runs fn against a fresh SQLite store and, when pgEnv is
// set, a fresh PostgreSQL store in a schema of its own.
func forEachStore(t *testing.T, fn func(t *testing.T, s admin.KeyStore)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "keys.db")})
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		fn(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		s, err := postgres.Open(context.Background(), postgres.Options{DSN: pgSchema(t)})
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		fn(t, s)
	})
}

// pgSchema creates a randomly named schema, dropped at cleanup, and
// returns a URL DSN whose search_path points at it; it skips without pgEnv.
func pgSchema(t *testing.T) string {
	base := os.Getenv(pgEnv)
	if base == "" {
		t.Skip(pgEnv + " not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect %s: %v", pgEnv, err)
	}
	defer conn.Close(ctx)
	schema := "multipolar_admin_test_" + strings.ToLower(rand.Text()[:16])
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
	if err != nil {
		t.Fatalf("%s must be a URL: %v", pgEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// fixture is a Handler on a real store behind an httptest server, with a
// settable clock and a count of OnChange calls.
type fixture struct {
	store   admin.KeyStore
	handler *admin.Handler
	srv     *httptest.Server

	mu      sync.Mutex
	now     time.Time
	changes int
}

// newFixture serves a Handler on s; configure, if any, adjusts the
// handler before the server starts.
func newFixture(t *testing.T, s admin.KeyStore, configure ...func(h *admin.Handler)) *fixture {
	f := &fixture{store: s, now: time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)}
	f.handler = &admin.Handler{
		Store: s,
		Now: func() time.Time {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.now
		},
		OnChange: func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.changes++
		},
	}
	for _, c := range configure {
		c(f.handler)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/keys", f.handler)
	mux.Handle("/admin/keys/", f.handler)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// advance moves the clock and returns the new time as stored (µs, UTC).
func (f *fixture) advance(d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	return f.now.Truncate(time.Microsecond)
}

func (f *fixture) changeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changes
}

// do sends a request and returns the status and body.
func (f *fixture) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	return resp.StatusCode, b
}

// keyResp is a key as the API returns it.
type keyResp struct {
	Name     string         `json:"name"`
	Secret   *string        `json:"key"`
	Prefix   string         `json:"prefix"`
	Team     string         `json:"team"`
	Models   []string       `json:"models"`
	Workload string         `json:"workload"`
	Budgets  []admin.Budget `json:"budgets"`
	Limits   admin.Limits   `json:"limits"`
	Expires  *time.Time     `json:"expires"`
	Created  time.Time      `json:"created"`
	Revoked  *time.Time     `json:"revoked"`
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// mustDo is do that requires the status.
func (f *fixture) mustDo(t *testing.T, method, path, body string, want int) []byte {
	t.Helper()
	status, b := f.do(t, method, path, body)
	if status != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, status, b, want)
	}
	return b
}

// create creates a key and returns the answer and its secret.
func (f *fixture) create(t *testing.T, body string) (keyResp, string) {
	t.Helper()
	k := decode[keyResp](t, f.mustDo(t, "POST", "/admin/keys", body, http.StatusCreated))
	if k.Secret == nil || !strings.HasPrefix(*k.Secret, admin.SecretPrefix) {
		t.Fatalf("create answer has key %v, want a secret starting %q", k.Secret, admin.SecretPrefix)
	}
	return k, *k.Secret
}

func (f *fixture) byHash(t *testing.T, secret string) admin.Key {
	t.Helper()
	k, err := f.store.KeyByHash(t.Context(), sha256.Sum256([]byte(secret)))
	if err != nil {
		t.Fatalf("KeyByHash(sha256(secret)) = %v", err)
	}
	return k
}

const ciBody = `{"name":"ci","team":"search","models":["gpt-*"],"workload":"internal",
	"budgets":[{"limit":"5.00","period":"monthly","mode":"hard"},{"limit":"1","period":"daily","timezone":"Europe/Berlin"}],
	"limits":{"rpm":60,"tpm":100000},"expires":"2027-01-01T00:00:00Z"}`

func TestCreateAndList(t *testing.T) {
	forEachStore(t, func(t *testing.T, s admin.KeyStore) {
		f := newFixture(t, s)
		now := f.advance(0)
		got, secret := f.create(t, ciBody)
		if len(secret) != len(admin.SecretPrefix)+64 {
			t.Errorf("secret %q has %d characters, want %d", secret, len(secret), len(admin.SecretPrefix)+64)
		}
		expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		want := keyResp{
			Name: "ci", Secret: &secret, Prefix: secret[:8], Team: "search", Models: []string{"gpt-*"}, Workload: "internal",
			Budgets: []admin.Budget{
				{Limit: "5.00", Period: "monthly", Mode: "hard"},
				{Limit: "1", Period: "daily", Mode: "hard", Timezone: "Europe/Berlin"}, // mode defaults to hard
			},
			Limits: admin.Limits{RPM: 60, TPM: 100000}, Expires: &expires, Created: now,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("create answer (-want +got):\n%s", diff)
		}
		stored := f.byHash(t, secret)
		wantKey := admin.Key{
			Name: "ci", Hash: sha256.Sum256([]byte(secret)), Prefix: secret[:8], Team: "search", Workload: "internal",
			Models: want.Models, Budgets: want.Budgets, Limits: want.Limits, Expires: expires, Created: now,
		}
		if diff := cmp.Diff(wantKey, stored); diff != "" {
			t.Errorf("stored key (-want +got):\n%s", diff)
		}

		f.create(t, `{"name":"bare"}`)
		body := f.mustDo(t, "GET", "/admin/keys", "", http.StatusOK)
		if bytes.Contains(body, []byte(secret)) || bytes.Contains(body, []byte(`"key"`)) {
			t.Errorf("list shows a secret: %s", body)
		}
		list := decode[struct{ Keys []keyResp }](t, body)
		want.Secret = nil
		bare := keyResp{Name: "bare", Models: []string{}, Budgets: []admin.Budget{}, Created: now}
		if diff := cmp.Diff([]keyResp{bare, want}, list.Keys, cmpopts.IgnoreFields(keyResp{}, "Prefix")); diff != "" {
			t.Errorf("list (-want +got):\n%s", diff)
		}
		if n := f.changeCount(); n != 2 {
			t.Errorf("OnChange called %d times after 2 creates, want 2", n)
		}
	})
}

func TestConflict(t *testing.T) {
	forEachStore(t, func(t *testing.T, s admin.KeyStore) {
		f := newFixture(t, s)
		f.create(t, ciBody)
		body := f.mustDo(t, "POST", "/admin/keys", `{"name":"ci"}`, http.StatusConflict)
		if msg := errorMessage(t, body); !strings.Contains(msg, `"ci"`) {
			t.Errorf("409 message = %q, want the name", msg)
		}
		if keys, _ := s.Keys(t.Context()); len(keys) != 1 {
			t.Errorf("%d keys stored after a conflict, want 1", len(keys))
		}
		if n := f.changeCount(); n != 1 {
			t.Errorf("OnChange called %d times, want 1 (not on a conflict)", n)
		}
	})
}

func TestRevoke(t *testing.T) {
	forEachStore(t, func(t *testing.T, s admin.KeyStore) {
		f := newFixture(t, s)
		created, secret := f.create(t, ciBody)
		at := f.advance(time.Hour)
		got := decode[keyResp](t, f.mustDo(t, "POST", "/admin/keys/ci/revoke", "", http.StatusOK))
		want := created
		want.Secret, want.Revoked = nil, &at
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("revoke answer (-want +got):\n%s", diff)
		}
		if k := f.byHash(t, secret); !k.Revoked.Equal(at) {
			t.Errorf("KeyByHash after revoke: Revoked = %v, want %v", k.Revoked, at)
		}
		f.mustDo(t, "POST", "/admin/keys/ci/revoke", "", http.StatusNotFound)
		f.mustDo(t, "POST", "/admin/keys/nobody/revoke", "", http.StatusNotFound)
		f.mustDo(t, "POST", "/admin/keys/ci/rotate", "", http.StatusNotFound)
		f.create(t, ciBody) // the name is free again
		if n := f.changeCount(); n != 3 {
			t.Errorf("OnChange called %d times (create, revoke, create), want 3", n)
		}
	})
}

func TestRotate(t *testing.T) {
	forEachStore(t, func(t *testing.T, s admin.KeyStore) {
		f := newFixture(t, s)
		created, oldSecret := f.create(t, ciBody)
		at := f.advance(time.Minute)
		got := decode[keyResp](t, f.mustDo(t, "POST", "/admin/keys/ci/rotate", "", http.StatusOK))
		if got.Secret == nil || *got.Secret == oldSecret || !strings.HasPrefix(*got.Secret, admin.SecretPrefix) {
			t.Fatalf("rotate answer key = %v, want a new secret", got.Secret)
		}
		newSecret := *got.Secret
		want := created
		want.Secret, want.Prefix, want.Created = &newSecret, newSecret[:8], at
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("rotate answer (-want +got):\n%s", diff)
		}
		old, fresh := f.byHash(t, oldSecret), f.byHash(t, newSecret)
		if !old.Revoked.Equal(at) || !fresh.Revoked.IsZero() {
			t.Errorf("after rotate: old Revoked = %v (want %v), new Revoked = %v (want zero)", old.Revoked, at, fresh.Revoked)
		}
		old.Hash, old.Prefix, old.Created, old.Revoked = fresh.Hash, fresh.Prefix, fresh.Created, time.Time{}
		if diff := cmp.Diff(old, fresh); diff != "" {
			t.Errorf("rotated key settings differ (-old +new):\n%s", diff)
		}
		f.mustDo(t, "POST", "/admin/keys/nobody/rotate", "", http.StatusNotFound)
		if n := f.changeCount(); n != 2 {
			t.Errorf("OnChange called %d times (create, rotate), want 2", n)
		}
	})
}

func errorMessage(t *testing.T, body []byte) string {
	t.Helper()
	e := decode[struct{ Error struct{ Message string } }](t, body)
	if e.Error.Message == "" {
		t.Errorf("error body %s has no error.message", body)
	}
	return e.Error.Message
}
