package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/multipolar/multipolar/internal/admin"
)

// testKeys runs the admin.KeyStore cases against one store. Each case uses
// names of its own, so they share the store.
func testKeys(t *testing.T, s Store) {
	ks, ok := s.(admin.KeyStore)
	if !ok {
		t.Fatalf("store %T does not implement admin.KeyStore", s)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s admin.KeyStore)
	}{
		{"RoundTrip", testKeyRoundTrip},
		{"DuplicateActiveName", testKeyDuplicateName},
		{"DuplicateHash", testKeyDuplicateHash},
		{"NameReusableAfterRevoke", testKeyReuseName},
		{"Revoke", testKeyRevoke},
		{"Rotate", testKeyRotate},
		{"ConcurrentCreates", testKeyConcurrentCreates},
		{"ConcurrentRotates", testKeyConcurrentRotates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, ks) })
	}
}

var cmpKeys = cmp.Options{cmpopts.EquateEmpty()}

// hashOf returns a distinct hash for each label.
func hashOf(label string) [32]byte { return sha256.Sum256([]byte("storetest " + label)) }

// newKey returns a key with every field set, created at epoch.
func newKey(name, secret string) admin.Key {
	return admin.Key{
		Name: name, Hash: hashOf(secret), Prefix: "sk-mp-" + secret[:2],
		Team: "search", Workload: "internal", Models: []string{"gpt-*", "claude-[a-z]*"},
		Budgets: []admin.Budget{
			{Limit: "5.00", Period: "monthly", Mode: "hard"},
			{Limit: "0.000000000000000001", Period: "daily", Mode: "soft", Timezone: "Europe/Berlin"},
		},
		Limits:  admin.Limits{RPM: 60, TPM: 1<<63 - 1},
		Expires: time.Date(2027, 1, 1, 0, 0, 0, 1000, time.UTC),
		Created: epoch,
	}
}

func mustCreateKey(t *testing.T, s admin.KeyStore, k admin.Key) {
	t.Helper()
	if err := s.CreateKey(ctxT(t), k); err != nil {
		t.Fatalf("CreateKey(%q) = %v", k.Name, err)
	}
}

func mustKeyByHash(t *testing.T, s admin.KeyStore, h [32]byte) admin.Key {
	t.Helper()
	k, err := s.KeyByHash(ctxT(t), h)
	if err != nil {
		t.Fatalf("KeyByHash = %v", err)
	}
	return k
}

// keysNamed returns the stored keys with the given name, in store order.
func keysNamed(t *testing.T, s admin.KeyStore, name string) []admin.Key {
	t.Helper()
	all, err := s.Keys(ctxT(t))
	if err != nil {
		t.Fatalf("Keys = %v", err)
	}
	var out []admin.Key
	for _, k := range all {
		if k.Name == name {
			out = append(out, k)
		}
	}
	return out
}

func testKeyRoundTrip(t *testing.T, s admin.KeyStore) {
	a := newKey("rt-a", "rt-a secret")
	a.Team, a.Workload = "ключ-🔑", `batch 'quoted' "x"`
	a.Created = time.Date(2026, 3, 4, 7, 6, 7, 999999000, time.FixedZone("CEST", 2*3600)) // read back in UTC
	b := newKey("rt-b", "rt-b secret")                                                    // nothing optional set
	b.Team, b.Workload, b.Models, b.Budgets, b.Limits, b.Expires = "", "", nil, nil, admin.Limits{}, time.Time{}
	mustCreateKey(t, s, b)
	mustCreateKey(t, s, a)

	want := a
	want.Created = a.Created.UTC()
	got := mustKeyByHash(t, s, a.Hash)
	if diff := cmp.Diff(want, got, cmpKeys); diff != "" {
		t.Errorf("KeyByHash(rt-a) mismatch (-want +got):\n%s", diff)
	}
	if got.Created.Location() != time.UTC || got.Expires.Location() != time.UTC {
		t.Errorf("KeyByHash times in %v, %v; want UTC", got.Created.Location(), got.Expires.Location())
	}
	if got := mustKeyByHash(t, s, b.Hash); !cmp.Equal(b, got, cmpKeys) || !got.Expires.IsZero() || !got.Revoked.IsZero() {
		t.Errorf("KeyByHash(rt-b) mismatch (-want +got):\n%s", cmp.Diff(b, got, cmpKeys))
	}
	listed := append(keysNamed(t, s, "rt-a"), keysNamed(t, s, "rt-b")...)
	if diff := cmp.Diff([]admin.Key{want, b}, listed, cmpKeys); diff != "" {
		t.Errorf("Keys mismatch (-want +got):\n%s", diff)
	}
	if _, err := s.KeyByHash(ctxT(t), hashOf("never stored")); !errors.Is(err, admin.ErrKeyNotFound) {
		t.Errorf("KeyByHash(unknown) = %v, want ErrKeyNotFound", err)
	}
}

