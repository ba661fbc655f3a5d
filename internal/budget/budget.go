package budget

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Micros is an amount of money in micro-dollars (1e-6 USD). Costs are rounded
// UP to the next micro-dollar before they are reserved or settled, so hard
// limits stay conservative. The int64 range covers about ±$9.2 trillion.
type Micros int64

// String formats m as dollars with six decimals, e.g. "$1.000000" or
// "-$0.000001". It is exact: no floating point is involved.
func (m Micros) String() string {
	sign := ""
	u := uint64(m)
	if m < 0 {
		sign = "-"
		u = uint64(-(m + 1)) + 1 // safe for math.MinInt64
	}
	frac := strconv.FormatUint(u%1_000_000, 10)
	for len(frac) < 6 {
		frac = "0" + frac
	}
	return sign + "$" + strconv.FormatUint(u/1_000_000, 10) + "." + frac
}

// Period is how often a budget's spend resets.
type Period uint8

// Periods. The zero value is invalid so that a forgotten field is caught by
// [Budget.Validate] rather than silently meaning "never resets".
const (
	// Daily budgets reset at midnight in the budget's Location.
	Daily Period = iota + 1
	// Weekly budgets reset at midnight starting Monday in the budget's Location.
	Weekly
	// Monthly budgets reset at midnight on the first of the month.
	Monthly
	// Total budgets never reset; their limit can be raised with TopUp.
	Total
)

// String returns "daily", "weekly", "monthly" or "total".
func (p Period) String() string {
	switch p {
	case Daily:
		return "daily"
	case Weekly:
		return "weekly"
	case Monthly:
		return "monthly"
	case Total:
		return "total"
	}
	return "period(" + strconv.Itoa(int(p)) + ")"
}

// Mode says what happens when a budget would be exceeded.
type Mode uint8

// Modes. Hard is the zero value, so an unset Mode is the conservative one.
const (
	// Hard budgets refuse reservations that would exceed the limit.
	Hard Mode = iota
	// Soft budgets accept every reservation and report when over the limit.
	Soft
)

// String returns "hard" or "soft".
func (m Mode) String() string {
	switch m {
	case Hard:
		return "hard"
	case Soft:
		return "soft"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Budget is a spend limit over a period. Budgets are plain values built from
// configuration; a Store keeps the spend, keyed by Name and window start.
type Budget struct {
	// Name uniquely identifies the budget, e.g. "key:team-search" or
	// "team:search". Two budgets with the same Name share their spend.
	Name string
	// Limit is the most that may be spent per period. For Total budgets the
	// effective limit is Limit plus every TopUp.
	Limit Micros
	// Period is how often the spend resets.
	Period Period
	// Mode is Hard (refuse) or Soft (report).
	Mode Mode
	// Location is the time zone whose midnights bound periods; nil means UTC.
	Location *time.Location
}

// Validate reports whether b is usable.
func (b Budget) Validate() error {
	var errs []error
	if b.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if b.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit %s is negative", b.Limit))
	}
	if b.Period < Daily || b.Period > Total {
		errs = append(errs, fmt.Errorf("invalid %s", b.Period))
	}
	if b.Mode > Soft {
		errs = append(errs, fmt.Errorf("invalid %s", b.Mode))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("budget %q: %w", b.Name, err)
	}
	return nil
}

// Window returns the period containing now: its start (inclusive) and when
// it resets (exclusive), in b's Location. Weeks start on Monday. Boundaries
// are local midnights, so a day across a daylight-saving change is 23 or 25
// hours long. For Total budgets both times are zero.
func (b Budget) Window(now time.Time) (start, reset time.Time) {
	loc := b.Location
	if loc == nil {
		loc = time.UTC
	}
	t := now.In(loc)
	y, m, d := t.Date()
	switch b.Period {
	case Daily:
		return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	case Weekly:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, loc), time.Date(y, m, d-back+7, 0, 0, 0, 0, loc)
	case Monthly:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
	return time.Time{}, time.Time{}
}

// WindowID returns the integer that identifies the window containing now in
// storage keys: the window start in Unix seconds, or 0 for Total budgets.
func (b Budget) WindowID(now time.Time) int64 {
	start, _ := b.Window(now)
	if start.IsZero() {
		return 0
	}
	return start.Unix()
}

// Fits reports whether settled + reserved + amount ≤ limit, without
// overflowing. Stores use it for the Hard-budget check; all four values are
// non-negative there.
func Fits(settled, reserved, amount, limit Micros) bool {
	if settled > limit {
		return false
	}
	room := limit - settled
	if reserved > room {
		return false
	}
	return amount <= room-reserved
}

// AddSat returns a + b, saturating at the int64 bounds instead of wrapping.
func AddSat(a, b Micros) Micros {
	s := a + b
	if a > 0 && b > 0 && s < 0 {
		return Micros(^uint64(0) >> 1)
	}
	if a < 0 && b < 0 && s >= 0 {
		return -Micros(^uint64(0)>>1) - 1
	}
	return s
}
