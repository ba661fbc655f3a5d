package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Overflow says what Submit does when the Writer's queue is full.
type Overflow uint8

const (
	// OverflowBlock waits up to WriterOptions.BlockTimeout for room, then drops
	// the record and returns ErrQueueFull.
	OverflowBlock Overflow = iota
	// OverflowDrop drops the record at once and returns ErrQueueFull.
	OverflowDrop
)

// String names the policy.
func (o Overflow) String() string {
	switch o {
	case OverflowBlock:
		return "block"
	case OverflowDrop:
		return "drop"
	}
	return fmt.Sprintf("Overflow(%d)", uint8(o))
}

// Errors returned by Submit and SubmitSync.
var (
	// ErrQueueFull means the record was dropped by the overflow policy.
	ErrQueueFull = errors.New("ledger queue full: record dropped")
	// ErrClosed means the Writer was closed before the record was queued.
	ErrClosed = errors.New("ledger writer closed")
)

// Hooks receive the Writer's events, for metrics and for handling lost
// records. Every hook is optional and is called from the Writer's own
// goroutines (Dropped from the submitter's); hooks must not block.
type Hooks struct {
	// Dropped is called for each record dropped by the overflow policy.
	Dropped func(rec Record)
	// Committed is called after each batch commit with the number of
	// records and the time the commit took, retries included.
	Committed func(n int, elapsed time.Duration)
	// Failed is called with records that were not stored: the whole batch
	// when the Recorder kept failing after MaxAttempts, or the refused
	// records of a *RejectedError. Use it to log or spill them.
	Failed func(recs []Record, err error)
}

// WriterOptions configure a Writer. Zero fields take the documented defaults.
type WriterOptions struct {
	// Recorder stores the batches. Required.
	Recorder Recorder
	// QueueSize bounds the queue, in records. Default 8192.
	QueueSize int
	// BatchSize is the most records committed at once; a full batch is
	// committed at once. Default 512.
	BatchSize int
	// FlushInterval is how long a partial batch may wait for more records.
	// A batch holding a SubmitSync record is committed as soon as the queue
	// is momentarily empty instead. Default 50ms.
	FlushInterval time.Duration
	// Overflow is the policy when the queue is full. Default OverflowBlock.
	Overflow Overflow
	// BlockTimeout bounds the wait of OverflowBlock. Default 100ms.
	BlockTimeout time.Duration
	// CommitTimeout bounds each Recorder call. Default 10s.
	CommitTimeout time.Duration
	// MaxAttempts is how many times a failing batch is tried. Default 3.
	MaxAttempts int
	// RetryBackoff is the wait before the first retry; it doubles after
	// each. Default 100ms.
	RetryBackoff time.Duration
	// Committers is how many batches may be committed at once. Default 1.
	// More lets a store that commits in parallel (PostgreSQL: one backend
	// per connection) use several cores; batches then commit in any order.
	Committers int
	// PieceSize, with a Recorder that is a Batcher and one committer, is
	// the most records added to the open batch at once: the batch is
	// stored in pieces as records arrive and committed as a batch would
	// be. Default 64. Without a Batcher, or with several committers, it
	// is not used.
	PieceSize int
	// Hooks receive events. Optional.
	Hooks Hooks
}

// Stats are the Writer's counters since NewWriter.
type Stats struct {
	Submitted int64 // records accepted into the queue
	Committed int64 // records whose batch was stored (duplicates included)
	Dropped   int64 // records dropped by the overflow policy
	Failed    int64 // records not stored: commit failure or refusal
}

// Writer is a bounded queue in front of a Recorder; one goroutine commits
// the queued records in batches. It is safe for concurrent use. Close
// drains it.
type Writer struct {
	opts  WriterOptions
	queue chan item

	mu     sync.RWMutex // held shared while sending, exclusively to close queue
	closed bool
	done   chan struct{} // closed when the last batch is committed

	commits chan *batch // gathered batches, to the committers
	free    chan *batch // committed batches, for reuse
	// kick wakes the gatherer early (see gather); wakeAt is the queue
	// length at which Submit kicks it: what the gatherer's batch lacks to
	// be full.
	kick   chan struct{}
	wakeAt atomic.Int64
	// batcher is the Recorder as a Batcher when batches go in pieces.
	batcher Batcher

	submitted, committed, dropped, failed atomic.Int64
}

type item struct {
	rec  Record
	done chan error // nil for Submit; buffered(1) for SubmitSync
}

