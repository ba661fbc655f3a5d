package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/multipolar/multipolar/internal/pricing"
)

// memRecorder is an in-memory Recorder with the store semantics:
// idempotent on ID, one billable record per request id.
type memRecorder struct {
	mu       sync.Mutex
	recs     map[ID]Record
	billable map[string]ID
	batches  []int
	fail     int           // fail this many calls before succeeding
	gate     chan struct{} // if non-nil, each call waits for a value
	calls    chan int      // if non-nil, receives each batch size
}

func newMem() *memRecorder {
	return &memRecorder{recs: map[ID]Record{}, billable: map[string]ID{}}
}

func (m *memRecorder) Record(ctx context.Context, recs []Record) error {
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail > 0 {
		m.fail--
		return errors.New("transient")
	}
	var rej []ID
	for _, r := range recs {
		if _, ok := m.recs[r.ID()]; ok {
			continue
		}
		if r.Billable {
			if _, ok := m.billable[r.RequestID]; ok {
				rej = append(rej, r.ID())
				continue
			}
			m.billable[r.RequestID] = r.ID()
		}
		m.recs[r.ID()] = r
	}
	m.batches = append(m.batches, len(recs))
	if m.calls != nil {
		m.calls <- len(recs)
	}
	if rej != nil {
		return &RejectedError{IDs: rej}
	}
	return nil
}

// firstBatch waits up to 10s for the first batch (m.calls must be set),
// checks it holds want records, and fails with missing if none comes.
func (m *memRecorder) firstBatch(t *testing.T, want int, missing string) {
	t.Helper()
	select {
	case n := <-m.calls:
		if n != want {
			t.Errorf("batch of %d, want %d", n, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal(missing)
	}
}

func (m *memRecorder) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs)
}

func rec(id string, attempt int, billable bool) Record {
	return Record{
		RequestID: id, Attempt: attempt, Billable: billable,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Model: "m", Provider: "p",
		Usage: pricing.Usage{InputTokens: 10, OutputTokens: 5}, Cost: pricing.MustMoney("0.0001"),
	}
}

