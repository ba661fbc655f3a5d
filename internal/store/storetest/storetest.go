// Package storetest is the conformance suite every store runs:
//
//	func TestConformance(t *testing.T) { storetest.Run(t, newStore) }
//
// It checks exact round trips of records, idempotency on (request id,
// attempt), one billable record per request, large batches, usage grouping
// and totals against sums computed in Go, time ranges, concurrent writers
// ledger.Batcher's batches in pieces, where a store has them, and
// ledger.Scanner's order, filters and stopping. Bench measures records
// per second through a ledger.Writer, BenchScan records per second read by
// Scan.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

// Store is what the suite exercises: the ledger's write and query sides
// plus a read-back of one request's records.
type Store interface {
	ledger.Recorder
	// Usage aggregates records; see ledger.Query and ledger.Row.
	Usage(ctx context.Context, q ledger.Query) ([]ledger.Row, ledger.Row, error)
	// Records returns the records of a request ordered by attempt.
	Records(ctx context.Context, requestID string) ([]ledger.Record, error)
}

// Run runs the suite. open must return a new, empty store and arrange its
// closing with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Idempotent", testIdempotent},
		{"OneBillable", testOneBillable},
		{"InvalidRecord", testInvalidRecord},
		{"Batch10k", testBatch10k},
		{"UsageGrouping", testUsageGrouping},
		{"UsageTimeRange", testUsageTimeRange},
		{"UsageBadQuery", testUsageBadQuery},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ThroughWriter", testThroughWriter},
		{"BatchPieces", testBatchPieces},     // ledger.Batcher; see batcher.go
		{"BatchRollback", testBatchRollback}, // ledger.Batcher
		{"Keys", testKeys},                   // admin.KeyStore; see keys.go
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
	t.Run("Scan", func(t *testing.T) { testScan(t, open) }) // ledger.Scanner; see scan.go
}

var cmpRecords = cmp.Options{cmpopts.EquateEmpty()}

// epoch is a base time with microsecond precision, which stores keep.
var epoch = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

