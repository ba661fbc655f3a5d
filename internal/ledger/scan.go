package ledger

import (
	"context"
	"time"
)

// Scanner streams stored records in a deterministic order, for settlement
// and simulation runs that read millions of records without holding them
// in memory. Implementations are safe for concurrent use.
type Scanner interface {
	// Scan calls fn with each record matched by f, ordered by Time, then
	// RequestID (byte-wise), then Attempt. It calls fn from the calling
	// goroutine, one record at a time.
	//
	// Scan fills every field except Route and UnitPrices, which are left
	// zero: reading them is costly and settlement does not need them.
	//
	// The *Record passed to fn is reused between calls: fn must copy what
	// it keeps. A shallow copy (rec := *r) is enough, because Scan never
	// modifies a string, Money or Agreements slice once it has passed it to
	// fn. Agreements may be shared between records, so fn must not modify
	// its elements.
	//
	// An error from fn stops the scan and is returned as it is. Scan also
	// stops when ctx is done, with an error that errors.Is matches to
	// ctx.Err().
	Scan(ctx context.Context, f ScanFilter, fn func(*Record) error) error
}

// ScanFilter selects the records a Scanner passes on.
type ScanFilter struct {
	// From and To bound Record.Time as [From, To); a zero bound is open.
	From, To time.Time
	// BillableOnly passes on only billable records.
	BillableOnly bool
}
