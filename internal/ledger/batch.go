package ledger

import (
	"context"
	"errors"
	"time"
)

// batch is a group of records committed together.
type batch struct {
	recs []Record
	done []chan error // done[i] is recs[i]'s SubmitSync waiter, or nil
	sync bool         // some record has a waiter
}

func (b *batch) add(it item) {
	b.recs = append(b.recs, it.rec)
	b.done = append(b.done, it.done)
	if it.done != nil {
		b.sync = true
	}
}

func (w *Writer) newBatch() *batch {
	select {
	case b := <-w.free:
		return b
	default:
		return &batch{recs: make([]Record, 0, w.opts.BatchSize), done: make([]chan error, 0, w.opts.BatchSize)}
	}
}

func (w *Writer) recycle(b *batch) {
	clear(b.recs) // drop references to records and channels
	clear(b.done)
	b.recs, b.done, b.sync = b.recs[:0], b.done[:0], false
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
//
// Once a batch has started, gather does not wake for each record: it
// sleeps until FlushInterval ends or a submitter kicks it (a SubmitSync,
// enough queued to fill the batch, Close), then takes everything queued
// at once.
// Waking a goroutine for every record cost a scheduler round trip per
// request, most of it while the process was otherwise idle.
func (w *Writer) gather() {
	cur := w.newBatch()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	flush := func() {
		if armed {
			timer.Stop()
			armed = false
		}
		if len(cur.recs) > 0 {
			w.commits <- cur
			cur = w.newBatch()
		}
	}
	take := func(it item) {
		cur.add(it)
		if len(cur.recs) >= w.opts.BatchSize {
			flush()
		}
	}
	// drain takes what is queued without waiting; false once the queue
	// is closed and empty.
	drain := func() bool {
		for {
			select {
			case it, ok := <-w.queue:
				if !ok {
					return false
				}
				take(it)
			default:
				return true
			}
		}
	}
	for {
		if len(cur.recs) == 0 {
			it, ok := <-w.queue
			if !ok { // closed and drained
				return
			}
			take(it)
		}
		if !drain() {
			flush()
			return
		}
		switch {
		case len(cur.recs) == 0:
			continue
		case cur.sync: // the queue is momentarily empty and a caller waits
			flush()
			continue
		case !armed:
			timer.Reset(w.opts.FlushInterval)
			armed = true
		}
		// Be kicked once the queue holds what the batch lacks; what was
		// queued before the threshold moved is looked at here.
		lack := min(w.opts.BatchSize-len(cur.recs), w.opts.QueueSize)
		w.wakeAt.Store(int64(lack))
		if len(w.queue) >= lack {
			continue
		}
		select {
		case <-timer.C:
			armed = false
			if !drain() {
				flush()
				return
			}
			flush()
		case <-w.kick:
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
	for i, done := range b.done {
		if done == nil {
			continue
		}
		if refused == nil || refused[b.recs[i].ID()] {
			done <- err
		} else {
			done <- nil
		}
	}
}
