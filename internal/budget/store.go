package budget

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Store keeps spend against budgets. Implementations are safe for concurrent
// use; redisbudget is also safe across processes sharing one Redis.
//
// Store has five methods rather than the usual one to three because the
// gateway's request path (Reserve, Settle, Release) and its admin path
// (Spent, TopUp) must see the same state; consumers should declare the
// narrower interface they need.
type Store interface {
	// Reserve holds req.Amount against every budget in req, all or nothing.
	// If a Hard budget would go over its limit nothing is held and the error
	// is an *ExceededError. A repeated Reserve with the same req.ID returns
	// the existing reservation without holding more.
	Reserve(ctx context.Context, req Request) (Reservation, error)
	// Settle replaces r's hold by the actual cost, which is recorded even if
	// it exceeds r.Amount or r has expired. Settling twice is a no-op.
	Settle(ctx context.Context, r Reservation, actual Micros) error
	// Release drops r's hold without recording spend. Releasing twice, or
	// after Settle, is a no-op.
	Release(ctx context.Context, r Reservation) error
	// Spent returns b's settled spend and live (unexpired) holds in the
	// window containing now.
	Spent(ctx context.Context, b Budget, now time.Time) (settled, reserved Micros, err error)
	// TopUp raises the limit of a Total budget by amount (> 0). The raise is
	// persisted in the store; the effective limit is b.Limit plus all top-ups.
	TopUp(ctx context.Context, b Budget, amount Micros) error
}

// Request asks a Store to hold money for one gateway request.
type Request struct {
	// ID identifies the request; Reserve is idempotent on it. A retried
	// Reserve must carry the same Budgets.
	ID string
	// Budgets are charged together, e.g. the key's and the team's. Names
	// must be distinct.
	Budgets []Budget
	// Amount is the most the request can cost, rounded up to a micro-dollar.
	Amount Micros
	// Now is the current time; it chooses each budget's window and dates
	// the hold's expiry. Injected so tests control time.
	Now time.Time
	// TTL is how long the hold lives if neither settled nor released.
	TTL time.Duration
}

// Validate reports whether r is well formed.
func (r Request) Validate() error {
	var errs []error
	if r.ID == "" {
		errs = append(errs, errors.New("id is empty"))
	}
	if r.Amount < 0 {
		errs = append(errs, fmt.Errorf("amount %s is negative", r.Amount))
	}
	if r.TTL <= 0 {
		errs = append(errs, fmt.Errorf("ttl %v is not positive", r.TTL))
	}
	if r.Now.IsZero() {
		errs = append(errs, errors.New("now is zero"))
	}
	for i, b := range r.Budgets {
		if err := b.Validate(); err != nil {
			errs = append(errs, err)
		}
		for _, o := range r.Budgets[:i] {
			if o.Name == b.Name {
				errs = append(errs, fmt.Errorf("budget %q listed twice", b.Name))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("budget request %q: %w", r.ID, err)
	}
	return nil
}

// Reservation is a hold returned by Reserve. It is a plain value; pass it
// back unchanged to Settle or Release.
type Reservation struct {
	// ID is the Request.ID.
	ID string
	// Amount is the amount held on each budget.
	Amount Micros
	// Budgets are the budgets charged, in request order.
	Budgets []Budget
	// Windows holds, per budget, the WindowID charged. Settle records spend
	// in these windows even if it happens after a period rollover.
	Windows []int64
	// Expires is when the hold lapses if not settled or released (stores may
	// truncate it to the millisecond).
	Expires time.Time
	// SoftExceeded names the Soft budgets that are over their limit with
	// this reservation included, for alerting.
	SoftExceeded []string
}

// ErrExceeded matches every *ExceededError with errors.Is.
var ErrExceeded = errors.New("budget exceeded")

// ErrNotTotal is returned by TopUp for budgets whose Period is not Total.
var ErrNotTotal = errors.New("top-up needs a total budget")

// ExceededError reports the Hard budget that refused a reservation.
type ExceededError struct {
	// Budget is the budget that refused.
	Budget Budget
	// Limit is the effective limit (for Total budgets, including top-ups).
	Limit Micros
	// Spent is settled plus reserved spend in the window before this request.
	Spent Micros
	// Needed is the amount the refused request asked for.
	Needed Micros
	// Reset is when the window resets; zero for Total budgets.
	Reset time.Time
}

// Error names the budget, its limit in dollars and when it resets, e.g.
// `budget "key:team-search" (total) of $1.000000 is exhausted: $0.990000
// spent, $0.020000 needed`.
func (e *ExceededError) Error() string {
	msg := fmt.Sprintf("budget %q (%s) of %s is exhausted: %s spent, %s needed",
		e.Budget.Name, e.Budget.Period, e.Limit, e.Spent, e.Needed)
	if !e.Reset.IsZero() {
		msg += "; resets at " + e.Reset.Format(time.RFC3339)
	}
	return msg
}

// Is reports whether target is ErrExceeded.
func (e *ExceededError) Is(target error) bool { return target == ErrExceeded }
