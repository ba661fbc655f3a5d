package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/pricing"
	"github.com/multipolar/multipolar/internal/proxy"
	"github.com/multipolar/multipolar/internal/store/postgres"
	"github.com/multipolar/multipolar/internal/store/sqlite"
)

// ledgerStore is what the server needs from a store: it records usage and
// answers usage reports.
type ledgerStore interface {
	ledger.Recorder
	Usage(ctx context.Context, q ledger.Query) ([]ledger.Row, ledger.Row, error)
	Close() error
}

// noLedger is the store of `ledger: {driver: none}`: records go nowhere.
type noLedger struct{}

func (noLedger) Record(context.Context, []ledger.Record) error { return nil }
func (noLedger) Usage(context.Context, ledger.Query) ([]ledger.Row, ledger.Row, error) {
	return nil, ledger.Row{Cost: pricing.Money{}, BillableCost: pricing.Money{}}, nil
}
func (noLedger) Close() error { return nil }

// OpenLedger opens the store a configuration names. The caller closes it.
func OpenLedger(ctx context.Context, c config.Ledger) (ledgerStore, error) {
	switch c.Driver {
	case "none":
		return noLedger{}, nil
	case "postgres":
		s, err := postgres.Open(ctx, postgres.Options{DSN: c.DSN.Value()})
		if err != nil {
			return nil, fmt.Errorf("open postgres ledger: %w", err)
		}
		return s, nil
	default:
		s, err := sqlite.Open(ctx, sqlite.Options{Path: c.Path})
		if err != nil {
			return nil, fmt.Errorf("open sqlite ledger %s: %w", c.Path, err)
		}
		return s, nil
	}
}

// newWriter starts the ledger's batching writer, with its events counted
// and lost records logged.
func newWriter(c config.Ledger, store ledger.Recorder, m meteringMetrics, log *slog.Logger) (*ledger.Writer, error) {
	overflow := ledger.OverflowBlock
	if c.Overflow == "drop" {
		overflow = ledger.OverflowDrop
	}
	committers := 1
	if c.Driver == "postgres" {
		committers = 2 // one backend per connection: use both cores
	}
	return ledger.NewWriter(ledger.WriterOptions{
		Recorder:   store,
		QueueSize:  c.QueueSize,
		Overflow:   overflow,
		Committers: committers,
		// A commit's fixed cost is paid per batch: the
		// writer benchmark stores batches of 100 (50ms at 2,000 req/s)
		// at 10-14 µs a record and batches of 2,000 at under 6. SQLite
		// takes its batches in pieces (ledger.Batcher), so a long batch
		// does not mean a long burst of inserts at its commit.
		FlushInterval: c.FlushInterval.D(),
		BatchSize:     c.BatchSize,
		Hooks: ledger.Hooks{
			Dropped: func(rec ledger.Record) {
				m.LedgerDropped()
				log.Error("ledger queue full: usage record dropped", "request_id", rec.RequestID, "attempt", rec.Attempt)
			},
			Committed: func(n int, elapsed time.Duration) { m.LedgerCommitted(n, elapsed) },
			Failed: func(recs []ledger.Record, err error) {
				m.LedgerFailed(len(recs))
				for i := range recs {
					log.Error("usage record not stored", "request_id", recs[i].RequestID, "attempt", recs[i].Attempt, "error", err.Error())
				}
			},
		},
	})
}

// meteringMetrics are the ledger's counters (implemented by metrics.Metrics).
type meteringMetrics interface {
	LedgerDropped()
	LedgerCommitted(n int, elapsed time.Duration)
	LedgerFailed(n int)
	Unpriced(provider, model string)
}

// buildCatalog is the built-in catalog with the configuration's prices on
// top.
func buildCatalog(cfg *config.Config) (*pricing.Catalog, error) {
	entries := make([]pricing.Entry, 0, len(cfg.Prices))
	for i, p := range cfg.Prices {
		var (
			e   = pricing.Entry{Provider: p.Provider, Model: p.Model, Price: pricing.Price{From: p.From.Time}}
			err error
		)
		for _, f := range [...]struct {
			dst *pricing.Money
			src config.Decimal
		}{{&e.Price.Input, p.Input}, {&e.Price.Output, p.Output}, {&e.Price.CachedInput, p.CachedInput}, {&e.Price.CacheWrite, p.CacheWrite}} {
			if *f.dst, err = pricing.ParseMoney(string(f.src)); err != nil {
				return nil, fmt.Errorf("prices[%d]: %w", i, err)
			}
		}
		entries = append(entries, e)
	}
	return pricing.Builtin().With(entries), nil
}

