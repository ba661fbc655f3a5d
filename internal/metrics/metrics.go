// Package metrics defines the gateway's Prometheus collectors on a registry
// of their own, so several gateways can live in one test process.
package metrics

import (
	"strconv"

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

// Request counts one finished client request.
func (m *Metrics) Request(endpoint, model, provider string, code int, seconds float64) {
	m.requests.WithLabelValues(endpoint, model, provider, status(code)).Inc()
	m.duration.WithLabelValues(endpoint, model, provider).Observe(seconds)
}

// Attempt implements proxy.Observer.
func (m *Metrics) Attempt(a *proxy.Attempt, model string) {
	m.attempts.WithLabelValues(a.Provider, model, a.Outcome.String(), status(a.Status)).Inc()
	m.attemptSeconds.WithLabelValues(a.Provider).Observe(a.Duration.Seconds())
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

var _ proxy.Observer = (*Metrics)(nil)
