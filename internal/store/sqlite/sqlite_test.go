package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/store/migrations"
	"github.com/multipolar/multipolar/internal/store/storetest"
)

func newStore(tb testing.TB) storetest.Store {
	tb.Helper()
	s, err := Open(context.Background(), Options{Path: filepath.Join(tb.TempDir(), "ledger.db")})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return newStore(t) })
}

func TestReopenIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	ctx := context.Background()
	for range 3 {
		s, err := Open(ctx, Options{Path: path})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var n int
		ms, _ := migrations.Load(migrations.SQLite)
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
			t.Errorf("schema_migrations rows = %d, %v; want %d (one per migration)", n, err, len(ms))
		}
		var mode string
		if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
		s.Close()
	}
}

func BenchmarkWriter(b *testing.B) {
	storetest.Bench(b, newStore, ledger.WriterOptions{BatchSize: 1000})
}

// BenchmarkScan stores a million records (100,000 with -short) before it
// starts timing.
func BenchmarkScan(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	storetest.BenchScan(b, newStore, n)
}
