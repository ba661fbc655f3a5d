package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/multipolar/multipolar/internal/pricing"
)

// Record is one upstream attempt of one client request. Records are plain
// values; a Recorder must not retain or modify them.
type Record struct {
	// RequestID identifies the client request; with Attempt it is the
	// record's identity.
	RequestID string
	// Attempt numbers the upstream attempts of the request, from 0 or 1.
	Attempt int
	// Time is when the attempt started. Stores keep microsecond precision
	// and return it in UTC.
	Time time.Time

	Key, Team, Workload string
	// Model is the client-facing model; Provider and UpstreamModel name
	// where the attempt was sent and under what name.
	Model, Provider, UpstreamModel string

	Usage pricing.Usage
	// Estimated reports usage counted by the gateway because the upstream
	// did not report it (for example a stream cut short).
	Estimated bool

	// UnitPrices is the price the cost was computed with.
	UnitPrices pricing.Price
	// Cost is pricing.Cost(UnitPrices, Usage), stored exactly.
	Cost pricing.Money

	// Status is the HTTP status of the attempt; Outcome a short word for
	// how it ended ("ok", "upstream_error", "client_canceled", …).
	Status  int
	Outcome string
	// Billable marks the one record per served request that is charged.
	Billable bool

	LatencyMs int64
	Stream    bool
	// Route is the route decision as JSON text: candidates tried and
	// refusals with reasons. It is stored verbatim.
	Route string
	// Agreements names the agreements (contract package) applied.
	Agreements []string
}

// ID returns the identity of r.
func (r *Record) ID() ID { return ID{RequestID: r.RequestID, Attempt: r.Attempt} }

// ID identifies a record: the request and the attempt.
type ID struct {
	RequestID string
	Attempt   int
}

// maxAttempt keeps Attempt inside a 32-bit column on every store.
const maxAttempt = 1<<31 - 1

// Validate reports what makes r unstorable: an empty RequestID, a negative
// or too large Attempt, a zero Time, or negative token counts or money.
func (r *Record) Validate() error {
	var errs []error
	if r.RequestID == "" {
		errs = append(errs, errors.New("empty request id"))
	}
	if r.Attempt < 0 || r.Attempt > maxAttempt {
		errs = append(errs, fmt.Errorf("attempt %d out of range", r.Attempt))
	}
	if r.Time.IsZero() {
		errs = append(errs, errors.New("zero time"))
	}
	u := r.Usage
	if u.InputTokens < 0 || u.OutputTokens < 0 || u.CachedTokens < 0 || u.CacheWriteTokens < 0 || u.ReasoningTokens < 0 {
		errs = append(errs, errors.New("negative token count"))
	}
	if r.Cost.Sign() < 0 {
		errs = append(errs, errors.New("negative cost"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid record %q/%d: %w", r.RequestID, r.Attempt, err)
	}
	return nil
}

// Recorder stores records. Record inserts recs as one batch and is
// idempotent: a record whose (RequestID, Attempt) is already stored is
// skipped, whatever its content. A billable record for a RequestID that
// already has a billable record under another attempt is refused: Record
// stores the rest of the batch and returns a *RejectedError naming the
// refused records. Any other error means nothing was stored. Record must
// not retain recs. Implementations are safe for concurrent use.
type Recorder interface {
	Record(ctx context.Context, recs []Record) error
}

// A Batcher is a Recorder that can also store a batch in pieces: Begin
// opens it, Add inserts records as they come, Commit makes them durable
// at once. A Writer in front of a Batcher inserts records shortly after
// they are submitted and commits once per batch, so that a batch's insert
// work is spread over its interval instead of landing on the process in
// one burst at the commit.
type Batcher interface {
	Recorder
	// Begin opens a batch. ctx bounds the batch's whole life: Begin to
	// Commit or Rollback.
	Begin(ctx context.Context) (OpenBatch, error)
}

// An OpenBatch is a batch being stored, with Record's semantics spread
// over its calls: nothing added is stored before Commit returns, a
// duplicate is skipped, and a second billable record is refused, which
// Commit reports as a *RejectedError while storing the rest. After an
// error from Add, the caller rolls back. An OpenBatch is used by one
// goroutine at a time.
type OpenBatch interface {
	// Add inserts recs into the batch. It must not retain recs.
	Add(ctx context.Context, recs []Record) error
	// Commit stores what was added. A *RejectedError names refused
	// records, the rest being stored; any other error means nothing was.
	Commit(ctx context.Context) error
	// Rollback discards what was added; after Commit it does nothing.
	Rollback() error
}

// ErrDuplicateBillable is wrapped by RejectedError: a second billable
// record for a request.
var ErrDuplicateBillable = errors.New("request already has a billable record")

// RejectedError reports the records a Recorder refused while storing the
// rest of a batch. errors.Is(err, ErrDuplicateBillable) holds for it.
type RejectedError struct {
	IDs []ID
}

// Error lists the refused records.
func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d record(s) refused: ", len(e.IDs))
	for i, k := range e.IDs {
		if i == 5 {
			b.WriteString(", …")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q/%d", k.RequestID, k.Attempt)
	}
	b.WriteString(": ")
	b.WriteString(ErrDuplicateBillable.Error())
	return b.String()
}

// Unwrap returns ErrDuplicateBillable.
func (e *RejectedError) Unwrap() error { return ErrDuplicateBillable }
