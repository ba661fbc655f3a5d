package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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

// CreateKey implements admin.KeyStore. The existence checks and the
// insert share one write transaction; with one writer connection and
// BEGIN IMMEDIATE they cannot interleave with another writer, and the
// unique indexes back them up.
func (s *Store) CreateKey(ctx context.Context, k admin.Key) error {
	models, budgets, err := encodeKeyLists(k)
	if err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create key %q: begin: %w", k.Name, err)
	}
	defer tx.Rollback()
	var sameName bool
	err = tx.QueryRowContext(ctx, `SELECT name = ? FROM api_keys WHERE hash = ? OR (name = ? AND revoked IS NULL) LIMIT 1`,
		k.Name, k.Hash[:], k.Name).Scan(&sameName)
	switch {
	case err == nil && sameName:
		return fmt.Errorf("create key %q: %w", k.Name, admin.ErrKeyExists)
	case err == nil:
		return fmt.Errorf("create key %q: %w", k.Name, admin.ErrHashExists)
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		k.Name, k.Hash[:], k.Prefix, k.Team, k.Workload, models, budgets, k.Limits.RPM, k.Limits.TPM,
		micros(k.Expires), k.Created.UnixMicro(), micros(k.Revoked)); err != nil {
		return fmt.Errorf("create key %q: %w", k.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create key %q: commit: %w", k.Name, err)
	}
	return nil
}

// Keys implements admin.KeyStore.
func (s *Store) Keys(ctx context.Context) ([]admin.Key, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY name, created, id`)
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
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = ?`, hash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return admin.Key{}, admin.ErrKeyNotFound
	}
	if err != nil {
		return admin.Key{}, fmt.Errorf("key by hash: %w", err)
	}
	return k, nil
}

// RevokeKey implements admin.KeyStore.
func (s *Store) RevokeKey(ctx context.Context, name string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL`, at.UnixMicro(), name)
	if err != nil {
		return fmt.Errorf("revoke key %q: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke key %q: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("revoke key %q: %w", name, admin.ErrKeyNotFound)
	}
	return nil
}

// RotateKey implements admin.KeyStore in one write transaction: read the
// active key, revoke it, insert the copy.
func (s *Store) RotateKey(ctx context.Context, name string, newHash [32]byte, newPrefix string, at time.Time) (admin.Key, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: begin: %w", name, err)
	}
	defer tx.Rollback()
	k, err := scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE name = ? AND revoked IS NULL`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return admin.Key{}, fmt.Errorf("rotate key %q: %w", name, admin.ErrKeyNotFound)
	}
	if err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: %w", name, err)
	}
	var one int
	switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM api_keys WHERE hash = ?`, newHash[:]).Scan(&one); {
	case err == nil:
		return admin.Key{}, fmt.Errorf("rotate key %q: %w", name, admin.ErrHashExists)
	case !errors.Is(err, sql.ErrNoRows):
		return admin.Key{}, fmt.Errorf("rotate key %q: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL`, at.UnixMicro(), name); err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: revoke: %w", name, err)
	}
	k.Hash, k.Prefix = newHash, newPrefix
	k.Created, k.Revoked = time.UnixMicro(at.UnixMicro()).UTC(), time.Time{}
	models, budgets, err := encodeKeyLists(k)
	if err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL)`,
		k.Name, k.Hash[:], k.Prefix, k.Team, k.Workload, models, budgets, k.Limits.RPM, k.Limits.TPM,
		micros(k.Expires), k.Created.UnixMicro()); err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: insert: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return admin.Key{}, fmt.Errorf("rotate key %q: commit: %w", name, err)
	}
	return k, nil
}

// micros returns t in Unix microseconds, or NULL for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
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

// scanKey reads keyColumns from a *sql.Row or *sql.Rows.
func scanKey(row interface{ Scan(...any) error }) (admin.Key, error) {
	var k admin.Key
	var hash []byte
	var models, budgets string
	var expires, revoked sql.NullInt64
	var created int64
	if err := row.Scan(&k.Name, &hash, &k.Prefix, &k.Team, &k.Workload, &models, &budgets,
		&k.Limits.RPM, &k.Limits.TPM, &expires, &created, &revoked); err != nil {
		return admin.Key{}, err
	}
	if len(hash) != len(k.Hash) {
		return admin.Key{}, fmt.Errorf("key %q: stored hash has %d bytes, want %d", k.Name, len(hash), len(k.Hash))
	}
	copy(k.Hash[:], hash)
	k.Expires, k.Created, k.Revoked = fromMicros(expires), time.UnixMicro(created).UTC(), fromMicros(revoked)
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