func testKeyDuplicateName(t *testing.T, s admin.KeyStore) {
	first := newKey("dup", "dup 1")
	mustCreateKey(t, s, first)
	second := newKey("dup", "dup 2")
	second.Team = "other"
	if err := s.CreateKey(ctxT(t), second); !errors.Is(err, admin.ErrKeyExists) {
		t.Errorf("CreateKey(second active dup) = %v, want ErrKeyExists", err)
	}
	if got := keysNamed(t, s, "dup"); len(got) != 1 || got[0].Team != "search" {
		t.Errorf("keys named dup = %v, want the first only", got)
	}
	if _, err := s.KeyByHash(ctxT(t), second.Hash); !errors.Is(err, admin.ErrKeyNotFound) {
		t.Errorf("KeyByHash(refused key) = %v, want ErrKeyNotFound", err)
	}
}

func testKeyDuplicateHash(t *testing.T, s admin.KeyStore) {
	mustCreateKey(t, s, newKey("hash-1", "same secret"))
	if err := s.CreateKey(ctxT(t), newKey("hash-2", "same secret")); !errors.Is(err, admin.ErrHashExists) {
		t.Errorf("CreateKey(same hash, other name) = %v, want ErrHashExists", err)
	}
	mustCreateKey(t, s, newKey("hash-3", "other secret"))
	if _, err := s.RotateKey(ctxT(t), "hash-3", hashOf("same secret"), "x", epoch.Add(time.Hour)); !errors.Is(err, admin.ErrHashExists) {
		t.Errorf("RotateKey(to a stored hash) = %v, want ErrHashExists", err)
	}
	if got := mustKeyByHash(t, s, hashOf("other secret")); !got.Revoked.IsZero() {
		t.Errorf("failed rotation revoked the key at %v; want it kept active", got.Revoked)
	}
}

func testKeyReuseName(t *testing.T, s admin.KeyStore) {
	old := newKey("reuse", "reuse 1")
	mustCreateKey(t, s, old)
	revokedAt := epoch.Add(time.Hour)
	if err := s.RevokeKey(ctxT(t), "reuse", revokedAt); err != nil {
		t.Fatalf("RevokeKey = %v", err)
	}
	fresh := newKey("reuse", "reuse 2")
	fresh.Created = epoch.Add(2 * time.Hour)
	mustCreateKey(t, s, fresh)
	old.Revoked = revokedAt
	if diff := cmp.Diff([]admin.Key{old, fresh}, keysNamed(t, s, "reuse"), cmpKeys); diff != "" {
		t.Errorf("keys named reuse (-want +got):\n%s", diff)
	}
	if err := s.CreateKey(ctxT(t), newKey("reuse", "reuse 3")); !errors.Is(err, admin.ErrKeyExists) {
		t.Errorf("CreateKey(third, second active) = %v, want ErrKeyExists", err)
	}
}

func testKeyRevoke(t *testing.T, s admin.KeyStore) {
	if err := s.RevokeKey(ctxT(t), "revoke-none", epoch); !errors.Is(err, admin.ErrKeyNotFound) {
		t.Errorf("RevokeKey(unknown) = %v, want ErrKeyNotFound", err)
	}
	k := newKey("revoke", "revoke 1")
	mustCreateKey(t, s, k)
	at := time.Date(2026, 5, 6, 9, 8, 7, 654321000, time.FixedZone("X", -5*3600))
	if err := s.RevokeKey(ctxT(t), "revoke", at); err != nil {
		t.Fatalf("RevokeKey = %v", err)
	}
	got := mustKeyByHash(t, s, k.Hash) // revoked keys are still found
	k.Revoked = at.UTC()
	if diff := cmp.Diff(k, got, cmpKeys); diff != "" {
		t.Errorf("KeyByHash after revoke (-want +got):\n%s", diff)
	}
	if got.Revoked.Location() != time.UTC {
		t.Errorf("Revoked in %v, want UTC", got.Revoked.Location())
	}
	if err := s.RevokeKey(ctxT(t), "revoke", at.Add(time.Hour)); !errors.Is(err, admin.ErrKeyNotFound) {
		t.Errorf("RevokeKey(already revoked) = %v, want ErrKeyNotFound", err)
	}
	if got := mustKeyByHash(t, s, k.Hash); !got.Revoked.Equal(at) {
		t.Errorf("second revoke moved Revoked to %v, want %v", got.Revoked, at)
	}
}

