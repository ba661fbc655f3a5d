package ledger

import (
	"context"
	"errors"
	"time"
)

// batch is a group of records committed together.
type batch struct {
	items []item
	recs  []Record
	sync  bool // some item has a SubmitSync waiter
}

func (b *batch) add(it item) {
	b.items = append(b.items, it)
	b.recs = append(b.recs, it.rec)
	if it.done != nil {
		b.sync = true
	}
}

func (w *Writer) newBatch() *batch {
	select {
	case b := <-w.free:
		return b
	default:
		return &batch{items: make([]item, 0, w.opts.BatchSize), recs: make([]Record, 0, w.opts.BatchSize)}
	}
}

func (w *Writer) recycle(b *batch) {
	clear(b.items) // drop references to records and channels
	clear(b.recs)
	b.items, b.recs, b.sync = b.items[:0], b.recs[:0], false
	select {
	case w.free <- b:
	default:
	}
}

// gather reads the queue into batches and hands each to a committer when
// it is full, when FlushInterval has passed since it started, when a
// SubmitSync caller waits and the queue is momentarily empty, and when the
// queue is closed. Handing off blocks while every committer is busy; the
// queue absorbs submissions meanwhile.
func (w *Writer) gather() {
	cur := w.newBatch()
	flush := func() {
		if len(cur.items) > 0 {
			w.commits <- cur
			cur = w.newBatch()
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	disarm := func() {
		if armed {
			timer.Stop()
			armed = false
		}
	}
	for {
		var it item
		var ok bool
		if len(cur.items) == 0 {
			it, ok = <-w.queue
		} else {
			select {
			case it, ok = <-w.queue:
			default:
				// Queue momentarily empty.
				if cur.sync {
					disarm()
					flush()
					continue
				}
				if !armed {
					timer.Reset(w.opts.FlushInterval)
					armed = true
				}
				select {
				case it, ok = <-w.queue:
				case <-timer.C:
					armed = false
					flush()
					continue
				}
			}
		}
		if !ok { // closed and drained
			disarm()
			flush()
			return
		}
		cur.add(it)
		if len(cur.items) >= w.opts.BatchSize {
			disarm()
			flush()
		}
	}
}

func (w *Writer) commitLoop() {
	for b := range w.commits {
		w.commit(b)
		w.recycle(b)
	}
}

// commit stores b, retrying failures with back-off, and reports the
// outcome to hooks and waiters.
func (w *Writer) commit(b *batch) {
	start := time.Now()
	var err error
	var rej *RejectedError
	backoff := w.opts.RetryBackoff
	for attempt := 1; ; attempt++ {
		// Ledger writes survive the request: the commit has its own
		// bounded context, not any caller's.
		ctx, cancel := context.WithTimeout(context.Background(), w.opts.CommitTimeout)
		err = w.opts.Recorder.Record(ctx, b.recs)
		cancel()
		if err == nil || errors.As(err, &rej) || attempt >= w.opts.MaxAttempts {
			break
		}
		time.Sleep(backoff)
		backoff *= 2
	}
	elapsed := time.Since(start)

	switch {
	case err == nil:
		w.committed.Add(int64(len(b.recs)))
		notify(b, nil, nil)
	case rej != nil:
		refused := make(map[ID]bool, len(rej.IDs))
		for _, id := range rej.IDs {
			refused[id] = true
		}
		var lost []Record
		for _, r := range b.recs {
			if refused[r.ID()] {
				lost = append(lost, r)
			}
		}
		w.committed.Add(int64(len(b.recs) - len(lost)))
		w.failed.Add(int64(len(lost)))
		if h := w.opts.Hooks.Failed; h != nil && len(lost) > 0 {
			h(lost, err)
		}
		notify(b, refused, err)
	default:
		w.failed.Add(int64(len(b.recs)))
		if h := w.opts.Hooks.Failed; h != nil {
			h(append([]Record(nil), b.recs...), err)
		}
		notify(b, nil, err)
	}
	if err == nil || rej != nil {
		if h := w.opts.Hooks.Committed; h != nil {
			h(len(b.recs), elapsed)
		}
	}
}

// notify answers the SubmitSync waiters: err goes to every waiter when
// refused is nil, else only to the waiters of refused records.
func notify(b *batch, refused map[ID]bool, err error) {
	for _, it := range b.items {
		if it.done == nil {
			continue
		}
		if refused == nil || refused[it.rec.ID()] {
			it.done <- err
		} else {
			it.done <- nil
		}
	}
}