// newRecord returns a plausible billable record.
func newRecord(id string, attempt int) ledger.Record {
	p := pricing.Price{
		Input: pricing.MustMoney("2.50"), Output: pricing.MustMoney("10"),
		CachedInput: pricing.MustMoney("1.25"), CacheWrite: pricing.MustMoney("3.125"),
		From: time.Date(2024, 8, 6, 0, 0, 0, 0, time.UTC),
	}
	u := pricing.Usage{InputTokens: 1200, CachedTokens: 200, OutputTokens: 300, ReasoningTokens: 100}
	return ledger.Record{
		RequestID: id, Attempt: attempt, Time: epoch,
		Key: "key-1", Team: "team-a", Workload: "chat", Model: "gpt-4o", Provider: "openai", UpstreamModel: "gpt-4o-2024-08-06",
		Usage: u, UnitPrices: p, Cost: pricing.Cost(p, u),
		Status: 200, Outcome: "ok", Billable: true, LatencyMs: 321, Stream: true,
		Route: `{"tried":["openai"]}`, Agreements: []string{"acme-commit"},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustRecord(t *testing.T, s Store, recs ...ledger.Record) {
	t.Helper()
	if err := s.Record(ctxT(t), recs); err != nil {
		t.Fatalf("Record(%d records) = %v", len(recs), err)
	}
}

func mustRecords(t *testing.T, s Store, id string) []ledger.Record {
	t.Helper()
	got, err := s.Records(ctxT(t), id)
	if err != nil {
		t.Fatalf("Records(%q) = %v", id, err)
	}
	return got
}

func testRoundTrip(t *testing.T, s Store) {
	a := newRecord("req-1", 1)
	a.Time = time.Date(2026, 3, 4, 7, 6, 7, 999999000, time.FixedZone("CEST", 2*3600)) // returned in UTC
	a.Billable = false
	a.Status, a.Outcome = 502, "upstream_error"
	a.Usage = pricing.Usage{InputTokens: 900_000_000_000_000_000, OutputTokens: 1<<63 - 1, CachedTokens: 7, CacheWriteTokens: 11, ReasoningTokens: 5}
	a.UnitPrices = pricing.Price{
		Input: pricing.MustMoney("75"), Output: pricing.MustMoney("0.000001"),
		CachedInput: pricing.MustMoney("0.0000000000000000000001"), CacheWrite: pricing.MustMoney("123456789.987654321"),
	} // zero From
	a.Cost = pricing.Cost(a.UnitPrices, a.Usage)
	a.Estimated, a.Stream = true, false
	a.Key, a.Team, a.Workload = "ключ-🔑", "", "batch 'quoted' \"x\""
	a.Route = `{"candidates":[{"provider":"a","refused":"rate limited"}],"chosen":"b"}`
	a.Agreements = nil
	b := newRecord("req-1", 2)
	b.Agreements = []string{"x", "y", "z"}
	mustRecord(t, s, b, a)

	got := mustRecords(t, s, "req-1")
	want := []ledger.Record{a, b}
	want[0].Time = a.Time.UTC()
	if diff := cmp.Diff(want, got, cmpRecords); diff != "" {
		t.Errorf("Records(req-1) mismatch (-want +got):\n%s", diff)
	}
	if got[0].Time.Location() != time.UTC {
		t.Errorf("Records time zone = %v, want UTC", got[0].Time.Location())
	}
	if got[0].Cost.String() != a.Cost.String() {
		t.Errorf("cost = %s, want %s", got[0].Cost, a.Cost)
	}
	if none := mustRecords(t, s, "nope"); len(none) != 0 {
		t.Errorf("Records(nope) = %v, want none", none)
	}
}

func testIdempotent(t *testing.T, s Store) {
	a := newRecord("idem", 1)
	mustRecord(t, s, a, a) // duplicate within one batch
	changed := a
	changed.Cost = pricing.MustMoney("999")
	changed.Outcome = "changed"
	mustRecord(t, s, changed) // same id: no-op
	mustRecord(t, s, a)
	got := mustRecords(t, s, "idem")
	if diff := cmp.Diff([]ledger.Record{a}, got, cmpRecords); diff != "" {
		t.Errorf("after re-inserts (-want +got):\n%s", diff)
	}
	_, total, err := s.Usage(ctxT(t), ledger.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if total.Records != 1 || !total.Cost.Equal(a.Cost) {
		t.Errorf("Usage total = %d records, cost %s; want 1, %s", total.Records, total.Cost, a.Cost)
	}
}

func testOneBillable(t *testing.T, s Store) {
	mustRecord(t, s, newRecord("r", 1))
	second := newRecord("r", 2) // billable again: refused
	third := newRecord("r", 3)  // not billable: stored
	third.Billable = false
	other := newRecord("other", 1)                                   // another request: stored
	inBatchA, inBatchB := newRecord("pair", 1), newRecord("pair", 2) // two billable in one batch
	err := s.Record(ctxT(t), []ledger.Record{second, third, other, inBatchA, inBatchB})
	var rej *ledger.RejectedError
	if !errors.Is(err, ledger.ErrDuplicateBillable) || !errors.As(err, &rej) {
		t.Fatalf("Record = %v, want a RejectedError", err)
	}
	want := []ledger.ID{{RequestID: "r", Attempt: 2}, {RequestID: "pair", Attempt: 2}}
	if diff := cmp.Diff(want, rej.IDs, cmpopts.SortSlices(func(a, b ledger.ID) bool { return a.RequestID < b.RequestID })); diff != "" {
		t.Errorf("refused ids (-want +got):\n%s", diff)
	}
	if got := mustRecords(t, s, "r"); len(got) != 2 || got[0].Attempt != 1 || got[1].Attempt != 3 {
		t.Errorf("records of r = %d, want attempts 1 and 3", len(got))
	}
	if got := mustRecords(t, s, "other"); len(got) != 1 {
		t.Errorf("records of other = %d, want 1", len(got))
	}
	if got := mustRecords(t, s, "pair"); len(got) != 1 || got[0].Attempt != 1 {
		t.Errorf("records of pair = %v, want attempt 1 only", got)
	}
	// Retrying the whole batch is harmless: only the refusals repeat.
	err = s.Record(ctxT(t), []ledger.Record{second, third, other, inBatchA, inBatchB})
	if !errors.As(err, &rej) || len(rej.IDs) != 2 {
		t.Errorf("retried batch = %v, want the same 2 refusals", err)
	}
}

func testInvalidRecord(t *testing.T, s Store) {
	bad := newRecord("", 1)
	err := s.Record(ctxT(t), []ledger.Record{newRecord("good", 1), bad})
	if err == nil {
		t.Fatal("Record accepted a record without request id")
	}
	if got := mustRecords(t, s, "good"); len(got) != 0 {
		t.Errorf("a batch with an invalid record stored %d records, want none", len(got))
	}
	if err := s.Record(ctxT(t), nil); err != nil {
		t.Errorf("Record(nil) = %v", err)
	}
}

func testBatch10k(t *testing.T, s Store) {
	const n = 10_000
	recs := make([]ledger.Record, n)
	costs := make([]pricing.Money, n)
	for i := range recs {
		r := newRecord(fmt.Sprintf("batch-%05d", i), 1)
		r.Usage.OutputTokens = int64(i)
		r.Cost = pricing.Cost(r.UnitPrices, r.Usage)
		recs[i], costs[i] = r, r.Cost
	}
	want := pricing.Sum(costs...)
	mustRecord(t, s, recs...)
	_, total, err := s.Usage(ctxT(t), ledger.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if total.Records != n || total.Requests != n || !total.Cost.Equal(want) {
		t.Errorf("Usage total = %d records, %d requests, cost %s; want %d, %d, %s", total.Records, total.Requests, total.Cost, n, n, want)
	}
	if got := mustRecords(t, s, "batch-09999"); len(got) != 1 || got[0].Usage.OutputTokens != 9999 {
		t.Errorf("last record = %v", got)
	}
}

func testConcurrentWriters(t *testing.T, s Store) {
	const writers, perWriter = 6, 600
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			// Writers overlap: writer w writes ids [w*300, w*300+600).
			for start := 0; start < perWriter; start += 100 {
				var batch []ledger.Record
				for i := start; i < start+100; i++ {
					batch = append(batch, newRecord(fmt.Sprintf("cw-%05d", w*300+i), 1))
				}
				if err := s.Record(context.Background(), batch); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Record = %v", err)
	}
	_, total, err := s.Usage(ctxT(t), ledger.Query{})
	if err != nil {
		t.Fatal(err)
	}
	distinct := int64((writers-1)*300 + perWriter)
	want := newRecord("x", 1).Cost.MulInt(distinct)
	if total.Records != distinct || total.Requests != distinct || !total.Cost.Equal(want) {
		t.Errorf("after concurrent writers: %d records, %d requests, cost %s; want %d, %d, %s",
			total.Records, total.Requests, total.Cost, distinct, distinct, want)
	}
}

func testThroughWriter(t *testing.T, s Store) {
	w, err := ledger.NewWriter(ledger.WriterOptions{Recorder: s, BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if err := w.Submit(newRecord(fmt.Sprintf("w-%d", i), 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.SubmitSync(ctxT(t), newRecord("w-sync", 1)); err != nil {
		t.Fatalf("SubmitSync = %v", err)
	}
	if got := mustRecords(t, s, "w-sync"); len(got) != 1 {
		t.Errorf("SubmitSync returned before the record was stored")
	}
	if err := w.SubmitSync(ctxT(t), newRecord("w-sync", 2)); !errors.Is(err, ledger.ErrDuplicateBillable) {
		t.Errorf("second billable through Writer = %v, want ErrDuplicateBillable", err)
	}
	if err := w.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	_, total, err := s.Usage(ctxT(t), ledger.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if total.Records != 1001 {
		t.Errorf("records after Close = %d, want 1001", total.Records)
	}
}
