package admin_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/multipolar/multipolar/internal/admin"
)

func TestValidation(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"no name", `{"team":"x"}`, "name: must match"},
		{"leading dash", `{"name":"-ci"}`, "name: must match"},
		{"space", `{"name":"c i"}`, "name: must match"},
		{"slash", `{"name":"a/b"}`, "name: must match"},
		{"too long", `{"name":"` + strings.Repeat("a", 129) + `"}`, "at most 128"},
		{"bad glob", `{"name":"ci","models":["gpt-["]}`, `models[0]: "gpt-[" is not a valid glob`},
		{"empty glob", `{"name":"ci","models":["gpt-*",""]}`, "models[1]"},
		{"limit not decimal", `{"name":"ci","budgets":[{"limit":"five","period":"daily"}]}`, "budgets[0].limit"},
		{"limit negative", `{"name":"ci","budgets":[{"limit":"-1","period":"daily"}]}`, "budgets[0].limit"},
		{"limit exponent", `{"name":"ci","budgets":[{"limit":"1e3","period":"daily"}]}`, "budgets[0].limit"},
		{"limit missing", `{"name":"ci","budgets":[{"period":"daily"}]}`, "budgets[0].limit"},
		{"period", `{"name":"ci","budgets":[{"limit":"1","period":"daily"},{"limit":"1","period":"yearly"}]}`, `budgets[1].period: "yearly"`},
		{"period missing", `{"name":"ci","budgets":[{"limit":"1"}]}`, "budgets[0].period"},
		{"mode", `{"name":"ci","budgets":[{"limit":"1","period":"total","mode":"strict"}]}`, `budgets[0].mode: "strict"`},
		{"timezone", `{"name":"ci","budgets":[{"limit":"1","period":"weekly","timezone":"Mars/Olympus"}]}`, "budgets[0].timezone"},
		{"rpm", `{"name":"ci","limits":{"rpm":-1}}`, "limits.rpm"},
		{"tpm", `{"name":"ci","limits":{"tpm":-5}}`, "limits.tpm"},
		{"expired", `{"name":"ci","expires":"2020-01-01T00:00:00Z"}`, "expires: must be in the future"},
		{"expires not a time", `{"name":"ci","expires":"tomorrow"}`, "invalid request body"},
		{"unknown field", `{"name":"ci","secret":"sk-mine"}`, `unknown field "secret"`},
		{"wrong type", `{"name":"ci","limits":{"rpm":"60"}}`, "invalid request body"},
		{"malformed", `{"name":`, "invalid request body"},
		{"trailing data", `{"name":"ci"} {}`, "data after the JSON object"},
		{"empty body", ``, "invalid request body"},
		{"rejected by Validate", `{"name":"ci","team":"nope"}`, `unknown team "nope"`},
	}
	forEachStore(t, func(t *testing.T, s admin.KeyStore) {
		f := newFixture(t, s, func(h *admin.Handler) {
			h.Validate = func(k admin.Key) error {
				if k.Team == "nope" {
					return errors.New(`team: unknown team "nope"`)
				}
				return nil
			}
		})
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				body := f.mustDo(t, "POST", "/admin/keys", tc.body, http.StatusBadRequest)
				if msg := errorMessage(t, body); !strings.Contains(msg, tc.want) {
					t.Errorf("POST %s: message = %q, want it to contain %q", tc.body, msg, tc.want)
				}
			})
		}
		if keys, err := s.Keys(t.Context()); err != nil || len(keys) != 0 {
			t.Errorf("Keys after invalid creates = %d keys, %v; want none", len(keys), err)
		}
		if n := f.changeCount(); n != 0 {
			t.Errorf("OnChange called %d times for invalid creates, want 0", n)
		}
		// Boundaries that are valid.
		f.create(t, `{"name":"A1._-z","models":["*"],"budgets":[{"limit":"0","period":"total","mode":"soft"}],"limits":{"rpm":0,"tpm":0}}`)
		f.create(t, `{"name":"`+strings.Repeat("a", 128)+`"}`)
	})
}

