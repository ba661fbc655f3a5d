// Package sqlite is the single-node store: SQLite through modernc.org/sqlite
// (pure Go, no cgo), in WAL mode with a busy timeout. All writes go through
// one connection, which is how SQLite wants to be written to; reads use a
// separate pool and run concurrently with the writer under WAL.
//
// Money is stored as canonical decimal TEXT and summed by
// multipolar_decimal_sum, an aggregate function implemented in Go with the
// pricing package's exact decimal, so sums are exact in SQL. Times are Unix
// microseconds.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/store/migrations"
)

// Options configure Open.
type Options struct {
	// Path is the database file; it is created if missing. Required.
	Path string
	// BusyTimeout is how long a connection waits for a lock. Default 5s.
	BusyTimeout time.Duration
	// ReadConns bounds the read pool. Default 4.
	ReadConns int
	// Synchronous is SQLite's synchronous pragma: "FULL" (default, each
	// commit survives power loss) or "NORMAL" (survives a process crash;
	// the last commits may be lost on power loss).
	Synchronous string
}

// Store is a SQLite store. It is safe for concurrent use; Close it when done.
type Store struct {
	w *sql.DB // one connection: every write
	r *sql.DB // read pool

	stmtMu  sync.Mutex
	inserts map[shape]*sql.Stmt // prepared multi-row inserts
}

var _ ledger.Batcher = (*Store)(nil)

func init() {
	sqlite.MustRegisterFunction(decimalSumName, &sqlite.FunctionImpl{
		NArgs:         1,
		Deterministic: true,
		MakeAggregate: newDecimalSum,
	})
}

// Open opens (creating if needed) the database at opts.Path and applies
// pending migrations.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Path == "" || strings.ContainsAny(opts.Path, "?#") {
		return nil, fmt.Errorf("open sqlite: invalid path %q", opts.Path)
	}
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.ReadConns == 0 {
		opts.ReadConns = 4
	}
	switch opts.Synchronous {
	case "":
		opts.Synchronous = "FULL"
	case "FULL", "NORMAL":
	default:
		return nil, fmt.Errorf("open sqlite: synchronous %q: want FULL or NORMAL", opts.Synchronous)
	}
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", opts.BusyTimeout.Milliseconds())
	wdsn := fmt.Sprintf("file:%s?%s&_pragma=journal_mode(WAL)&_pragma=synchronous(%s)&_txlock=immediate",
		opts.Path, busy, opts.Synchronous)
	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", opts.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, inserts: make(map[shape]*sql.Stmt)}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", fmt.Sprintf("file:%s?%s&_pragma=query_only(1)", opts.Path, busy))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", opts.Path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	s.r = r
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	var errs []error
	for _, st := range s.inserts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrations.SQLite)
	if err != nil {
		return err
	}
	// Look before writing: a process opening the file to read (multipolar
	// usage, settle) must not wait for the write lock that a gateway
	// holds through its open ledger batch.
	if s.applied(ctx, ms) {
		return nil
	}
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// applied reports whether every migration of ms is recorded as applied;
// false also when that cannot be read (a new file).
func (s *Store) applied(ctx context.Context, ms []migrations.Migration) bool {
	rows, err := s.w.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return false
	}
	defer rows.Close()
	have := make(map[int]bool)
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return false
		}
		have[v] = true
	}
	if rows.Err() != nil {
		return false
	}
	for _, m := range ms {
		if !have[m.Version] {
			return false
		}
	}
	return true
}

// apply runs m unless already applied, checking inside the write
// transaction so that concurrent openers of one file apply it once.
func (s *Store) apply(ctx context.Context, m migrations.Migration) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}
