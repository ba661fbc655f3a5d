package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

// Bench measures records per second through a ledger.Writer in front of
// the store: b.N records submitted with Submit (block policy), then Close
// drains the queue; the time includes the final commit. open is called
// once per benchmark run and must return an empty store. opts configure
// the Writer; its Recorder is set to the store, and queue and block
// timeout default to 4 batches and a minute so that nothing is dropped.
func Bench(b *testing.B, open func(tb testing.TB) Store, opts ledger.WriterOptions) {
	s := open(b)
	// As in a gateway's batch, the key, model, provider and prices repeat;
	// the latency, token counts and cost vary, and the time moves on.
	recs := make([]ledger.Record, 4096)
	for i := range recs {
		r := newRecord("", 1)
		r.LatencyMs = int64(200 + i%700)
		r.Usage.InputTokens = int64(100 + i%1900)
		r.Usage.OutputTokens = int64(10 + i%290)
		r.Cost = pricing.Cost(r.UnitPrices, r.Usage)
		recs[i] = r
	}
	opts.Recorder = s
	if opts.QueueSize == 0 {
		opts.QueueSize = 4 * max(opts.BatchSize, 512)
	}
	if opts.BlockTimeout == 0 {
		opts.BlockTimeout = time.Minute
	}
	w, err := ledger.NewWriter(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		r := recs[i%len(recs)]
		r.RequestID = fmt.Sprintf("bench-%d-%012d", b.N, i) // fixed width, in order, like the gateway's ids
		r.Time = r.Time.Add(time.Duration(i) * time.Microsecond)
		if err := w.Submit(r); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
	if st := w.Stats(); st.Committed != int64(b.N) {
		b.Fatalf("committed %d of %d records (stats %+v)", st.Committed, b.N, st)
	}
}
