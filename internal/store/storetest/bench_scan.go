package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

// BenchScan measures records per second read by ledger.Scanner.Scan: it
// stores n plausible records once, in batches through the store's Record,
// then each iteration scans all of them. open must return an empty store
// that implements ledger.Scanner.
func BenchScan(b *testing.B, open func(tb testing.TB) Store, n int) {
	s := open(b)
	sc, ok := s.(ledger.Scanner)
	if !ok {
		b.Fatalf("store %T does not implement ledger.Scanner", s)
	}
	start := time.Now()
	fillScanBench(b, s, n)
	b.Logf("stored %d records in %s", n, time.Since(start).Round(time.Millisecond))
	b.Run(fmt.Sprint("records=", n), func(b *testing.B) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			count := 0
			var tokens int64
			if err := sc.Scan(context.Background(), ledger.ScanFilter{}, func(r *ledger.Record) error {
				count++
				tokens += r.Usage.InputTokens // touch the record, as settlement would
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			if count != n {
				b.Fatalf("Scan passed %d records, want %d", count, n)
			}
		}
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		records := float64(n) * float64(b.N)
		b.ReportMetric(records/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/records, "allocs/record")
	})
}

// fillScanBench stores n records shaped like production ones: some
// requests retried, most records billable, a few agreement sets. Requests
// arrive about 400 per second, and are stored in about the order they
// arrive, as a gateway's Writer stores them; ties in time are rare.
func fillScanBench(b *testing.B, s Store, n int) {
	const batchSize = 10_000
	r := rand.New(rand.NewPCG(42, 43))
	p := pricing.Price{Input: pricing.MustMoney("2.50"), Output: pricing.MustMoney("10"), CachedInput: pricing.MustMoney("1.25")}
	agreements := [][]string{nil, nil, nil, {"acme-commit"}, {"acme-commit", "rev-share-eu"}}
	models := []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "gemini-2.5-pro"}
	batch := make([]ledger.Record, 0, batchSize)
	ctx := context.Background()
	t := epoch
	for req := 0; n > 0; req++ {
		attempts := 1
		if r.IntN(5) == 0 {
			attempts = 2
		}
		t = t.Add(time.Duration(r.Int64N(5000)) * time.Microsecond)
		for a := 1; a <= attempts && n > 0; a++ {
			u := pricing.Usage{InputTokens: r.Int64N(20_000), OutputTokens: r.Int64N(2_000)}
			u.CachedTokens = r.Int64N(u.InputTokens/2 + 1)
			rec := newRecord(fmt.Sprintf("req-%016x-%08d", r.Uint64(), req), a)
			rec.Time = t
			rec.Model = models[r.IntN(len(models))]
			rec.UpstreamModel = rec.Model + "-2025"
			rec.Key = fmt.Sprintf("key-%d", r.IntN(50))
			rec.Usage, rec.UnitPrices, rec.Cost = u, p, pricing.Cost(p, u)
			rec.Billable = a == attempts
			if !rec.Billable {
				rec.Status, rec.Outcome = 502, "upstream_error"
			}
			rec.Agreements = agreements[r.IntN(len(agreements))]
			batch = append(batch, rec)
			n--
			if len(batch) == batchSize || n == 0 {
				if err := s.Record(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
}
