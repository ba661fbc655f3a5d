package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Key is a stored API key. The secret itself is never stored: Hash is its
// SHA-256 and Prefix its first PrefixLen characters, for display. Times
// are UTC and kept to the microsecond.
type Key struct {
	Name     string
	Hash     [32]byte
	Prefix   string
	Team     string
	Workload string
	// Models are globs (path.Match syntax) of the models the key may use;
	// empty means every model.
	Models  []string
	Budgets []Budget
	Limits  Limits
	// Expires is when the key stops working; zero means never.
	Expires time.Time
	Created time.Time
	// Revoked is when the key was revoked; zero means it is active.
	Revoked time.Time
}

// Budget caps a key's spend over a period, as config.Budget does.
type Budget struct {
	// Limit is the cap in USD, a non-negative decimal string ("5.00").
	Limit string `json:"limit"`
	// Period is daily, weekly, monthly or total.
	Period string `json:"period"`
	// Mode is hard (refused once reached) or soft (alerted only).
	Mode string `json:"mode"`
	// Timezone places the period's boundaries; empty means the gateway's.
	Timezone string `json:"timezone,omitempty"`
}

// Limits are requests and tokens per minute; 0 means unlimited.
type Limits struct {
	RPM int64 `json:"rpm"`
	TPM int64 `json:"tpm"`
}

// KeyStore keeps API keys. At most one key per name is active (not
// revoked); revoked keys stay stored. Implementations are safe for
// concurrent use.
type KeyStore interface {
	// CreateKey stores k. It returns ErrKeyExists when an active key has
	// k.Name and ErrHashExists when any key has k.Hash.
	CreateKey(ctx context.Context, k Key) error
	// Keys returns every key, revoked ones included, ordered by name then
	// creation time.
	Keys(ctx context.Context) ([]Key, error)
	// KeyByHash returns the key with the given hash, revoked or not
	// (callers check Revoked and Expires), or ErrKeyNotFound.
	KeyByHash(ctx context.Context, hash [32]byte) (Key, error)
	// RevokeKey revokes the active key named name at the given time, or
	// returns ErrKeyNotFound when there is none.
	RevokeKey(ctx context.Context, name string, at time.Time) error
	// RotateKey atomically revokes the active key named name at the given
	// time and stores a copy of it with the new hash and prefix, created
	// at that time, which it returns; ErrKeyNotFound when there is none.
	RotateKey(ctx context.Context, name string, newHash [32]byte, newPrefix string, at time.Time) (Key, error)
}

// Errors of KeyStore.
var (
	ErrKeyExists   = errors.New("an active key with this name exists")
	ErrHashExists  = errors.New("a key with this hash exists")
	ErrKeyNotFound = errors.New("key not found")
)

// PrefixLen is the number of leading characters of a secret kept as
// Key.Prefix.
const PrefixLen = 8

// SecretPrefix starts every secret made by NewSecret.
const SecretPrefix = "sk-mp-"

// NewSecret returns SecretPrefix followed by 32 random bytes in hex.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new secret: %w", err)
	}
	return SecretPrefix + hex.EncodeToString(b[:]), nil
}

// HashSecret returns the hash a key's secret is stored and looked up by.
func HashSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }
