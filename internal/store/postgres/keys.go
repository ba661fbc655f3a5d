package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/multipolar/multipolar/internal/admin"
)

var _ admin.KeyStore = (*Store)(nil)

const keyColumns = `name, hash, prefix, team, workload, models, budgets, rpm, tpm, expires, created, revoked`

// keyBudget is a budget as stored in the budgets JSON column. It is
// declared here, not taken from admin.Budget's tags, so that a change to
// the API cannot silently change the stored format.
type keyBudget struct {
	Limit    string `json:"limit"`
	Period   string `json:"period"`
	Mode     string `json:"mode"`
	Timezone string `json:"timezone,omitempty"`
}

// keyConflict maps a unique violation of api_keys to the KeyStore error,
// by the name of the index that was violated.
func keyConflict(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != uniqueViolation {
		return err
	}
	switch pgErr.ConstraintName {
	case "api_keys_active_name":
		return admin.ErrKeyExists
	case "api_keys_hash":
		return admin.ErrHashExists
	}
	return err
}

// CreateKey implements admin.KeyStore with one INSERT. The unique indexes
// decide between concurrent creators: a second insert of an active name
// waits for the first to commit, then fails.
func (s *Store) CreateKey(ctx context.Context, k admin.Key) error {
	models, budgets, err := encodeKeyLists(k)
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		k.Name, k.Hash[:], k.Prefix, k.Team, k.Workload, models, budgets, k.Limits.RPM, k.Limits.TPM,
		pgTime(k.Expires), k.Created.Truncate(time.Microsecond), pgTime(k.Revoked))
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, keyConflict(err))
	}
	return nil
}

// Keys implements admin.KeyStore.
func (s *Store) Keys(ctx context.Context) ([]admin.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY name, created, id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []admin.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// KeyByHash implements admin.KeyStore.
func (s *Store) KeyByHash(ctx context.Context, hash [32]byte) (admin.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = $1`, hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return admin.Key{}, admin.ErrKeyNotFound
	}
	if err != nil {
		return admin.Key{}, fmt.Errorf("key by hash: %w", err)
	}
	return k, nil
}

// RevokeKey implements admin.KeyStore.
func (s *Store) RevokeKey(ctx context.Context, name string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET revoked = $2 WHERE name = $1 AND revoked IS NULL`,
		name, at.Truncate(time.Microsecond))
	if err != nil {
		return fmt.Errorf("revoke key %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke key %q: %w", name, admin.ErrKeyNotFound)
	}
	return nil
}

// RotateKey implements admin.KeyStore in one transaction: revoke the
// active key (RETURNING its settings), insert the copy. A concurrent
// rotation of the same name waits on the row lock, then finds the row
// revoked and returns ErrKeyNotFound.
func (s *Store) RotateKey(ctx context.Context, name string, newHash [32]byte, newPrefix string, at time.Time) (admin.Key, error) {
	at = at.Truncate(time.Microsecond)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: begin: %w", name, err)
	}
	defer tx.Rollback(ctx)
	k, err := scanKey(tx.QueryRow(ctx, `UPDATE api_keys SET revoked = $2 WHERE name = $1 AND revoked IS NULL
		RETURNING `+keyColumns, name, at))
	if errors.Is(err, pgx.ErrNoRows) {
		return admin.Key{}, fmt.Errorf("rotate key %q: %w", name, admin.ErrKeyNotFound)
	}
	if err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: revoke: %w", name, err)
	}
	k.Hash, k.Prefix, k.Created, k.Revoked = newHash, newPrefix, at.UTC(), time.Time{}
	models, budgets, err := encodeKeyLists(k)
	if err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: %w", name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,NULL)`,
		k.Name, k.Hash[:], k.Prefix, k.Team, k.Workload, models, budgets, k.Limits.RPM, k.Limits.TPM,
		pgTime(k.Expires), k.Created); err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: insert: %w", name, keyConflict(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: commit: %w", name, err)
	}
	return k, nil
}

// pgTime returns t to the microsecond PostgreSQL keeps, or NULL for the
// zero time.
func pgTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Truncate(time.Microsecond)
}

func fromPG(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// encodeKeyLists returns k's models and budgets as JSON arrays.
func encodeKeyLists(k admin.Key) (models, budgets string, err error) {
	ms := k.Models
	if ms == nil {
		ms = []string{}
	}
	bs := make([]keyBudget, len(k.Budgets))
	for i, b := range k.Budgets {
		bs[i] = keyBudget(b)
	}
	m, err := json.Marshal(ms)
	if err != nil {
		return "", "", fmt.Errorf("models: %w", err)
	}
	b, err := json.Marshal(bs)
	if err != nil {
		return "", "", fmt.Errorf("budgets: %w", err)
	}
	return string(m), string(b), nil
}

// scanKey reads keyColumns from a pgx.Row (pgx.Rows is one too).
func scanKey(row pgx.Row) (admin.Key, error) {
	var k admin.Key
	var hash []byte
	var models, budgets string
	var expires, revoked *time.Time
	if err := row.Scan(&k.Name, &hash, &k.Prefix, &k.Team, &k.Workload, &models, &budgets,
		&k.Limits.RPM, &k.Limits.TPM, &expires, &k.Created, &revoked); err != nil {
		return admin.Key{}, err
	}
	if len(hash) != len(k.Hash) {
		return admin.Key{}, fmt.Errorf("key %q: stored hash has %d bytes, want %d", k.Name, len(hash), len(k.Hash))
	}
	copy(k.Hash[:], hash)
	k.Expires, k.Created, k.Revoked = fromPG(expires), k.Created.UTC(), fromPG(revoked)
	if err := json.Unmarshal([]byte(models), &k.Models); err != nil {
		return admin.Key{}, fmt.Errorf("key %q: models: %w", k.Name, err)
	}
	var bs []keyBudget
	if err := json.Unmarshal([]byte(budgets), &bs); err != nil {
		return admin.Key{}, fmt.Errorf("key %q: budgets: %w", k.Name, err)
	}
	if len(k.Models) == 0 {
		k.Models = nil
	}
	for _, b := range bs {
		k.Budgets = append(k.Budgets, admin.Budget(b))
	}
	return k, nil
}
