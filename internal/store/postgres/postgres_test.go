package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/multipolar/multipolar/internal/store/migrations"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/store/storetest"
)

const dsnEnv = "MULTIPOLAR_TEST_POSTGRES"

// testSchema creates a schema with a random name, drops it at cleanup, and
// returns a DSN whose search_path points at it, so parallel runs against
// one database do not collide.
func testSchema(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(dsnEnv)
	if base == "" {
		tb.Skip(dsnEnv + " not set")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect %s: %v", dsnEnv, err)
	}
	defer conn.Close(ctx)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	schema := "multipolar_test_" + hex.EncodeToString(rnd[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withParam(tb, base, "search_path", schema)
}

func withParam(tb testing.TB, dsn, key, value string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatalf("parse %s: %v", dsnEnv, err)
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

func newStore(tb testing.TB) storetest.Store {
	tb.Helper()
	s, err := Open(context.Background(), Options{DSN: testSchema(tb)})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return newStore(t) })
}

func TestReopenIsIdempotent(t *testing.T) {
	dsn := testSchema(t)
	ctx := context.Background()
	for range 3 {
		s, err := Open(ctx, Options{DSN: dsn})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var n int
		ms, _ := migrations.Load(migrations.Postgres)
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
			t.Errorf("schema_migrations rows = %d, %v; want %d (one per migration)", n, err, len(ms))
		}
		s.Close()
	}
}

func BenchmarkWriter(b *testing.B) {
	for _, c := range []int{1, 2} {
		b.Run(fmt.Sprint("committers=", c), func(b *testing.B) {
			storetest.Bench(b, newStore, ledger.WriterOptions{BatchSize: 1000, Committers: c})
		})
	}
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
