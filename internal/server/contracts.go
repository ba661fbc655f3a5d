package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/contract"
	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
)

// Headers of POST /admin/route/explain naming the caller's key and team,
// for agreements scoped to them.
const (
	explainKeyHeader  = "X-Multipolar-Key"
	explainTeamHeader = "X-Multipolar-Team"
)

// applyContracts names on each record the agreements that touch it and
// counts its cost against the commitments' live burn, which routing paces
// by. It does not allocate once each combination of agreements was seen.
func (s *snapshot) applyContracts(recs []ledger.Record) {
	for i := range recs {
		r := &recs[i]
		r.Agreements = s.contracts.Touch(r)
		if r.Provider != "" {
			s.contracts.Pacer().Add(r.Provider, r.Time, r.Cost)
		}
	}
}

// paceInterval is how often commitments' burn is reloaded from the ledger,
// which brings in what other replicas spent.
const paceInterval = time.Minute

// commitmentGauges are the burn-down metrics, in USD.
type commitmentGauges struct {
	spent, schedule, shortfall, alert *prometheus.GaugeVec
}

func newCommitmentGauges(reg prometheus.Registerer) *commitmentGauges {
	g := &commitmentGauges{
		spent: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "multipolar_commitment_spent_usd",
			Help: "Spend counted against a commitment since its start (list cost, USD)."}, []string{"agreement"}),
		schedule: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "multipolar_commitment_schedule_usd",
			Help: "Spend a commitment's linear schedule expects by now (USD)."}, []string{"agreement"}),
		shortfall: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "multipolar_commitment_projected_shortfall_usd",
			Help: "Commitment amount left unspent at its end at the spend rate so far (USD)."}, []string{"agreement"}),
		alert: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "multipolar_commitment_alert",
			Help: "1 while a commitment's projected shortfall exceeds its alert_shortfall threshold."}, []string{"agreement"}),
	}
	reg.MustRegister(g.spent, g.schedule, g.shortfall, g.alert)
	return g
}

// paceLoop reloads the commitments' burn from the ledger now and every
// paceInterval until ctx ends, publishes the burn-down and logs a warning
// when a commitment's projected shortfall crosses its threshold.
func (s *Server) paceLoop(ctx context.Context) {
	tick := time.NewTicker(paceInterval)
	defer tick.Stop()
	for {
		s.pace(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pace refreshes the burn once.
func (s *Server) pace(ctx context.Context) {
	p := s.snap.Load().contracts.Pacer()
	if !p.Active() {
		return
	}
	now := s.now()
	if err := p.Refresh(ctx, s.spend, now); err != nil {
		s.log.Warn("commitment burn refresh failed", "error", err.Error())
	}
	usd := func(micros int64) float64 { return float64(micros) / 1e6 }
	for _, b := range p.BurnDown(now) {
		s.commitments.spent.WithLabelValues(b.Name).Set(usd(b.Spent))
		s.commitments.schedule.WithLabelValues(b.Name).Set(usd(b.Schedule))
		s.commitments.shortfall.WithLabelValues(b.Name).Set(usd(b.ProjectedShortfall))
		alert := 0.0
		if b.Alert {
			alert = 1
		}
		s.commitments.alert.WithLabelValues(b.Name).Set(alert)
		if b.Alert && b.Changed {
			s.log.Warn("commitment projected to fall short", "agreement", b.Name, "amount_usd", usd(b.Amount),
				"spent_usd", usd(b.Spent), "schedule_usd", usd(b.Schedule), "projected_shortfall_usd", usd(b.ProjectedShortfall))
		}
	}
}

// spend is the ledger's exact cost of the providers' records in [from, to).
func (s *Server) spend(ctx context.Context, providers []string, from, to time.Time) (pricing.Money, error) {
	rows, _, err := s.store.Usage(ctx, ledger.Query{From: from, To: to, GroupBy: []string{ledger.GroupProvider}})
	if err != nil {
		return pricing.Money{}, err
	}
	var sum pricing.Acc
	for _, r := range rows {
		if slices.Contains(providers, r.Provider) {
			sum.Add(r.Cost)
		}
	}
	return sum.Money(), nil
}

// settlementContentType is each statement format's media type.
var settlementContentType = map[string]string{
	contract.FormatJSON:  "application/json",
	contract.FormatCSV:   "text/csv; charset=utf-8",
	contract.FormatTable: "text/plain; charset=utf-8",
}

// handleSettlement answers GET /admin/settlement?period=YYYY-MM[&format=]:
// the period's statement under the running configuration's agreements.
func (s *Server) handleSettlement(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	format := v.Get("format")
	if format == "" {
		format = contract.FormatJSON
	}
	bad := func(msg string) {
		writeAdminJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"message": msg}})
	}
	if settlementContentType[format] == "" {
		bad("format: want json, csv or table")
		return
	}
	period, err := contract.ParsePeriod(v.Get("period"))
	if err != nil {
		bad(err.Error())
		return
	}
	sc, ok := s.store.(ledger.Scanner)
	if !ok {
		writeAdminJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"message": "no ledger: settlement needs ledger.driver sqlite or postgres"}})
		return
	}
	st, err := contract.Settle(r.Context(), s.snap.Load().contracts, sc, period, s.now())
	if err != nil {
		s.log.Error("settlement failed", "period", period.Name, "error", err.Error())
		writeAdminJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]string{"message": "the settlement failed"}})
		return
	}
	w.Header().Set("Content-Type", settlementContentType[format])
	_ = st.Write(w, format)
}

// Settle settles a period from the ledger a configuration names under its
// agreements, as of asOf, for `multipolar settle`.
func Settle(ctx context.Context, cfg *config.Config, period contract.Period, asOf time.Time) (*contract.Statement, error) {
	set, err := contract.Compile(cfg, nil)
	if err != nil {
		return nil, err
	}
	var st *contract.Statement
	err = withScanner(ctx, cfg.Ledger, "settlement", func(sc ledger.Scanner) (err error) {
		st, err = contract.Settle(ctx, set, sc, period, asOf)
		return err
	})
	return st, err
}

// withScanner opens the ledger c names, calls fn with it and closes it;
// what names the work in the error for a configuration without a ledger.
func withScanner(ctx context.Context, c config.Ledger, what string, fn func(ledger.Scanner) error) error {
	st, err := OpenLedger(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	sc, ok := st.(ledger.Scanner)
	if !ok {
		return errors.New(what + " needs a ledger (ledger.driver sqlite or postgres)")
	}
	return fn(sc)
}
