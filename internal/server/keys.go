package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/multipolar/multipolar/internal/admin"
	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/ratelimit"
)

// keyCacheTTL bounds how long a key managed through /admin/keys is trusted
// without asking the store again: a revocation on one replica reaches the
// others within it. Unknown tokens are remembered as long, so a flood of bad
// keys does not reach the store.
const keyCacheTTL = 5 * time.Second

// keyCacheMax bounds the cache; past it, entries are dropped wholesale.
const keyCacheMax = 100_000

// dynamicKeys resolves keys created through the admin API. It belongs to
// one snapshot (a key's allowed models depend on the configuration) and is
// safe for concurrent use.
type dynamicKeys struct {
	store admin.KeyStore // nil: no admin-managed keys
	snap  *snapshot
	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedKey
}

type cachedKey struct {
	entry   *keyEntry // nil: no such active key
	expires time.Time
}

// lookup returns the active key with this hash, or nil.
func (d *dynamicKeys) lookup(ctx context.Context, hash [sha256.Size]byte, now time.Time) (*keyEntry, error) {
	if d == nil || d.store == nil {
		return nil, nil
	}
	d.mu.Lock()
	c, ok := d.cache[hash]
	d.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.entry, nil
	}
	k, err := d.store.KeyByHash(ctx, hash)
	var entry *keyEntry
	switch {
	case errors.Is(err, admin.ErrKeyNotFound):
	case err != nil:
		return nil, err
	case k.Revoked.IsZero():
		if entry, err = d.snap.entryFor(&k); err != nil {
			return nil, err
		}
	}
	d.mu.Lock()
	if len(d.cache) >= keyCacheMax {
		clear(d.cache)
	}
	d.cache[hash] = cachedKey{entry: entry, expires: now.Add(keyCacheTTL)}
	d.mu.Unlock()
	return entry, nil
}

// forget drops every cached key, after a change made on this replica.
func (d *dynamicKeys) forget() {
	d.mu.Lock()
	clear(d.cache)
	d.mu.Unlock()
}

// entryFor compiles an admin-managed key against this snapshot, as config
// keys are compiled.
func (snap *snapshot) entryFor(k *admin.Key) (*keyEntry, error) {
	ck := config.Key{Name: k.Name, Models: k.Models, Team: k.Team, Workload: k.Workload,
		Limits: config.RateLimits{RPM: k.Limits.RPM, TPM: k.Limits.TPM}, Expires: config.Date{Time: k.Expires}}
	for _, b := range k.Budgets {
		tz := b.Timezone
		if tz == "" {
			tz = snap.cfg.Timezone
		}
		ck.Budgets = append(ck.Budgets, config.Budget{Limit: config.Decimal(b.Limit), Period: b.Period, Mode: b.Mode, Timezone: tz})
	}
	ke, err := snap.compileKey(&ck, k.Hash)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", k.Name, err)
	}
	return ke, nil
}

// compileKey builds a key's entry: its allowed models, its own and its
// team's budgets and limits.
func (snap *snapshot) compileKey(k *config.Key, hash [sha256.Size]byte) (*keyEntry, error) {
	ke := &keyEntry{name: k.Name, team: k.Team, workload: k.Workload, expires: k.Expires.Time,
		hash: hash, allowed: make(map[string]bool)}
	var err error
	if ke.budgets, err = compileBudgets("key:"+k.Name, k.Budgets); err != nil {
		return nil, fmt.Errorf("budgets: %w", err)
	}
	if l := k.Limits; l.RPM > 0 || l.TPM > 0 {
		ke.limits = append(ke.limits, ratelimit.Limit{Name: "key:" + k.Name, RPM: l.RPM, TPM: l.TPM})
	}
	for i := range snap.cfg.Teams {
		t := &snap.cfg.Teams[i]
		if t.Name != k.Team {
			continue
		}
		tb, err := compileBudgets("team:"+t.Name, t.Budgets)
		if err != nil {
			return nil, fmt.Errorf("team %s budgets: %w", t.Name, err)
		}
		ke.budgets = append(ke.budgets, tb...)
		if l := t.Limits; l.RPM > 0 || l.TPM > 0 {
			ke.limits = append(ke.limits, ratelimit.Limit{Name: "team:" + t.Name, RPM: l.RPM, TPM: l.TPM})
		}
	}
	for _, n := range snap.modelNames {
		if globsMatch(k.Models, n) {
			ke.allowed[n] = true
		}
	}
	ke.modelsJSON = modelList(snap.modelNames, ke.allowed, snap.loadedAtUnix)
	ke.modelsAnthropicJSON = anthropicModelList(snap.modelNames, ke.allowed, snap.loadedAtUnix)
	return ke, nil
}

// validateAdminKey checks a key created through the admin API against the
// configuration in force: its team must exist and its budgets compile.
func (s *Server) validateAdminKey(k admin.Key) error {
	snap := s.snap.Load()
	if k.Team != "" {
		found := false
		for i := range snap.cfg.Teams {
			found = found || snap.cfg.Teams[i].Name == k.Team
		}
		if !found {
			return fmt.Errorf("unknown team %q", k.Team)
		}
	}
	for _, ck := range snap.cfg.Keys {
		if ck.Name == k.Name {
			return fmt.Errorf("a key named %q is declared in the configuration", k.Name)
		}
	}
	_, err := snap.entryFor(&k)
	return err
}
