// Package postgres is the shared store on PostgreSQL through pgx/v5's
// pgxpool.
//
// Money is NUMERIC without a scale limit: values are sent as canonical
// decimal text and cast in SQL, read back as text, and SUM() over NUMERIC
// is exact. A batch is one INSERT … SELECT FROM unnest(arrays) … ON
// CONFLICT DO NOTHING: one round trip and one statement, so a batch is
// stored atomically.
package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/store/migrations"
)

// Options configure Open.
type Options struct {
	// DSN is a libpq connection string or URL. Parameters pgx does not
	// know, such as search_path, are sent as run-time settings. Required.
	DSN string
	// MaxConns bounds the pool. Default: pgxpool's (4 or the CPU count).
	MaxConns int32
}

// Store is a PostgreSQL store. It is safe for concurrent use; Close it
// when done.
type Store struct {
	pool *pgxpool.Pool
}

var _ ledger.Recorder = (*Store)(nil)

// Open connects, checks the connection and applies pending migrations.
func Open(ctx context.Context, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &Store{pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migrate applies pending migrations in one transaction, under an advisory
// lock scoped to the current schema so that concurrent openers wait for
// each other instead of racing.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrations.Postgres)
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.multipolar.schema_migrations'))`); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, time.Now()); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
