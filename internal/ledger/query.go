package ledger

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/multipolar/multipolar/internal/pricing"
)

// Group-by fields accepted in Query.GroupBy.
const (
	GroupProvider = "provider"
	GroupModel    = "model"
	GroupKey      = "key"
	GroupTeam     = "team"
	GroupWorkload = "workload"
)

// GroupFields lists the valid Query.GroupBy fields.
var GroupFields = []string{GroupProvider, GroupModel, GroupKey, GroupTeam, GroupWorkload}

// Query selects records by time and says how to group them.
type Query struct {
	// From and To bound Record.Time as [From, To); a zero bound is open.
	From, To time.Time
	// GroupBy lists Group* fields; rows are ordered by them, in this order.
	GroupBy []string
}

// ErrBadQuery is wrapped by the errors Query.Validate returns.
var ErrBadQuery = errors.New("bad usage query")

// Validate reports unknown or repeated GroupBy fields and an empty range.
func (q *Query) Validate() error {
	var errs []error
	seen := make(map[string]bool)
	for _, g := range q.GroupBy {
		switch {
		case !slices.Contains(GroupFields, g):
			errs = append(errs, fmt.Errorf("%w: unknown group field %q", ErrBadQuery, g))
		case seen[g]:
			errs = append(errs, fmt.Errorf("%w: group field %q repeated", ErrBadQuery, g))
		}
		seen[g] = true
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		errs = append(errs, fmt.Errorf("%w: from %s is not before to %s", ErrBadQuery, q.From, q.To))
	}
	return errors.Join(errs...)
}

// Row is one group of a usage report. Group fields not in Query.GroupBy
// are empty.
//
// Requests counts billable records: served requests. Records counts every
// attempt. Token counts and Cost add up every record, failed attempts
// included, because upstreams charge for them; BillableCost adds up the
// billable records only, which is what clients are charged.
type Row struct {
	Provider, Model, Key, Team, Workload string

	Requests     int64
	Records      int64
	InputTokens  int64
	OutputTokens int64
	CachedTokens int64
	Cost         pricing.Money
	BillableCost pricing.Money
}

// Total adds up rows into one row with empty group fields. The sums are
// exact.
func Total(rows []Row) Row {
	var t Row
	costs := make([]pricing.Money, 0, len(rows))
	billable := make([]pricing.Money, 0, len(rows))
	for _, r := range rows {
		t.Requests += r.Requests
		t.Records += r.Records
		t.InputTokens += r.InputTokens
		t.OutputTokens += r.OutputTokens
		t.CachedTokens += r.CachedTokens
		costs = append(costs, r.Cost)
		billable = append(billable, r.BillableCost)
	}
	t.Cost = pricing.Sum(costs...)
	t.BillableCost = pricing.Sum(billable...)
	return t
}

// Group returns the row's value of a group field.
func (r *Row) Group(field string) string {
	switch field {
	case GroupProvider:
		return r.Provider
	case GroupModel:
		return r.Model
	case GroupKey:
		return r.Key
	case GroupTeam:
		return r.Team
	case GroupWorkload:
		return r.Workload
	}
	return ""
}

// SetGroup sets the group field named field (a Group* constant) of r.
func (r *Row) SetGroup(field, value string) {
	switch field {
	case GroupProvider:
		r.Provider = value
	case GroupModel:
		r.Model = value
	case GroupKey:
		r.Key = value
	case GroupTeam:
		r.Team = value
	case GroupWorkload:
		r.Workload = value
	}
}

// Group returns the group field named field (a Group* constant) of rec.
func (r *Record) Group(field string) string {
	switch field {
	case GroupProvider:
		return r.Provider
	case GroupModel:
		return r.Model
	case GroupKey:
		return r.Key
	case GroupTeam:
		return r.Team
	case GroupWorkload:
		return r.Workload
	}
	return ""
}
