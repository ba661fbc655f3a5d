package route

import "sync/atomic"

// agreementStats counts one agreement's first-refusal decisions.
type agreementStats struct {
	offers   atomic.Uint64
	refusals [numReasons]atomic.Uint64
}

// Stats is a snapshot of the first-refusal counters, for export as
// multipolar_first_refusal_offers_total{agreement} and
// multipolar_first_refusal_refusals_total{agreement,reason}.
type Stats struct {
	// Agreements are in Spec order.
	Agreements []AgreementStats
}

// AgreementStats counts one agreement's decisions since the process
// started (counters carry over reloads through Spec.Previous). Every Plan
// the agreement covered counts exactly once: Offers when the holder was
// the first candidate, Refusals[reason] when it was passed over. Failures
// at call time are the engine's to count.
type AgreementStats struct {
	// Name is the agreement's, Holder its holder's.
	Name, Holder string
	// Offers counts decisions that offered the holder first.
	Offers uint64
	// Refusals holds the non-zero counts by reason.
	Refusals map[Reason]uint64
}

// Stats returns a snapshot of the counters. It allocates; safe for
// concurrent use.
func (r *Router) Stats() Stats {
	s := Stats{Agreements: make([]AgreementStats, 0, len(r.agreements))}
	for _, a := range r.agreements {
		as := AgreementStats{Name: a.name, Holder: a.holder.name, Offers: a.stats.offers.Load(), Refusals: map[Reason]uint64{}}
		for why := range a.stats.refusals {
			if n := a.stats.refusals[why].Load(); n > 0 {
				as.Refusals[Reason(why)] = n
			}
		}
		s.Agreements = append(s.Agreements, as)
	}
	return s
}

// FirstRefusalOffers returns how many decisions offered the agreement's
// holder first; 0 for an unknown agreement.
func (r *Router) FirstRefusalOffers(agreement string) uint64 {
	if a := r.byAgreement[agreement]; a != nil {
		return a.stats.offers.Load()
	}
	return 0
}

// FirstRefusalRefusals returns how many decisions passed the agreement's
// holder over for why; 0 for an unknown agreement.
func (r *Router) FirstRefusalRefusals(agreement string, why Reason) uint64 {
	if a := r.byAgreement[agreement]; a != nil && why < numReasons {
		return a.stats.refusals[why].Load()
	}
	return 0
}
