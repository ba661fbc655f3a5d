package contract_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/contract"
	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
	"github.com/multipolar/multipolar/internal/store/postgres"
	"github.com/multipolar/multipolar/internal/store/sqlite"
)

const storesConfig = `
providers:
  - {name: cloud-a, type: openai-compatible, base_url: "http://127.0.0.1:1/v1", counterparty: primary-cloud}
  - {name: oracle, type: openai-compatible, base_url: "http://127.0.0.1:2/v1"}
  - {name: gpu, type: openai-compatible, base_url: "http://127.0.0.1:3/v1"}
models:
  - {name: gpt-4o, routes: [cloud-a, oracle, gpu]}
teams: [{name: apps}, {name: search}]
agreements:
  - {name: share, type: revenue_share, payer: apps, payee: primary-cloud, rate: "20%", base: {providers: [cloud-a]}, cap: "50", from: 2026-01-01, until: 2030-12-31}
  - {name: oracle-5y, type: commitment, providers: [oracle], amount: "3000", from: 2025-09-01, until: 2030-08-31, discount: "7.5%"}
  - {name: gpu-2y, type: commitment, providers: [gpu], amount: "500", from: 2026-01-01, until: 2027-12-31, minimums: {period: quarterly, amount: "60"}}
  - {name: gpu-tiers, type: price_terms, providers: [gpu], tiers: [{discount: "2%"}, {above: "100", discount: "10%"}]}
  - {name: exclusive, type: exclusivity, providers: [cloud-a], scope: {models: ["gpt-4o"]}, until: 2025-10-28}
`

// randomLedger is n records from September to November 2026 with
// deterministic content: several attempts per request, ties on time.
func randomLedger(seed uint64, n int) []ledger.Record {
	rng := rand.New(rand.NewPCG(seed, 99))
	providers := []string{"cloud-a", "oracle", "gpu"}
	teams := []string{"apps", "search"}
	t := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]ledger.Record, 0, n)
	for i := 0; len(recs) < n; i++ {
		t = t.Add(time.Duration(rng.IntN(int(20*time.Minute))) / time.Microsecond * time.Microsecond)
		attempts := 1 + rng.IntN(2)
		for a := range attempts {
			if len(recs) == n {
				break
			}
			team := teams[rng.IntN(2)]
			u := pricing.Usage{InputTokens: int64(rng.IntN(5000)), OutputTokens: int64(rng.IntN(2000))}
			recs = append(recs, ledger.Record{
				RequestID: fmt.Sprintf("req-%07d", i), Attempt: a, Time: t, Key: team + "-key", Team: team, Workload: "chat",
				Model: "gpt-4o", Provider: providers[rng.IntN(3)], UpstreamModel: "gpt-4o", Usage: u,
				Cost:   pricing.MustMoney(fmt.Sprintf("%d.%09d", rng.IntN(2), rng.IntN(1_000_000_000))),
				Status: 200, Outcome: "ok", Billable: a == attempts-1, Route: "{}",
			})
		}
	}
	return recs
}

func storesSet(t testing.TB) *contract.Set {
	cfg, err := config.Parse([]byte(storesConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	s, err := contract.Compile(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type store interface {
	ledger.Recorder
	ledger.Scanner
	Close() error
}

func fill(t testing.TB, st store, recs []ledger.Record) {
	for i := 0; i < len(recs); i += 5000 {
		if err := st.Record(context.Background(), recs[i:min(i+5000, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatementAcrossStores: the same ledger in SQLite and in PostgreSQL
// settles to the same bytes, in every format, run after run.
func TestStatementAcrossStores(t *testing.T) {
	dsn := os.Getenv("MULTIPOLAR_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("MULTIPOLAR_TEST_POSTGRES not set")
	}
	ctx := context.Background()
	recs := randomLedger(1, 20_000)
	lite, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "l.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg, err := postgres.Open(ctx, postgres.Options{DSN: pgSchema(t, dsn)})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	fill(t, lite, recs)
	fill(t, pg, recs)
	set := storesSet(t)
	period, _ := contract.ParsePeriod("2026-11")
	var outs [3][]byte
	for i, st := range []store{lite, pg, lite} {
		s, err := contract.Settle(ctx, set, st, period, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		for _, f := range []string{contract.FormatJSON, contract.FormatCSV, contract.FormatTable} {
			if err := s.Write(&b, f); err != nil {
				t.Fatal(err)
			}
		}
		outs[i] = b.Bytes()
	}
	if !bytes.Equal(outs[0], outs[1]) || !bytes.Equal(outs[0], outs[2]) {
		t.Errorf("statements differ between SQLite and PostgreSQL or between runs")
	}
	if !bytes.Contains(outs[0], []byte(`"name": "oracle-5y"`)) {
		t.Errorf("statement lacks oracle-5y:\n%.2000s", outs[0])
	}
}

// BenchmarkBook is settlement's own work per record, the ledger scan
// aside.
func BenchmarkBook(b *testing.B) {
	recs := randomLedger(2, 200_000)
	set := storesSet(b)
	period := contract.Period{Name: "all", From: recs[0].Time, To: recs[len(recs)-1].Time.Add(time.Second)}
	b.ResetTimer()
	for range b.N {
		bk := contract.NewBook(set, period, time.Time{})
		for i := range recs {
			bk.Add(&recs[i])
		}
		if _, err := bk.Statement(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// pgSchema creates a fresh schema, dropped at cleanup, and returns dsn
// with its search_path.
func pgSchema(t *testing.T, dsn string) string {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect MULTIPOLAR_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("multipolar_settle_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			_ = c.Close(context.Background())
		}
	})
	u, err := url.Parse(dsn)
	if err != nil || !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// BenchmarkSettleSQLite settles a month-spanning ledger of
// MULTIPOLAR_BENCH_RECORDS records (default 1,000,000) in an SQLite file,
// scan included: the figure issue 6 sets at 10 million in under 60 s. Set
// MULTIPOLAR_BENCH_LEDGER to a path to keep the file between runs.
func BenchmarkSettleSQLite(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("MULTIPOLAR_BENCH_RECORDS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			b.Fatal(err)
		}
	}
	path := os.Getenv("MULTIPOLAR_BENCH_LEDGER")
	if path == "" {
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	period := contract.Period{Name: "bench", From: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	var have int64
	if err := st.Scan(ctx, ledger.ScanFilter{From: period.From, To: period.To}, func(*ledger.Record) error { have++; return nil }); err != nil {
		b.Fatal(err)
	}
	if have != int64(n) {
		if have != 0 {
			b.Fatalf("%s holds %d records, want %d or none", path, have, n)
		}
		const chunk = 100_000
		for i := 0; i < n; i += chunk {
			recs := randomLedger(uint64(i), min(chunk, n-i))
			for j := range recs {
				recs[j].RequestID = fmt.Sprintf("%s-%09d", recs[j].RequestID, i)
				recs[j].Time = recs[j].Time.Add(time.Duration(i/chunk) * 24 * time.Hour * 60)
			}
			fill(b, st, recs)
		}
	}
	set := storesSet(b)
	b.ResetTimer()
	for range b.N {
		s, err := contract.Settle(ctx, set, st, period, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		if s.Totals.Usage.Records != int64(n) {
			b.Fatalf("settled %d records, want %d", s.Totals.Usage.Records, n)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/settlement")
}
