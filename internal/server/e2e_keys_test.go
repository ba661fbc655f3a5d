package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/multipolar/multipolar/internal/testutil/fakeupstream"
)

// TestAdminKeys creates a key through /admin/keys, uses it, and revokes and
// rotates it: the secret is shown once, the key's model globs hold, and a
// revoked or rotated-away secret is refused at once on this replica.
func TestAdminKeys(t *testing.T) {
	u := newUpstream(t, fakeupstream.Options{})
	g := startGateway(t, fmt.Sprintf(`
providers:
  - {name: compat, type: openai-compatible, base_url: %s/v1}
models:
  - {name: gpt-4o, routes: [compat]}
  - {name: llama, routes: [compat]}
teams:
  - {name: search}
`+keysYAML, u.URL))
	chat := func(secret, model string) int {
		resp, _ := g.do(t, http.MethodPost, "/v1/chat/completions", secret,
			[]byte(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
		return resp.StatusCode
	}

	resp, body := g.do(t, http.MethodPost, "/admin/keys", adminToken,
		[]byte(`{"name":"ci","team":"search","models":["gpt-*"],"limits":{"rpm":100}}`))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var created struct{ Key, Prefix string }
	if err := json.Unmarshal(body, &created); err != nil || !strings.HasPrefix(created.Key, "sk-mp-") {
		t.Fatalf("create answer %s: %v", body, err)
	}
	if got := chat(created.Key, "gpt-4o"); got != http.StatusOK {
		t.Errorf("new key on gpt-4o: status %d, want 200", got)
	}
	if got := chat(created.Key, "llama"); got != http.StatusForbidden {
		t.Errorf("new key on llama (outside its globs): status %d, want 403", got)
	}
	resp, body = g.do(t, http.MethodGet, "/admin/keys", adminToken, nil)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), created.Key) {
		t.Errorf("list: %d, leaks the secret: %v", resp.StatusCode, strings.Contains(string(body), created.Key))
	}
	if resp, _ := g.do(t, http.MethodGet, "/admin/keys", keyAll, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("list with a virtual key: %d, want 401", resp.StatusCode)
	}

	// Rotation: the old secret stops at once, the new one works.
	resp, body = g.do(t, http.MethodPost, "/admin/keys/ci/rotate", adminToken, nil)
	var rotated struct{ Key string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &rotated) != nil || rotated.Key == created.Key {
		t.Fatalf("rotate: %d %s", resp.StatusCode, body)
	}
	if got := chat(created.Key, "gpt-4o"); got != http.StatusUnauthorized {
		t.Errorf("rotated-away secret: status %d, want 401", got)
	}
	if got := chat(rotated.Key, "gpt-4o"); got != http.StatusOK {
		t.Errorf("rotated secret: status %d, want 200", got)
	}

	// Revocation.
	if resp, body := g.do(t, http.MethodPost, "/admin/keys/ci/revoke", adminToken, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if got := chat(rotated.Key, "gpt-4o"); got != http.StatusUnauthorized {
		t.Errorf("revoked secret: status %d, want 401", got)
	}

	// Keys are checked against the configuration in force.
	for _, bad := range []string{`{"name":"x","team":"nope"}`, `{"name":"all"}`} {
		if resp, body := g.do(t, http.MethodPost, "/admin/keys", adminToken, []byte(bad)); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("create %s: %d %s, want 400", bad, resp.StatusCode, body)
		}
	}
}