func testKeyRotate(t *testing.T, s admin.KeyStore) {
	if _, err := s.RotateKey(ctxT(t), "rotate-none", hashOf("x"), "x", epoch); !errors.Is(err, admin.ErrKeyNotFound) {
		t.Errorf("RotateKey(unknown) = %v, want ErrKeyNotFound", err)
	}
	old := newKey("rotate", "rotate 1")
	mustCreateKey(t, s, old)
	at := epoch.Add(24*time.Hour + time.Microsecond)
	got, err := s.RotateKey(ctxT(t), "rotate", hashOf("rotate 2"), "sk-mp-r2", at)
	if err != nil {
		t.Fatalf("RotateKey = %v", err)
	}
	want := old
	want.Hash, want.Prefix, want.Created = hashOf("rotate 2"), "sk-mp-r2", at
	if diff := cmp.Diff(want, got, cmpKeys); diff != "" {
		t.Errorf("RotateKey result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, mustKeyByHash(t, s, want.Hash), cmpKeys); diff != "" {
		t.Errorf("KeyByHash(new hash) (-want +got):\n%s", diff)
	}
	old.Revoked = at
	if diff := cmp.Diff(old, mustKeyByHash(t, s, old.Hash), cmpKeys); diff != "" {
		t.Errorf("KeyByHash(old hash) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]admin.Key{old, want}, keysNamed(t, s, "rotate"), cmpKeys); diff != "" {
		t.Errorf("keys named rotate (-want +got):\n%s", diff)
	}
	if err := s.RevokeKey(ctxT(t), "rotate", at.Add(time.Hour)); err != nil {
		t.Errorf("RevokeKey(rotated) = %v", err)
	}
	if _, err := s.RotateKey(ctxT(t), "rotate", hashOf("rotate 3"), "x", at.Add(2*time.Hour)); !errors.Is(err, admin.ErrKeyNotFound) {
		t.Errorf("RotateKey(revoked) = %v, want ErrKeyNotFound", err)
	}
}

func testKeyConcurrentCreates(t *testing.T, s admin.KeyStore) {
	const n = 12
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.CreateKey(ctxT(t), newKey("race", fmt.Sprint("race ", i))) })
	}
	wg.Wait()
	var won int
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, admin.ErrKeyExists):
			t.Errorf("CreateKey #%d = %v, want nil or ErrKeyExists", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d concurrent creates of one name succeeded, want 1", won)
	}
	if got := keysNamed(t, s, "race"); len(got) != 1 {
		t.Errorf("%d keys named race stored, want 1", len(got))
	}
}

// testKeyConcurrentRotates checks that rotations never leave two active
// keys of a name: each either succeeds or finds the key already rotated.
func testKeyConcurrentRotates(t *testing.T, s admin.KeyStore) {
	mustCreateKey(t, s, newKey("spin", "spin 0"))
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.RotateKey(ctxT(t), "spin", hashOf(fmt.Sprint("spin ", i+1)), "x", epoch.Add(time.Duration(i+1)*time.Second))
		})
	}
	wg.Wait()
	var won int
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, admin.ErrKeyNotFound):
			t.Errorf("RotateKey #%d = %v, want nil or ErrKeyNotFound", i, err)
		}
	}
	keys := keysNamed(t, s, "spin")
	var active int
	for _, k := range keys {
		if k.Revoked.IsZero() {
			active++
		}
	}
	if won == 0 || active != 1 || len(keys) != 1+won {
		t.Errorf("after %d successful rotations: %d keys, %d active; want %d keys, 1 active", won, len(keys), active, 1+won)
	}
}
