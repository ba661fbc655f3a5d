package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// memBatcher is a memRecorder that is also a Batcher: an open batch keeps
// what is added and stores it into the memRecorder at Commit, with
// Record's semantics.
type memBatcher struct {
	*memRecorder
	bmu                 sync.Mutex
	adds                []int // sizes of the pieces added, in order
	commits, rollbacks  int
	failAdd, failCommit int      // fail this many Add or Commit calls
	added               chan int // receives each piece's size
}

func newBatcher() *memBatcher { return &memBatcher{memRecorder: newMem(), added: make(chan int, 100)} }

type memOpen struct {
	b    *memBatcher
	recs []Record
	done bool
}

func (b *memBatcher) Begin(context.Context) (OpenBatch, error) { return &memOpen{b: b}, nil }

func (o *memOpen) Add(_ context.Context, recs []Record) error {
	o.b.bmu.Lock()
	defer o.b.bmu.Unlock()
	if o.b.failAdd > 0 {
		o.b.failAdd--
		return errors.New("add failed")
	}
	o.recs = append(o.recs, recs...)
	o.b.adds = append(o.b.adds, len(recs))
	o.b.added <- len(recs)
	return nil
}

func (o *memOpen) Commit(ctx context.Context) error {
	o.b.bmu.Lock()
	if o.b.failCommit > 0 {
		o.b.failCommit--
		o.b.bmu.Unlock()
		return errors.New("commit failed")
	}
	o.b.commits++
	o.done = true
	o.b.bmu.Unlock()
	return o.b.Record(ctx, o.recs)
}

func (o *memOpen) Rollback() error {
	o.b.bmu.Lock()
	defer o.b.bmu.Unlock()
	if !o.done {
		o.b.rollbacks++
		o.done = true
	}
	return nil
}

func (b *memBatcher) counts() (adds []int, commits, rollbacks, batches int) {
	b.bmu.Lock()
	adds, commits, rollbacks = append([]int(nil), b.adds...), b.commits, b.rollbacks
	b.bmu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	return adds, commits, rollbacks, len(b.batches)
}

// TestWriterPiecesBeforeCommit: with a Batcher, records are added to the
// open batch in pieces of PieceSize as they come, long before the batch
// is committed at Close.
func TestWriterPiecesBeforeCommit(t *testing.T) {
	b := newBatcher()
	w := mustNew(t, WriterOptions{Recorder: b, BatchSize: 1000, PieceSize: 16, FlushInterval: time.Hour})
	for i := range 40 {
		if err := w.Submit(rec(fmt.Sprint(i), 1, true)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case n := <-b.added:
			if n != 16 {
				t.Errorf("piece of %d records, want 16", n)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("full piece not added before the interval")
		}
	}
	if n := b.len(); n != 0 {
		t.Errorf("%d records committed before the batch ended", n)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	adds, commits, rollbacks, _ := b.counts()
	if fmt.Sprint(adds) != "[16 16 8]" || commits != 1 || rollbacks != 0 || b.len() != 40 {
		t.Errorf("pieces %v, %d commits, %d rollbacks, %d stored; want [16 16 8], 1 commit, 0 rollbacks, 40 stored",
			adds, commits, rollbacks, b.len())
	}
}

// TestWriterPiecesOnlyWhenFull: records short of a piece wait for the
// batch's end and go in with it, as its final piece.
func TestWriterPiecesOnlyWhenFull(t *testing.T) {
	b := newBatcher()
	b.calls = make(chan int, 10)
	w := mustNew(t, WriterOptions{Recorder: b, PieceSize: 4, FlushInterval: 300 * time.Millisecond})
	for i := range 6 {
		if err := w.Submit(rec(fmt.Sprint(i), 1, true)); err != nil {
			t.Fatal(err)
		}
	}
	if n := <-b.added; n != 4 {
		t.Fatalf("first piece of %d records, want 4", n)
	}
	select {
	case n := <-b.added:
		t.Fatalf("piece of %d records added before the batch was due", n)
	case <-time.After(100 * time.Millisecond):
	}
	b.firstBatch(t, 6, "batch not committed after the flush interval")
	if adds, commits, _, _ := b.counts(); fmt.Sprint(adds) != "[4 2]" || commits != 1 {
		t.Errorf("pieces %v, %d commits; want [4 2], 1", adds, commits)
	}
}

// TestWriterPiecesSubmitSync: a waiter whose record went out in a full,
// non-final piece still has its batch committed without waiting for the
// interval.
func TestWriterPiecesSubmitSync(t *testing.T) {
	b := newBatcher()
	w := mustNew(t, WriterOptions{Recorder: b, PieceSize: 2, FlushInterval: time.Hour})
	if err := w.Submit(rec("a", 1, true)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the gatherer holds a; b fills the piece
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.SubmitSync(ctx, rec("b", 1, true)); err != nil {
		t.Fatalf("SubmitSync = %v", err)
	}
	if adds, commits, _, _ := b.counts(); fmt.Sprint(adds) != "[2]" || commits != 1 || b.len() != 2 {
		t.Errorf("pieces %v, %d commits, %d stored; want [2], 1, 2", adds, commits, b.len())
	}
}

// TestWriterPiecesFallBackToRecord: when Add or Commit fails, the open
// batch is rolled back and its records are stored through Record, with
// its retries.
func TestWriterPiecesFallBackToRecord(t *testing.T) {
	for _, tc := range []struct {
		name              string
		failAdd, failCmt  int
		rollbacks, pieces int // pieces added before the failure
	}{
		{"add", 1, 0, 1, 0},
		{"commit", 0, 1, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBatcher()
			b.failAdd, b.failCommit = tc.failAdd, tc.failCmt
			b.fail = 1 // and Record fails once more: retried
			w := mustNew(t, WriterOptions{Recorder: b, PieceSize: 2, FlushInterval: time.Hour, RetryBackoff: time.Microsecond})
			for i := range 4 {
				if err := w.Submit(rec(fmt.Sprint(i), 1, true)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			adds, commits, rollbacks, batches := b.counts()
			if len(adds) != tc.pieces || commits != 0 || rollbacks != tc.rollbacks || batches != 1 || b.len() != 4 || w.Stats().Committed != 4 {
				t.Errorf("pieces %v, %d commits, %d rollbacks, %d Record batches, %d stored, stats %+v; want %d pieces, 0 commits, %d rollbacks, 1 batch, 4 stored",
					adds, commits, rollbacks, batches, b.len(), w.Stats(), tc.pieces, tc.rollbacks)
			}
		})
	}
}

// TestWriterPiecesRejected: a second billable record refused at Commit is
// reported to its waiter and the Failed hook; the rest is stored.
func TestWriterPiecesRejected(t *testing.T) {
	b := newBatcher()
	var failed []Record
	var mu sync.Mutex
	w := mustNew(t, WriterOptions{Recorder: b,
		Hooks: Hooks{Failed: func(r []Record, err error) { mu.Lock(); failed = append(failed, r...); mu.Unlock() }}})
	ctx := context.Background()
	if err := w.SubmitSync(ctx, rec("r", 1, true)); err != nil {
		t.Fatal(err)
	}
	if err := w.SubmitSync(ctx, rec("r", 2, true)); !errors.Is(err, ErrDuplicateBillable) {
		t.Errorf("second billable = %v, want ErrDuplicateBillable", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if st := w.Stats(); len(failed) != 1 || failed[0].Attempt != 2 || st.Committed != 1 || st.Failed != 1 {
		t.Errorf("Failed hook got %v, stats %+v", failed, st)
	}
}
