package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/contract"
	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/pricing"
	"github.com/multipolar/multipolar/internal/route"
)

// Simulation compares a period as recorded with the same traffic replayed
// through another configuration.
type Simulation struct {
	Period string `json:"period"`
	// Replayed counts the served requests replayed; Moved those the other
	// configuration sends to another provider or model; Refused those it
	// would refuse.
	Replayed int64 `json:"replayed"`
	Moved    int64 `json:"moved"`
	Refused  int64 `json:"refused"`
	// Providers compare served requests and cost per provider.
	Providers []ProviderDiff `json:"providers"`
	// Agreements compare each agreement's figure (see AgreementDiff).
	Agreements []AgreementDiff `json:"agreements"`
	// Refusals count the replayed requests refused, by reason and
	// agreement.
	Refusals []RefusalCount `json:"refusals"`
	// Baseline and Simulated are the two statements in full.
	Baseline  *contract.Statement `json:"baseline"`
	Simulated *contract.Statement `json:"simulated"`
}

// ProviderDiff is one provider's served requests and cost, recorded and
// simulated.
type ProviderDiff struct {
	Provider           string        `json:"provider"`
	BaselineRequests   int64         `json:"baseline_requests"`
	SimulatedRequests  int64         `json:"simulated_requests"`
	BaselineListCost   pricing.Money `json:"baseline_list_cost"`
	SimulatedListCost  pricing.Money `json:"simulated_list_cost"`
	BaselineNetCost    pricing.Money `json:"baseline_net_cost"`
	SimulatedNetCost   pricing.Money `json:"simulated_net_cost"`
	NetCostDifference  pricing.Money `json:"net_cost_difference"`
	ListCostDifference pricing.Money `json:"list_cost_difference"`
}

// AgreementDiff compares one agreement's figure: a commitment's burn in
// the period, a revenue share's accrual, price terms' discount, and for
// the others the list cost of the records they touched. An agreement in
// only one configuration has zero on the other side.
type AgreementDiff struct {
	Name       string        `json:"name"`
	Type       string        `json:"type"`
	Figure     string        `json:"figure"`
	Baseline   pricing.Money `json:"baseline"`
	Simulated  pricing.Money `json:"simulated"`
	Difference pricing.Money `json:"difference"`
	// Refusals are the replayed requests refused under this agreement
	// (licence, exclusivity).
	Refusals int64 `json:"refusals"`
}

// RefusalCount is the number of replayed requests refused for one reason.
type RefusalCount struct {
	Reason    string `json:"reason"`
	Agreement string `json:"agreement,omitempty"`
	Requests  int64  `json:"requests"`
}

// Replayer routes and prices recorded requests under one configuration,
// offline: every upstream is taken to answer, so each request goes to the
// first candidate. Weighted draws use a fixed seed; latency and load
// strategies, having no measurements, keep the listed order.
type Replayer struct {
	set     *contract.Set
	router  *route.Router
	catalog *pricing.Catalog
	plan    route.Plan
	req     route.Request
}

// NewReplayer compiles cfg for replay.
func NewReplayer(cfg *config.Config) (*Replayer, error) {
	catalog, err := buildCatalog(cfg)
	if err != nil {
		return nil, err
	}
	set, err := contract.Compile(cfg, nil)
	if err != nil {
		return nil, err
	}
	router, err := buildRouterWith(cfg, catalog, set, nil, rand.New(rand.NewPCG(1, 2)).Float64)
	if err != nil {
		return nil, err
	}
	return &Replayer{set: set, router: router, catalog: catalog}, nil
}

// Replay routes r as the configuration would and rewrites sim (a copy of
// r) with the provider, upstream model and cost it gives. It returns the
// routing error when the request would be refused.
func (p *Replayer) Replay(r *ledger.Record, sim *ledger.Record) error {
	*sim = *r
	p.req = route.Request{Model: r.Model, Workload: r.Workload, Key: r.Key, Team: r.Team, Now: r.Time,
		EstTokens: r.Usage.InputTokens + r.Usage.OutputTokens, EstOutputTokens: r.Usage.OutputTokens}
	if err := p.router.Plan(&p.req, &p.plan); err != nil {
		return err
	}
	c := &p.plan.Candidates[0]
	p.router.Begin(c.Provider, c.Model, p.req.EstTokens, r.Time) // capacity is used as it would have been
	p.router.End(c.Provider, c.Model)
	sim.Provider, sim.UpstreamModel = c.Provider, c.Model
	sim.UnitPrices, sim.Cost = pricing.Price{}, pricing.Money{}
	if price, ok := lookupPrice(p.catalog, c.Provider, c.Model, r.Model, r.Time); ok {
		sim.UnitPrices, sim.Cost = price, pricing.Cost(price, r.Usage)
	}
	sim.Agreements = nil // settlement finds them itself; naming them here would only cost time
	p.set.Pacer().Add(sim.Provider, sim.Time, sim.Cost)
	return nil
}

