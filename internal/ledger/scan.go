package ledger

import (
	"context"
	"encoding/json"
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

// The helpers below are for Scanner implementations: decoding millions of
// records, they keep the low-cardinality columns from allocating.

// maxInterned bounds an Interner, so that a column with a value per record
// (an unexpected one) cannot grow it without limit.
const maxInterned = 4096

// Interner returns one string per distinct value of low-cardinality
// columns (key, team, model, …), so that decoding them does not allocate.
// The zero value is ready; it is not safe for concurrent use.
type Interner map[string]string

// Get returns b as a string, the same string for the same bytes.
func (t *Interner) Get(b []byte) string {
	if s, ok := (*t)[string(b)]; ok { // no allocation for the look-up
		return s
	}
	s := string(b)
	if *t == nil {
		*t = make(Interner)
	}
	if len(*t) < maxInterned {
		(*t)[s] = s
	}
	return s
}

// maxCachedAgreements bounds an AgreementsCache.
const maxCachedAgreements = 1024

// AgreementsCache decodes stored agreements lists, sharing one slice among
// records with the same stored bytes: a ledger holds few distinct sets of
// agreements, and a slice per record would be most of a scan's garbage.
// Callers must not modify the slices it returns. The zero value is ready;
// it is not safe for concurrent use.
type AgreementsCache map[string][]string

// Decode returns the agreements stored as stored: a JSON array, or, when
// unquote is not nil, what unquote turns stored into. An empty list is nil.
func (c *AgreementsCache) Decode(stored []byte, unquote func([]byte) ([]byte, error)) ([]string, error) {
	if ag, ok := (*c)[string(stored)]; ok {
		return ag, nil
	}
	text := stored
	if unquote != nil {
		var err error
		if text, err = unquote(stored); err != nil {
			return nil, err
		}
	}
	var ag []string
	if err := json.Unmarshal(text, &ag); err != nil {
		return nil, err
	}
	if len(ag) == 0 {
		ag = nil
	}
	if *c == nil {
		*c = make(AgreementsCache)
	}
	if len(*c) < maxCachedAgreements {
		(*c)[string(stored)] = ag
	}
	return ag, nil
}
