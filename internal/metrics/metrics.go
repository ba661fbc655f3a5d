// Package metrics defines the gateway's Prometheus collectors on a registry
// of their own, so several gateways can live in one test process.
package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/multipolar/multipolar/internal/proxy"
)

// Metrics holds every collector. It is safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	attempts       *prometheus.CounterVec
	attemptSeconds *prometheus.HistogramVec
	streams        prometheus.Gauge
	reloads        *prometheus.CounterVec

	ledgerRecords  *prometheus.CounterVec
	ledgerCommit   prometheus.Histogram
	unpriced       *prometheus.CounterVec
	budgetRefusals *prometheus.CounterVec
	softBudgets    *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	frCall         *prometheus.CounterVec

	// Label sets are bounded (configured models and providers, statuses),
	// so these caches are too.
	requestHandles sync.Map // requestKey -> *requestHandles
	attemptHandles sync.Map // attemptKey -> *attemptHandles
}

// New registers the collectors, plus Go runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multipolar_requests_total",
			Help: "Client requests by endpoint, model, serving provider and HTTP status.",
		}, []string{"endpoint", "model", "provider", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "multipolar_request_duration_seconds",
			Help:    "Client request latency, from the first byte read to the last byte written.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"endpoint", "model", "provider"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multipolar_upstream_attempts_total",
			Help: "Upstream attempts by provider, client-facing model, outcome and upstream HTTP status (0 when none arrived).",
		}, []string{"provider", "model", "outcome", "status"}),
		attemptSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "multipolar_upstream_first_byte_seconds",
			Help:    "Time from sending an upstream attempt to its response headers (or failure).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"provider"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "multipolar_streams_in_flight",
			Help: "Streamed responses currently open.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "multipolar_config_reloads_total",
			Help: "Configuration reloads by result (ok or error).",
		}, []string{"result"}),
	}
	m.ledgerRecords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "multipolar_ledger_records_total",
		Help: "Usage records by fate: committed, dropped (queue full) or failed (store error after retries).",
	}, []string{"result"})
	m.ledgerCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "multipolar_ledger_commit_seconds",
		Help:    "Time to commit one batch of usage records.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	m.unpriced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "multipolar_unpriced_requests_total",
		Help: "Served attempts with no price in the catalog for their provider and model (costed at zero).",
	}, []string{"provider", "model"})
	m.budgetRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "multipolar_budget_refusals_total",
		Help: "Requests refused because a hard budget was exhausted, by budget.",
	}, []string{"budget"})
	m.softBudgets = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "multipolar_budget_soft_exceeded_total",
		Help: "Requests served over a soft budget, by budget (an alert signal).",
	}, []string{"budget"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "multipolar_rate_limited_total",
		Help: "Requests refused by a rate limit, by limit.",
	}, []string{"limit"})
	m.frCall = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "multipolar_first_refusal_call_refusals_total",
		Help: "Times a first-refusal holder, offered the request first, refused it at call time (capacity, circuit, 429, 5xx, timeout), by agreement and reason.",
	}, []string{"agreement", "reason"})
	reg.MustRegister(m.ledgerRecords, m.ledgerCommit, m.unpriced, m.budgetRefusals, m.softBudgets, m.rateLimited, m.frCall)
	reg.MustRegister(m.requests, m.duration, m.attempts, m.attemptSeconds, m.streams, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var statusText [600]string

func init() {
	for i := range statusText {
		statusText[i] = strconv.Itoa(i)
	}
}

func status(code int) string {
	if code >= 0 && code < len(statusText) {
		return statusText[code]
	}
	return strconv.Itoa(code)
}

// requestKey and attemptKey find a label set's collectors without hashing
// label values on every request, which WithLabelValues does.
type requestKey struct {
	endpoint, model, provider string
	code                      int
}

type requestHandles struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

type attemptKey struct {
	provider, model string
	outcome         proxy.Outcome
	code            int
}

type attemptHandles struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// Request counts one finished client request.
func (m *Metrics) Request(endpoint, model, provider string, code int, seconds float64) {
	k := requestKey{endpoint, model, provider, code}
	h, ok := m.requestHandles.Load(k)
	if !ok {
		h, _ = m.requestHandles.LoadOrStore(k, &requestHandles{
			count:    m.requests.WithLabelValues(endpoint, model, provider, status(code)),
			duration: m.duration.WithLabelValues(endpoint, model, provider),
		})
	}
	rh := h.(*requestHandles)
	rh.count.Inc()
	rh.duration.Observe(seconds)
}

// Attempt implements proxy.Observer.
func (m *Metrics) Attempt(a *proxy.Attempt, model string) {
	k := attemptKey{a.Provider, model, a.Outcome, a.Status}
	h, ok := m.attemptHandles.Load(k)
	if !ok {
		h, _ = m.attemptHandles.LoadOrStore(k, &attemptHandles{
			count:    m.attempts.WithLabelValues(a.Provider, model, a.Outcome.String(), status(a.Status)),
			duration: m.attemptSeconds.WithLabelValues(a.Provider),
		})
	}
	ah := h.(*attemptHandles)
	ah.count.Inc()
	ah.duration.Observe(a.Duration.Seconds())
}

// StreamOpen implements proxy.Observer.
func (m *Metrics) StreamOpen(delta int) { m.streams.Add(float64(delta)) }

// Reload counts a configuration reload.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
	} else {
		m.reloads.WithLabelValues("error").Inc()
	}
}