func mustNew(t *testing.T, o WriterOptions) *Writer {
	t.Helper()
	w, err := NewWriter(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

func TestWriterDrainsOnClose(t *testing.T) {
	m := newMem()
	w := mustNew(t, WriterOptions{Recorder: m, BatchSize: 100, FlushInterval: time.Hour})
	const n = 1050
	for i := range n {
		if err := w.Submit(rec(fmt.Sprint(i), 1, true)); err != nil {
			t.Fatalf("Submit(%d) = %v", i, err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if got := m.len(); got != n {
		t.Errorf("stored %d records, want %d", got, n)
	}
	for _, b := range m.batches {
		if b > 100 {
			t.Errorf("batch of %d exceeds BatchSize 100", b)
		}
	}
	if s := w.Stats(); s.Submitted != n || s.Committed != n || s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("Stats() = %+v", s)
	}
	if err := w.Submit(rec("late", 1, true)); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestWriterSubmitSyncCommitsWithoutWaitingForInterval(t *testing.T) {
	m := newMem()
	w := mustNew(t, WriterOptions{Recorder: m, FlushInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.SubmitSync(ctx, rec("a", 1, true)); err != nil {
		t.Fatalf("SubmitSync = %v", err)
	}
	if m.len() != 1 {
		t.Errorf("record not stored when SubmitSync returned")
	}
}

func TestWriterFlushInterval(t *testing.T) {
	m := newMem()
	m.calls = make(chan int, 10)
	w := mustNew(t, WriterOptions{Recorder: m, FlushInterval: time.Millisecond})
	if err := w.Submit(rec("a", 1, true)); err != nil {
		t.Fatal(err)
	}
	m.firstBatch(t, 1, "partial batch never flushed")
}

// TestWriterFullBatchCommitsWithoutWaitingForInterval submits records one
// at a time, so that the gatherer holds the first while the rest queue: the
// batch is committed once the queue holds what it lacks, not after the
// interval.
func TestWriterFullBatchCommitsWithoutWaitingForInterval(t *testing.T) {
	m := newMem()
	m.calls = make(chan int, 10)
	w := mustNew(t, WriterOptions{Recorder: m, BatchSize: 3, FlushInterval: time.Hour})
	for i := range 3 {
		if err := w.Submit(rec(fmt.Sprint(i), 1, true)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the gatherer takes what is queued and sleeps
	}
	m.firstBatch(t, 3, "full batch not committed before the interval")
}

func TestWriterOverflowDrop(t *testing.T) {
	m := newMem()
	m.gate = make(chan struct{})
	var dropped atomic.Int64
	w := mustNew(t, WriterOptions{Recorder: m, QueueSize: 2, BatchSize: 1, Overflow: OverflowDrop,
		Hooks: Hooks{Dropped: func(Record) { dropped.Add(1) }}})
	// The committer takes one record and blocks in the gate; the gatherer
	// may hold one more while waiting to hand it off; two fill the queue;
	// later submits are dropped.
	var errs []error
	for i := range 10 {
		errs = append(errs, w.Submit(rec(fmt.Sprint(i), 1, true)))
	}
	var full int
	for _, err := range errs {
		if errors.Is(err, ErrQueueFull) {
			full++
		} else if err != nil {
			t.Fatalf("Submit = %v", err)
		}
	}
	if full < 6 || full > 8 {
		t.Errorf("%d submits dropped, want 6 to 8", full)
	}
	if got := dropped.Load(); got != int64(full) || w.Stats().Dropped != int64(full) {
		t.Errorf("Dropped hook %d, stats %d, want %d", got, w.Stats().Dropped, full)
	}
	close(m.gate)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := m.len(); got != 10-full {
		t.Errorf("stored %d, want %d", got, 10-full)
	}
}

func TestWriterOverflowBlock(t *testing.T) {
	m := newMem()
	m.gate = make(chan struct{})
	w := mustNew(t, WriterOptions{Recorder: m, QueueSize: 1, BatchSize: 1, Overflow: OverflowBlock, BlockTimeout: 5 * time.Millisecond})
	var full int
	for i := range 5 {
		if err := w.Submit(rec(fmt.Sprint(i), 1, true)); errors.Is(err, ErrQueueFull) {
			full++
		}
	}
	if full == 0 {
		t.Error("no submit timed out while the recorder was blocked")
	}
	// A blocked submit succeeds once room appears within BlockTimeout.
	w2 := mustNew(t, WriterOptions{Recorder: newMem(), QueueSize: 1, Overflow: OverflowBlock, BlockTimeout: 10 * time.Second})
	for i := range 100 {
		if err := w2.Submit(rec(fmt.Sprint(i), 1, true)); err != nil {
			t.Fatalf("Submit with room arriving = %v", err)
		}
	}
	close(m.gate)
}

func TestWriterRetriesThenFails(t *testing.T) {
	m := newMem()
	m.fail = 2
	w := mustNew(t, WriterOptions{Recorder: m, MaxAttempts: 3, RetryBackoff: time.Microsecond})
	ctx := context.Background()
	if err := w.SubmitSync(ctx, rec("a", 1, true)); err != nil {
		t.Fatalf("SubmitSync after 2 transient failures = %v", err)
	}

	m2 := newMem()
	m2.fail = 5
	var failed []Record
	var mu sync.Mutex
	w2 := mustNew(t, WriterOptions{Recorder: m2, MaxAttempts: 2, RetryBackoff: time.Microsecond,
		Hooks: Hooks{Failed: func(r []Record, err error) { mu.Lock(); failed = append(failed, r...); mu.Unlock() }}})
	if err := w2.SubmitSync(ctx, rec("b", 1, true)); err == nil {
		t.Fatal("SubmitSync succeeded after MaxAttempts failures")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 1 || failed[0].RequestID != "b" || w2.Stats().Failed != 1 {
		t.Errorf("Failed hook got %v, stats %+v", failed, w2.Stats())
	}
}

func TestWriterRejectedDuplicateBillable(t *testing.T) {
	m := newMem()
	w := mustNew(t, WriterOptions{Recorder: m})
	ctx := context.Background()
	if err := w.SubmitSync(ctx, rec("r", 1, true)); err != nil {
		t.Fatal(err)
	}
	if err := w.SubmitSync(ctx, rec("r", 1, true)); err != nil {
		t.Errorf("idempotent re-insert = %v, want nil", err)
	}
	if err := w.SubmitSync(ctx, rec("r", 2, false)); err != nil {
		t.Errorf("non-billable second attempt = %v", err)
	}
	err := w.SubmitSync(ctx, rec("r", 3, true))
	var rej *RejectedError
	if !errors.Is(err, ErrDuplicateBillable) || !errors.As(err, &rej) || len(rej.IDs) != 1 {
		t.Errorf("second billable = %v, want RejectedError/ErrDuplicateBillable", err)
	}
}

func TestWriterConcurrentSubmitters(t *testing.T) {
	for _, committers := range []int{1, 3} {
		t.Run(fmt.Sprint("committers=", committers), func(t *testing.T) {
			testConcurrentSubmitters(t, committers)
		})
	}
}

func testConcurrentSubmitters(t *testing.T, committers int) {
	m := newMem()
	w := mustNew(t, WriterOptions{Recorder: m, QueueSize: 64, BatchSize: 32, BlockTimeout: 10 * time.Second, Committers: committers})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				r := rec(fmt.Sprintf("%d-%d", g, i), 1, true)
				var err error
				if i%50 == 0 {
					err = w.SubmitSync(context.Background(), r)
				} else {
					err = w.Submit(r)
				}
				if err != nil {
					t.Errorf("submit: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := m.len(); got != 4000 {
		t.Errorf("stored %d, want 4000", got)
	}
}

func TestWriterValidation(t *testing.T) {
	w := mustNew(t, WriterOptions{Recorder: newMem()})
	bad := rec("", -1, true)
	bad.Time = time.Time{}
	if err := w.Submit(bad); err == nil {
		t.Error("Submit accepted an invalid record")
	}
	if _, err := NewWriter(WriterOptions{}); err == nil {
		t.Error("New without Recorder succeeded")
	}
	if _, err := NewWriter(WriterOptions{Recorder: newMem(), Overflow: 9}); err == nil {
		t.Error("New with unknown overflow succeeded")
	}
}

func TestSubmitSyncContext(t *testing.T) {
	m := newMem()
	m.gate = make(chan struct{})
	w := mustNew(t, WriterOptions{Recorder: m})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.SubmitSync(ctx, rec("a", 1, true)); !errors.Is(err, context.Canceled) {
		t.Errorf("SubmitSync with canceled ctx = %v", err)
	}
	close(m.gate)
}