// NewWriter starts a Writer. Call Close to stop it.
func NewWriter(opts WriterOptions) (*Writer, error) {
	if opts.Recorder == nil {
		return nil, errors.New("ledger writer: nil Recorder")
	}
	if opts.Overflow != OverflowBlock && opts.Overflow != OverflowDrop {
		return nil, fmt.Errorf("ledger writer: unknown overflow policy %v", opts.Overflow)
	}
	if opts.QueueSize < 0 || opts.BatchSize < 0 || opts.MaxAttempts < 0 || opts.FlushInterval < 0 || opts.Committers < 0 ||
		opts.BlockTimeout < 0 || opts.CommitTimeout < 0 || opts.RetryBackoff < 0 || opts.PieceSize < 0 {
		return nil, errors.New("ledger writer: negative option")
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&opts.QueueSize, 8192)
	def(&opts.BatchSize, 512)
	def(&opts.MaxAttempts, 3)
	def(&opts.Committers, 1)
	def(&opts.PieceSize, 64)
	defDur(&opts.FlushInterval, 50*time.Millisecond)
	defDur(&opts.BlockTimeout, 100*time.Millisecond)
	defDur(&opts.CommitTimeout, 10*time.Second)
	defDur(&opts.RetryBackoff, 100*time.Millisecond)
	w := &Writer{
		opts:    opts,
		queue:   make(chan item, opts.QueueSize),
		done:    make(chan struct{}),
		commits: make(chan *batch),
		free:    make(chan *batch, opts.Committers+1),
		kick:    make(chan struct{}, 1),
	}
	if b, ok := opts.Recorder.(Batcher); ok && opts.Committers == 1 {
		w.batcher = b
	}
	w.wakeAt.Store(int64(min(opts.BatchSize, opts.QueueSize, w.pieceSize())))
	var wg sync.WaitGroup
	for range opts.Committers {
		wg.Go(w.commitLoop)
	}
	go func() {
		w.gather()
		close(w.commits)
		wg.Wait()
		close(w.done)
	}()
	return w, nil
}

// Submit queues rec for the next batch and returns without waiting for the
// commit. When the queue is full it follows the overflow policy: it never
// waits longer than BlockTimeout. It returns rec's validation error,
// ErrQueueFull when rec was dropped, or ErrClosed.
func (w *Writer) Submit(rec Record) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	select {
	case w.queue <- item{rec: rec}:
		w.submitted.Add(1)
		if int64(len(w.queue)) >= w.wakeAt.Load() {
			w.wake()
		}
		return nil
	default:
	}
	w.wake()
	if w.opts.Overflow == OverflowBlock {
		t := time.NewTimer(w.opts.BlockTimeout)
		defer t.Stop()
		select {
		case w.queue <- item{rec: rec}:
			w.submitted.Add(1)
			return nil
		case <-t.C:
		}
	}
	w.dropped.Add(1)
	if h := w.opts.Hooks.Dropped; h != nil {
		h(rec)
	}
	return ErrQueueFull
}

// SubmitSync queues rec and waits until the batch holding it is committed
// (durability: sync). It waits for queue room as long as ctx allows,
// whatever the overflow policy, since its caller chose to wait. It returns
// nil once rec is stored (or was already stored), the commit error, or
// ctx's error; after a ctx error the record may still be committed.
func (w *Writer) SubmitSync(ctx context.Context, rec Record) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	done := make(chan error, 1)
	if err := w.enqueueWait(ctx, item{rec: rec, done: done}); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("wait for ledger commit: %w", context.Cause(ctx))
	}
}

func (w *Writer) enqueueWait(ctx context.Context, it item) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	select {
	case w.queue <- it:
		w.submitted.Add(1)
		w.wake() // a caller waits: commit without waiting for the interval
		return nil
	default:
	}
	w.wake()
	select {
	case w.queue <- it:
		w.submitted.Add(1)
		w.wake()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("queue ledger record: %w", context.Cause(ctx))
	}
}

// wake kicks the gatherer, unless a kick is already pending.
func (w *Writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Close stops accepting records, commits everything queued and waits for
// the last commit, or for ctx. If ctx ends first Close returns its error
// and the queue keeps draining in the background. Close is idempotent.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	w.wake()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain ledger queue: %w", context.Cause(ctx))
	}
}

// Stats returns the counters.
func (w *Writer) Stats() Stats {
	return Stats{
		Submitted: w.submitted.Load(),
		Committed: w.committed.Load(),
		Dropped:   w.dropped.Load(),
		Failed:    w.failed.Load(),
	}
}