// Simulate replays the served requests of period from sc through other,
// and settles both the recording (under baseline's agreements) and the
// replay (under other's). Records before the period are history: they
// enter both books as recorded, so to-date figures start equal.
func Simulate(ctx context.Context, sc ledger.Scanner, baseline, other *config.Config, period contract.Period) (*Simulation, error) {
	base, err := contract.Compile(baseline, nil)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	rp, err := NewReplayer(other)
	if err != nil {
		return nil, fmt.Errorf("simulated configuration: %w", err)
	}
	bb := contract.NewBook(base, period, period.To)
	sb := contract.NewBook(rp.set, period, period.To)
	bStart, sStart := bb.Start(), sb.Start()
	start := bStart
	if sStart.Before(start) {
		start = sStart
	}
	sim := &Simulation{Period: period.Name}
	refusals := map[[2]string]int64{}
	var out ledger.Record
	from := period.From
	err = sc.Scan(ctx, ledger.ScanFilter{From: start, To: period.To, BillableOnly: true}, func(r *ledger.Record) error {
		if !r.Time.Before(bStart) {
			bb.Add(r)
		}
		if r.Time.Before(from) {
			if !r.Time.Before(sStart) {
				sb.Add(r)
			}
			rp.set.Pacer().Add(r.Provider, r.Time, r.Cost)
			return nil
		}
		sim.Replayed++
		if err := rp.Replay(r, &out); err != nil {
			var re *route.Error
			if !errors.As(err, &re) {
				return err
			}
			sim.Refused++
			refusals[[2]string{re.Reason.String(), re.Agreement}]++
			return nil
		}
		if out.Provider != r.Provider || out.UpstreamModel != r.UpstreamModel {
			sim.Moved++
		}
		sb.Add(&out)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("simulate %s: %w", period.Name, err)
	}
	if sim.Baseline, err = bb.Statement(); err != nil {
		return nil, err
	}
	if sim.Simulated, err = sb.Statement(); err != nil {
		return nil, err
	}
	sim.diff(base, rp.set, refusals)
	return sim, nil
}

// diff fills the comparisons from the two statements.
func (s *Simulation) diff(base, other *contract.Set, refusals map[[2]string]int64) {
	provs := map[string]*[2]contract.Usage{}
	for i, st := range []*contract.Statement{s.Baseline, s.Simulated} {
		for _, c := range st.Counterparties {
			for _, l := range c.Lines {
				u := provs[l.Provider]
				if u == nil {
					u = new([2]contract.Usage)
					provs[l.Provider] = u
				}
				u[i].Requests += l.Requests
				u[i].ListCost = u[i].ListCost.Add(l.ListCost)
				u[i].NetCost = u[i].NetCost.Add(l.NetCost)
			}
		}
	}
	s.Providers = []ProviderDiff{}
	for name, u := range provs {
		s.Providers = append(s.Providers, ProviderDiff{Provider: name,
			BaselineRequests: u[0].Requests, SimulatedRequests: u[1].Requests,
			BaselineListCost: u[0].ListCost, SimulatedListCost: u[1].ListCost,
			BaselineNetCost: u[0].NetCost, SimulatedNetCost: u[1].NetCost,
			ListCostDifference: u[1].ListCost.Sub(u[0].ListCost), NetCostDifference: u[1].NetCost.Sub(u[0].NetCost)})
	}
	slices.SortFunc(s.Providers, func(a, b ProviderDiff) int { return strings.Compare(a.Provider, b.Provider) })

	s.Agreements = []AgreementDiff{}
	index := map[string]int{}
	for i, st := range []*contract.Statement{s.Baseline, s.Simulated} {
		for name, ag := range figures(st) {
			j, ok := index[name]
			if !ok {
				j = len(s.Agreements)
				index[name] = j
				s.Agreements = append(s.Agreements, AgreementDiff{Name: name, Type: ag.typ, Figure: ag.figure})
			}
			if i == 0 {
				s.Agreements[j].Baseline = ag.value
			} else {
				s.Agreements[j].Simulated = ag.value
			}
		}
	}
	s.Refusals = []RefusalCount{}
	for k, n := range refusals {
		s.Refusals = append(s.Refusals, RefusalCount{Reason: k[0], Agreement: k[1], Requests: n})
		if j, ok := index[k[1]]; ok && k[1] != "" {
			s.Agreements[j].Refusals += n
		}
	}
	for i := range s.Agreements {
		a := &s.Agreements[i]
		a.Difference = a.Simulated.Sub(a.Baseline)
	}
	slices.SortFunc(s.Agreements, func(a, b AgreementDiff) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(s.Refusals, func(a, b RefusalCount) int {
		return strings.Compare(a.Reason+"\x00"+a.Agreement, b.Reason+"\x00"+b.Agreement)
	})
}

type figure struct {
	typ, figure string
	value       pricing.Money
}

// figures picks each agreement's headline figure from a statement.
func figures(st *contract.Statement) map[string]figure {
	out := map[string]figure{}
	for _, a := range st.Agreements {
		out[a.Name] = figure{a.Type, "touched_list_cost", a.ListCost}
	}
	for _, c := range st.Counterparties {
		for _, m := range c.Commitments {
			out[m.Name] = figure{"commitment", "burn_period", m.BurnPeriod}
		}
		for _, r := range c.RevenueShares {
			out[r.Name] = figure{"revenue_share", "accrued_period", r.AccruedPeriod}
		}
		for _, t := range c.PriceTerms {
			out[t.Name] = figure{"price_terms", "discount", t.Discount}
		}
	}
	return out
}

// Write renders the simulation as json or table.
func (s *Simulation) Write(w io.Writer, format string) error {
	if format == contract.FormatJSON {
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	if format != contract.FormatTable {
		return fmt.Errorf("unknown format %q (want json or table)", format)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	n := func(i int64) string { return strconv.FormatInt(i, 10) }
	fmt.Fprintf(tw, "Simulation of %s: %d served requests replayed, %d moved, %d refused\n\n", s.Period, s.Replayed, s.Moved, s.Refused)
	fmt.Fprintln(tw, "provider\trequests\t→\tlist cost\t→\tnet cost\t→\tΔ net\t")
	for _, p := range s.Providers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", p.Provider, n(p.BaselineRequests), n(p.SimulatedRequests),
			p.BaselineListCost, p.SimulatedListCost, p.BaselineNetCost, p.SimulatedNetCost, p.NetCostDifference)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t")
	fmt.Fprintln(tw, "agreement\ttype\tfigure\tbaseline\tsimulated\tΔ\trefusals\t")
	for _, a := range s.Agreements {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", a.Name, a.Type, a.Figure, a.Baseline, a.Simulated, a.Difference, n(a.Refusals))
	}
	if len(s.Refusals) > 0 {
		fmt.Fprintln(tw, "\t\t\t\t\t\t\t")
		fmt.Fprintln(tw, "refused for\tagreement\trequests\t")
		for _, r := range s.Refusals {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", r.Reason, r.Agreement, n(r.Requests))
		}
	}
	return tw.Flush()
}

// SimulateLedger opens the ledger ledgerCfg names and runs Simulate, for
// `multipolar simulate`.
func SimulateLedger(ctx context.Context, ledgerCfg config.Ledger, baseline, other *config.Config, period contract.Period) (*Simulation, error) {
	var sim *Simulation
	err := withScanner(ctx, ledgerCfg, "simulation", func(sc ledger.Scanner) (err error) {
		sim, err = Simulate(ctx, sc, baseline, other, period)
		return err
	})
	return sim, err
}

// Plan is the last decision Replay made, for inspection.
func (p *Replayer) Plan() *route.Plan { return &p.plan }

// Contracts is the replayed configuration's agreements.
func (p *Replayer) Contracts() *contract.Set { return p.set }
