package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/multipolar/multipolar/internal/ledger"
)

// batcherOf returns s as a ledger.Batcher, or skips t.
func batcherOf(t *testing.T, s Store) ledger.Batcher {
	b, ok := s.(ledger.Batcher)
	if !ok {
		t.Skipf("%T is not a ledger.Batcher: batches go through Record whole", s)
	}
	return b
}

func mustBegin(t *testing.T, b ledger.Batcher) ledger.OpenBatch {
	t.Helper()
	o, err := b.Begin(ctxT(t))
	if err != nil {
		t.Fatalf("Begin = %v", err)
	}
	return o
}

func mustAdd(t *testing.T, o ledger.OpenBatch, recs ...ledger.Record) {
	t.Helper()
	if err := o.Add(ctxT(t), recs); err != nil {
		t.Fatalf("Add(%d records) = %v", len(recs), err)
	}
}

// testBatchPieces stores a batch in pieces: nothing is visible before
// Commit, then everything is, with Record's rules across the pieces: a
// duplicate of a stored record is skipped, a second billable record,
// against the store or an earlier piece, is refused at Commit. Pieces of
// varied sizes and contents need inserts of many shapes, most new to the
// store; a second batch reuses them.
func testBatchPieces(t *testing.T, s Store) {
	b := batcherOf(t, s)
	stored := newRecord("stored", 1)
	mustRecord(t, s, stored)

	o := mustBegin(t, b)
	var want []string
	for p := range 5 {
		var piece []ledger.Record
		for i := range 1 + 3*p { // 1, 4, 7, 10, 13 records
			r := newRecord(fmt.Sprintf("p%d-%02d", p, i), 1)
			r.LatencyMs = int64(p*100 + i%3) // some pieces share it, some not
			r.Usage.OutputTokens = int64(i)
			piece = append(piece, r)
			want = append(want, r.RequestID)
		}
		mustAdd(t, o, piece...)
	}
	again := newRecord("p1-00", 2) // billable again, against an earlier piece
	mustAdd(t, o, stored, again)
	if got := mustRecords(t, s, "p0-00"); len(got) != 0 {
		t.Errorf("records visible before Commit: %v", got)
	}
	err := o.Commit(ctxT(t))
	var rej *ledger.RejectedError
	if !errors.As(err, &rej) || len(rej.IDs) != 1 || rej.IDs[0] != again.ID() {
		t.Fatalf("Commit = %v, want a RejectedError for %v", err, again.ID())
	}
	for _, id := range want {
		if got := mustRecords(t, s, id); len(got) != 1 {
			t.Errorf("records of %s = %d, want 1", id, len(got))
		}
	}
	if got := mustRecords(t, s, "stored"); len(got) != 1 || !cmp.Equal(got[0], stored, cmpRecords) {
		t.Errorf("stored record changed by its duplicate: %v", got)
	}
	if err := o.Rollback(); err != nil {
		t.Errorf("Rollback after Commit = %v, want nil", err)
	}

	// The same shapes again, now kept by the store.
	o = mustBegin(t, b)
	for p := range 5 {
		var piece []ledger.Record
		for i := range 1 + 3*p {
			r := newRecord(fmt.Sprintf("q%d-%02d", p, i), 1)
			r.LatencyMs = int64(p*100 + i%3)
			r.Usage.OutputTokens = int64(i)
			piece = append(piece, r)
		}
		mustAdd(t, o, piece...)
	}
	if err := o.Commit(ctxT(t)); err != nil {
		t.Fatalf("second Commit = %v", err)
	}
	if got := mustRecords(t, s, "q4-12"); len(got) != 1 {
		t.Errorf("records of q4-12 = %d, want 1", len(got))
	}
}

// testBatchRollback: a rolled back batch stores nothing, and the store
// takes the next batch and Record.
func testBatchRollback(t *testing.T, s Store) {
	b := batcherOf(t, s)
	o := mustBegin(t, b)
	mustAdd(t, o, newRecord("gone-1", 1), newRecord("gone-2", 1))
	if err := o.Rollback(); err != nil {
		t.Fatalf("Rollback = %v", err)
	}
	if got := mustRecords(t, s, "gone-1"); len(got) != 0 {
		t.Errorf("rolled back record stored: %v", got)
	}
	if err := o.Add(ctxT(t), []ledger.Record{newRecord("late", 1)}); err == nil {
		t.Error("Add after Rollback = nil, want an error")
	}
	bad := newRecord("", 1)
	o = mustBegin(t, b)
	if err := o.Add(ctxT(t), []ledger.Record{newRecord("ok", 1), bad}); err == nil {
		t.Error("Add of an invalid record = nil, want an error")
	}
	if err := o.Rollback(); err != nil {
		t.Fatalf("Rollback = %v", err)
	}
	mustRecord(t, s, newRecord("gone-1", 1))
	o = mustBegin(t, b)
	mustAdd(t, o, newRecord("gone-2", 1))
	if err := o.Commit(ctxT(t)); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	for _, id := range []string{"gone-1", "gone-2"} {
		if got := mustRecords(t, s, id); len(got) != 1 {
			t.Errorf("records of %s = %d, want 1", id, len(got))
		}
	}
	if got := mustRecords(t, s, "ok"); len(got) != 0 {
		t.Errorf("record of a failed Add stored: %v", got)
	}
}
