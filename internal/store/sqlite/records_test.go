package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

// plainArgs is the insert arguments of r without box reuse.
func plainArgs(r *ledger.Record) []any {
	ag := "[]"
	if len(r.Agreements) > 0 {
		b, _ := json.Marshal(r.Agreements)
		ag = string(b)
	}
	p := &r.UnitPrices
	return []any{
		r.RequestID, int64(r.Attempt), r.Time.UnixMicro(), r.Key, r.Team, r.Workload, r.Model, r.Provider, r.UpstreamModel,
		r.Usage.InputTokens, r.Usage.OutputTokens, r.Usage.CachedTokens, r.Usage.CacheWriteTokens, r.Usage.ReasoningTokens, r.Estimated,
		p.Input.String(), p.Output.String(), p.CachedInput.String(), p.CacheWrite.String(), p.From.UnixMicro(), r.Cost.String(),
		int64(r.Status), r.Outcome, r.Billable, r.LatencyMs, r.Stream, r.Route, ag,
	}
}

// randomRecords returns n records whose fields each take one of a few
// values, so that any column may repeat within a run of records or not.
// With unique, every record has its own request id and is billable at
// most once.
func randomRecords(rng *rand.Rand, n int, unique bool) []ledger.Record {
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	money := func() pricing.Money { return pricing.MustMoney(pick("0", "0.15", "0.150", "2.5", "0.000001")) }
	recs := make([]ledger.Record, n)
	for i := range recs {
		u := pricing.Usage{InputTokens: rng.Int64N(3) * 1000, OutputTokens: rng.Int64N(2), CachedTokens: rng.Int64N(2),
			CacheWriteTokens: rng.Int64N(2), ReasoningTokens: rng.Int64N(2)}
		p := pricing.Price{Input: money(), Output: money(), CachedInput: money(), CacheWrite: money(),
			From: time.Unix(rng.Int64N(2), 0).UTC()}
		var ag []string
		switch rng.IntN(3) {
		case 1:
			ag = []string{"a"}
		case 2:
			ag = []string{"a", "b"}
		}
		id := fmt.Sprint("r", rng.IntN(3))
		if unique {
			id = fmt.Sprintf("r%06d", i)
		}
		recs[i] = ledger.Record{
			RequestID: id, Attempt: rng.IntN(2), Time: time.UnixMicro(rng.Int64N(2) * 300).UTC(),
			Key: pick("k", "k2"), Team: pick("", "t"), Workload: pick("w", ""), Model: pick("m", "n"),
			Provider: pick("p", "q"), UpstreamModel: pick("m", "u"), Usage: u, Estimated: rng.IntN(2) == 0,
			UnitPrices: p, Cost: pricing.Cost(p, u), Status: pick200(rng), Outcome: pick("ok", "refused"),
			Billable: rng.IntN(2) == 0, LatencyMs: rng.Int64N(2) * 1000, Stream: rng.IntN(2) == 0,
			Route: pick(`{"decision":"a"}`, `{"decision":"b"}`), Agreements: ag,
		}
	}
	return recs
}

// TestAppendArgs checks, for runs of records of every length up to 40
// where any field may repeat or not, that sameColumns finds exactly the
// columns with one value, and that the arguments appendArgs writes, the
// shared ones first and the rest row by row with boxes reused, are each
// record's values.
func TestAppendArgs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 1; n <= 40; n++ {
		for range 5 {
			recs := randomRecords(rng, n, false)
			if rng.IntN(2) == 0 { // runs where most columns repeat
				for i := range recs {
					id, attempt := recs[i].RequestID, recs[i].Attempt
					recs[i] = recs[0]
					recs[i].RequestID, recs[i].Attempt = id, attempt
				}
			}
			want := make([][]any, n)
			for i := range recs {
				want[i] = plainArgs(&recs[i])
			}
			same := sameColumns(recs)
			for c := range numColumns {
				eq := true
				for i := range recs {
					eq = eq && (c != 0 && cmp.Equal(want[i][c], want[0][c]))
				}
				if got := same&(1<<c) != 0; got != eq {
					t.Fatalf("%d records: column %d shared = %v, want %v", n, c, got, eq)
				}
			}
			args := appendArgs([]any{"before"}, recs, same)[1:]
			var shared []any
			for c := range numColumns {
				if same&(1<<c) != 0 {
					shared = append(shared, args[0])
					args = args[1:]
				}
			}
			for i := range recs {
				got := make([]any, numColumns)
				k := 0
				for c := range numColumns {
					if same&(1<<c) != 0 {
						got[c] = shared[k]
						k++
					} else {
						got[c], args = args[0], args[1:]
					}
				}
				if diff := cmp.Diff(want[i], got); diff != "" {
					t.Fatalf("%d records: args of record %d mismatch (-want +got):\n%s", n, i, diff)
				}
			}
			if len(args) != 0 {
				t.Fatalf("%d records: %d arguments left over", n, len(args))
			}
		}
	}
}