// usageRecords turns a finished request into its ledger records: one per
// upstream attempt, the served one billable, or one record for a request
// refused before any attempt.
func (s *Server) usageRecords(snap *snapshot, rl *requestLog, key *keyEntry, decision string, start time.Time, res *proxy.Result) []ledger.Record {
	base := ledger.Record{
		RequestID: rl.id, Time: start, Key: key.name, Team: key.team, Workload: rl.workload,
		Model: rl.model, Stream: rl.stream, Route: routeJSON(decision, res.Attempts),
	}
	if len(res.Attempts) == 0 {
		r := base
		r.Status, r.Outcome, r.LatencyMs = rl.status, "refused", rl.duration.Milliseconds()
		return []ledger.Record{r}
	}
	recs := make([]ledger.Record, len(res.Attempts))
	at := start
	for i := range res.Attempts {
		a := &res.Attempts[i]
		r := base
		r.Attempt, r.Time = i, at
		r.Provider, r.UpstreamModel = a.Provider, a.Model
		r.Status, r.Outcome, r.LatencyMs = a.Status, a.Outcome.String(), a.Duration.Milliseconds()
		if a.Outcome == proxy.Served && a.Provider == res.Provider {
			r.Status = res.Status
			r.LatencyMs = rl.duration.Milliseconds() - at.Sub(start).Milliseconds()
			if res.Metered {
				r.Usage = toPricingUsage(res.Usage)
				r.Estimated = res.UsageEstimated
			}
			// A 2xx answer was produced, streamed or cut: it is billed for
			// what was produced.
			r.Billable = a.Status >= 200 && a.Status < 300
			if r.Billable {
				r.Outcome = "ok"
				if res.Err != nil {
					r.Outcome = res.Err.Kind.String()
				}
			}
			r.UnitPrices, r.Cost = s.price(snap, a.Provider, a.Model, rl.model, at, r.Usage)
		}
		recs[i] = r
		at = at.Add(a.Duration)
	}
	return recs
}

// price finds the price in force at the attempt's time, by the upstream's
// model name first and the client-facing one second, and computes the cost.
func (s *Server) price(snap *snapshot, provider, upstreamModel, model string, at time.Time, u pricing.Usage) (pricing.Price, pricing.Money) {
	p, ok := lookupPrice(snap.catalog, provider, upstreamModel, model, at)
	if !ok {
		s.metrics.Unpriced(provider, model)
		return pricing.Price{}, pricing.Money{}
	}
	return p, pricing.Cost(p, u)
}

// lookupPrice finds a provider's price in force at at, by the upstream's
// model name first and the client-facing one second.
func lookupPrice(c *pricing.Catalog, provider, upstreamModel, model string, at time.Time) (pricing.Price, bool) {
	if p, ok := c.Lookup(provider, upstreamModel, at); ok {
		return p, true
	}
	return c.Lookup(provider, model, at)
}

func toPricingUsage(u llm.Usage) pricing.Usage {
	return pricing.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedTokens: u.CachedTokens,
		CacheWriteTokens: u.CacheWriteTokens, ReasoningTokens: u.ReasoningTokens}
}

// routeJSON records the route decision: the plan (every provider passed
// over with its reason, then the candidates, as in x-multipolar-route) and
// each attempt:
// {"decision":"a=refused:capacity_exhausted(first_refusal:x);b=candidate",
// "attempts":[{"provider":"b","model":"m","outcome":"served","status":200}]}.
func routeJSON(decision string, attempts []proxy.Attempt) string {
	var buf [256]byte // one attempt's route fits: only the string is allocated
	b := append(buf[:0], `{"decision":`...)
	b = llm.AppendJSONString(b, decision)
	b = append(b, `,"attempts":[`...)
	for i := range attempts {
		a := &attempts[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"provider":`...)
		b = llm.AppendJSONString(b, a.Provider)
		b = append(b, `,"model":`...)
		b = llm.AppendJSONString(b, a.Model)
		b = append(b, `,"outcome":"`...)
		b = append(b, a.Outcome.String()...)
		if a.Refusal != "" {
			b = append(b, `","reason":"`...)
			b = append(b, a.Refusal...)
		}
		b = append(b, `","status":`...)
		b = strconv.AppendInt(b, int64(a.Status), 10)
		b = append(b, '}')
	}
	return string(append(b, "]}"...))
}

// recordUsage hands the request's records to the ledger writer. In sync
// durability it waits for their group commit, so the response ends only
// once they are stored.
func (s *Server) recordUsage(ctx context.Context, recs []ledger.Record) {
	if s.writer == nil {
		return
	}
	if !s.syncLedger {
		for i := range recs {
			if err := s.writer.Submit(recs[i]); err != nil && !errors.Is(err, ledger.ErrQueueFull) {
				s.log.Error("ledger submit failed", "request_id", recs[i].RequestID, "error", err.Error())
			}
		}
		return
	}
	// The client may have gone; the record must still be written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for i := range recs {
		if err := s.writer.SubmitSync(ctx, recs[i]); err != nil {
			s.log.Error("ledger commit failed", "request_id", recs[i].RequestID, "error", err.Error())
		}
	}
}