// LedgerDropped counts a usage record dropped by the queue's overflow policy.
func (m *Metrics) LedgerDropped() { m.ledgerRecords.WithLabelValues("dropped").Inc() }

// LedgerCommitted counts a committed batch.
func (m *Metrics) LedgerCommitted(n int, elapsed time.Duration) {
	m.ledgerRecords.WithLabelValues("committed").Add(float64(n))
	m.ledgerCommit.Observe(elapsed.Seconds())
}

// LedgerFailed counts records the store did not take.
func (m *Metrics) LedgerFailed(n int) { m.ledgerRecords.WithLabelValues("failed").Add(float64(n)) }

// Unpriced counts an attempt with no price.
func (m *Metrics) Unpriced(provider, model string) { m.unpriced.WithLabelValues(provider, model).Inc() }

// BudgetRefused counts a refusal by a hard budget.
func (m *Metrics) BudgetRefused(name string) { m.budgetRefusals.WithLabelValues(name).Inc() }

// SoftBudgetExceeded counts a request served over a soft budget.
func (m *Metrics) SoftBudgetExceeded(name string) { m.softBudgets.WithLabelValues(name).Inc() }

// RateLimited counts a refusal by a rate limit.
func (m *Metrics) RateLimited(limit string) { m.rateLimited.WithLabelValues(limit).Inc() }

// FirstRefusalCallRefusal counts a holder refusing at call time.
func (m *Metrics) FirstRefusalCallRefusal(agreement, reason string) {
	m.frCall.WithLabelValues(agreement, reason).Inc()
}

// AgreementStat is one first-refusal agreement's decision counters.
type AgreementStat struct {
	Agreement, Holder string
	Offers            uint64
	Refusals          map[string]uint64
}

// WatchFirstRefusal exports routing's first-refusal decision counters,
// read at scrape time: multipolar_first_refusal_offers_total{agreement,holder}
// and multipolar_first_refusal_refusals_total{agreement,holder,reason}.
func (m *Metrics) WatchFirstRefusal(read func() []AgreementStat) {
	m.Registry.MustRegister(firstRefusalCollector{read: read})
}

var (
	frOffersDesc   = prometheus.NewDesc("multipolar_first_refusal_offers_total", "Routing decisions in which a first-refusal holder was offered the request first.", []string{"agreement", "holder"}, nil)
	frRefusalsDesc = prometheus.NewDesc("multipolar_first_refusal_refusals_total", "Routing decisions in which a first-refusal holder was passed over, by reason.", []string{"agreement", "holder", "reason"}, nil)
)

type firstRefusalCollector struct{ read func() []AgreementStat }

func (c firstRefusalCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- frOffersDesc
	ch <- frRefusalsDesc
}

func (c firstRefusalCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.read() {
		ch <- prometheus.MustNewConstMetric(frOffersDesc, prometheus.CounterValue, float64(a.Offers), a.Agreement, a.Holder)
		for reason, n := range a.Refusals {
			ch <- prometheus.MustNewConstMetric(frRefusalsDesc, prometheus.CounterValue, float64(n), a.Agreement, a.Holder, reason)
		}
	}
}

var _ proxy.Observer = (*Metrics)(nil)