// TestRecordShapes stores random records in batches of random sizes, so
// that chunks of every size and many sets of shared columns are inserted,
// more shapes than the store keeps statements for, and reads every record
// back as it was written.
func TestRecordShapes(t *testing.T) {
	s := newStore(t).(*Store)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	recs := randomRecords(rng, 6000, true)
	for i := range recs {
		recs[i].Billable = recs[i].Attempt == 1 && recs[i].Billable
	}
	for rest := recs; len(rest) > 0; {
		batch := rest[:min(len(rest), 1+rng.IntN(100))]
		rest = rest[len(batch):]
		// Each field, or not, takes one value across the batch.
		var shared []func(r, f *ledger.Record)
		for _, share := range []func(r, f *ledger.Record){
			func(r, f *ledger.Record) { r.Time = f.Time },
			func(r, f *ledger.Record) { r.Key, r.Team = f.Key, f.Team },
			func(r, f *ledger.Record) { r.Workload = f.Workload },
			func(r, f *ledger.Record) { r.Model, r.Provider, r.UpstreamModel = f.Model, f.Provider, f.UpstreamModel },
			func(r, f *ledger.Record) { r.Usage, r.UnitPrices, r.Cost = f.Usage, f.UnitPrices, f.Cost },
			func(r, f *ledger.Record) { r.Estimated, r.Stream = f.Estimated, f.Stream },
			func(r, f *ledger.Record) { r.Status, r.Outcome = f.Status, f.Outcome },
			func(r, f *ledger.Record) { r.LatencyMs = f.LatencyMs },
			func(r, f *ledger.Record) { r.Route, r.Agreements = f.Route, f.Agreements },
		} {
			if rng.IntN(2) == 0 {
				shared = append(shared, share)
			}
		}
		for i := range batch {
			for _, share := range shared {
				share(&batch[i], &batch[0])
			}
		}
		if err := s.Record(ctx, batch); err != nil {
			t.Fatalf("Record(%d records): %v", len(batch), err)
		}
	}
	if len(s.inserts) < maxShapes {
		t.Errorf("%d statements prepared; the test means to pass the limit of %d", len(s.inserts), maxShapes)
	}
	if len(s.inserts) > maxShapes+8 {
		t.Errorf("%d statements prepared; want at most %d and one per chunk size", len(s.inserts), maxShapes+8)
	}
	got, err := s.records(ctx, `ORDER BY request_id`)
	if err != nil || len(got) != len(recs) {
		t.Fatalf("read back %d records, %v; want %d", len(got), err, len(recs))
	}
	for i := range recs { // ids are in order
		if diff := cmp.Diff(recs[i], got[i]); diff != "" {
			t.Fatalf("record %d read back (-wrote +read):\n%s", i, diff)
		}
	}
}

func pick200(rng *rand.Rand) int {
	if rng.IntN(2) == 0 {
		return 200
	}
	return 502
}

// TestBatchKeepsInsertsPreparedInTransaction: an insert shape first met
// inside an open batch is prepared in its transaction (the pool's one
// connection is held) and kept on the pool once the batch ends.
func TestBatchKeepsInsertsPreparedInTransaction(t *testing.T) {
	s := newStore(t).(*Store)
	ctx := context.Background()
	o, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := ledger.Record{RequestID: "a", Attempt: 1, Time: time.Now(), Model: "m", Provider: "p"}
	r2 := r
	r2.RequestID, r2.LatencyMs = "b", 7
	recs := []ledger.Record{r, r2}
	sh := shape{rows: 2, same: sameColumns(recs)}
	if _, _, ok := s.cachedStmt(sh); ok {
		t.Fatal("shape kept before any insert")
	}
	if err := o.Add(ctx, recs); err != nil {
		t.Fatalf("Add = %v", err)
	}
	if _, _, ok := s.cachedStmt(sh); ok {
		t.Error("shape kept on the pool while the batch holds its connection")
	}
	if err := o.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	if _, _, ok := s.cachedStmt(sh); !ok {
		t.Error("shape not kept once the batch ended")
	}
}

// TestOpenWhileBatchOpen: a second opener of the file (multipolar usage,
// settle) neither waits for nor fails on the write lock that an open
// ledger batch holds, and reads what was committed before it.
func TestOpenWhileBatchOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	ctx := context.Background()
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := ledger.Record{RequestID: "before", Attempt: 1, Time: time.Now(), Model: "m", Provider: "p", Billable: true}
	if err := s.Record(ctx, []ledger.Record{r}); err != nil {
		t.Fatal(err)
	}
	o, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.RequestID = "open"
	if err := o.Add(ctx, []ledger.Record{r}); err != nil {
		t.Fatal(err)
	}
	defer o.Rollback()
	reader, err := Open(ctx, Options{Path: path, BusyTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open while a batch is open = %v", err)
	}
	defer reader.Close()
	_, total, err := reader.Usage(ctx, ledger.Query{})
	if err != nil || total.Records != 1 {
		t.Errorf("Usage while a batch is open = %d records, %v; want the 1 committed", total.Records, err)
	}
}