// TestNoSecretInResponses drives every endpoint, including its error
// answers, and checks that a secret appears only in the answer to the
// create or rotate call that made it, and that no hash appears anywhere.
func TestNoSecretInResponses(t *testing.T) {
	forEachStore(t, func(t *testing.T, s admin.KeyStore) {
		f := newFixture(t, s)
		type answer struct {
			call   string
			body   []byte
			secret string // the secret this answer may show
		}
		var answers []answer
		call := func(method, path, body string, want int) []byte {
			b := f.mustDo(t, method, path, body, want)
			answers = append(answers, answer{call: method + " " + path + " " + body, body: b})
			return b
		}
		issue := func(method, path, body string, want int) string {
			b := call(method, path, body, want)
			k := decode[keyResp](t, b)
			if k.Secret == nil {
				t.Fatalf("%s %s: no secret in %s", method, path, b)
			}
			answers[len(answers)-1].secret = *k.Secret
			return *k.Secret
		}
		var secrets []string
		secrets = append(secrets, issue("POST", "/admin/keys", ciBody, http.StatusCreated))
		secrets = append(secrets, issue("POST", "/admin/keys", `{"name":"other"}`, http.StatusCreated))
		call("GET", "/admin/keys", "", http.StatusOK)
		call("POST", "/admin/keys", `{"name":"ci"}`, http.StatusConflict)
		call("POST", "/admin/keys", `{"name":"ci","models":["["]}`, http.StatusBadRequest)
		secrets = append(secrets, issue("POST", "/admin/keys/ci/rotate", "", http.StatusOK))
		call("POST", "/admin/keys/other/revoke", "", http.StatusOK)
		call("POST", "/admin/keys/other/revoke", "", http.StatusNotFound)
		call("POST", "/admin/keys/other/rotate", "", http.StatusNotFound)
		call("GET", "/admin/keys/ci/rotate", "", http.StatusMethodNotAllowed)
		call("DELETE", "/admin/keys", "", http.StatusMethodNotAllowed)
		call("GET", "/admin/keys/ci", "", http.StatusNotFound)
		call("GET", "/admin/keys", "", http.StatusOK)
		for _, a := range answers {
			for _, secret := range secrets {
				hash := admin.HashSecret(secret)
				if secret != a.secret && bytes.Contains(a.body, []byte(secret[len(admin.SecretPrefix):])) {
					t.Errorf("%s: answer shows a secret it did not issue: %s", a.call, a.body)
				}
				if bytes.Contains(bytes.ToLower(a.body), []byte(hex.EncodeToString(hash[:]))) {
					t.Errorf("%s: answer shows a key hash: %s", a.call, a.body)
				}
			}
		}
	})
}

func TestRouting(t *testing.T) {
	forEachStore(t, func(t *testing.T, s admin.KeyStore) {
		f := newFixture(t, s)
		f.create(t, `{"name":"ci"}`)
		for _, tc := range []struct {
			method, path string
			want         int
			allow        string
		}{
			{"PUT", "/admin/keys", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
			{"DELETE", "/admin/keys/ci/revoke", http.StatusMethodNotAllowed, "POST"},
			{"POST", "/admin/keys/ci", http.StatusNotFound, ""},
			{"POST", "/admin/keys/ci/delete", http.StatusNotFound, ""},
			{"POST", "/admin/keys/ci/revoke/now", http.StatusNotFound, ""},
			{"POST", "/admin/keys/-bad/revoke", http.StatusNotFound, ""},
			{"GET", "/admin/keys/", http.StatusOK, ""},
		} {
			req := httptest.NewRequestWithContext(t.Context(), tc.method, tc.path, nil)
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, req)
			if rec.Code != tc.want || rec.Header().Get("Allow") != tc.allow {
				t.Errorf("%s %s = %d (Allow %q), want %d (Allow %q)", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"), tc.want, tc.allow)
			}
		}
		// Mounted under http.StripPrefix, paths arrive without the prefix.
		stripped := http.StripPrefix("/admin/keys", f.handler)
		rec := httptest.NewRecorder()
		stripped.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "POST", "/admin/keys/ci/revoke", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("revoke under StripPrefix = %d %s, want 200", rec.Code, rec.Body)
		}
	})
}

func TestSecrets(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := admin.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, admin.SecretPrefix) || len(s) != len(admin.SecretPrefix)+64 || seen[s] {
			t.Fatalf("NewSecret() = %q, want a new %q + 64 hex digits", s, admin.SecretPrefix)
		}
		if _, err := hex.DecodeString(s[len(admin.SecretPrefix):]); err != nil {
			t.Fatalf("NewSecret() = %q: %v", s, err)
		}
		seen[s] = true
	}

	forEachStore(t, func(t *testing.T, s admin.KeyStore) {
		var mu sync.Mutex
		broken := true
		f := newFixture(t, s, func(h *admin.Handler) {
			h.NewSecret = func() (string, error) {
				mu.Lock()
				defer mu.Unlock()
				if broken {
					return "", errors.New("entropy exhausted: /dev/urandom")
				}
				return "sk-mp-fixed-secret-0001", nil
			}
		})
		body := f.mustDo(t, "POST", "/admin/keys", `{"name":"ci"}`, http.StatusInternalServerError)
		if msg := errorMessage(t, body); msg != "internal error" {
			t.Errorf("500 message = %q, want \"internal error\" without details", msg)
		}
		mu.Lock()
		broken = false
		mu.Unlock()
		k, secret := f.create(t, `{"name":"ci"}`)
		if secret != "sk-mp-fixed-secret-0001" || k.Prefix != "sk-mp-fi" {
			t.Errorf("create with NewSecret = %q, prefix %q", secret, k.Prefix)
		}
		if got := f.byHash(t, secret); got.Name != "ci" {
			t.Errorf("KeyByHash(fixed secret) = %q, want ci", got.Name)
		}
	})
}
