// Package server wires the gateway together: the HTTP server, the compiled
// configuration snapshot, authentication, the OpenAI ingress, the forwarding
// engine, metrics, the request log, reload and graceful shutdown.
package server

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multipolar/multipolar/internal/admin"
	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/ledger"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/metrics"
	"github.com/multipolar/multipolar/internal/proxy"
)

// Options configure a Server.
type Options struct {
	// Config is the initial configuration, already loaded and validated.
	Config *config.Config
	// Load reads the configuration again for a reload. When nil, reloads
	// are refused.
	Load func() (*config.Config, error)
	// Logger receives the request log and lifecycle messages.
	Logger *slog.Logger
	// Version is reported by `multipolar version` and in the startup log.
	Version string
	// LogLevel, when not nil, is set from log.level on every reload.
	LogLevel *slog.LevelVar
	// Now is the clock routing decisions use (agreement windows, capacity
	// minutes, breaker cool-downs); nil means time.Now. Tests inject it.
	Now func() time.Time
}

// The ledger, the limits store and their drivers are opened once, from the
// first configuration: a reload changes keys, budgets and prices, not where
// they are kept.

// Server is the gateway. It is safe for concurrent use.
type Server struct {
	snap     atomic.Pointer[snapshot]
	load     func() (*config.Config, error)
	log      *slog.Logger
	logLevel *slog.LevelVar
	metrics  *metrics.Metrics
	engine   proxy.Engine
	handler  http.Handler
	draining atomic.Bool
	reloadMu sync.Mutex

	idPrefix string
	idSeq    atomic.Uint64

	now func() time.Time
	// clocked: Options.Now was given, so records are stamped by it too
	// (their agreements' windows must agree with routing's).
	clocked    bool
	store      ledgerStore
	keyStore   admin.KeyStore
	writer     *ledger.Writer
	syncLedger bool
	limits     *limits
	// commitments are the commitment burn-down gauges.
	commitments *commitmentGauges
	closeOnce   sync.Once
	closeErr    error
}

// New compiles opts.Config and returns a Server ready to Serve.
func New(opts Options) (*Server, error) {
	if opts.Config == nil {
		return nil, errors.New("server: no configuration")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{load: opts.Load, log: log, logLevel: opts.LogLevel, metrics: metrics.New(), now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	} else {
		s.clocked = true
	}
	s.engine.Observer = s.metrics
	ctx := context.Background()
	var err error
	if s.limits, err = openLimits(ctx, opts.Config.Limits); err != nil {
		return nil, err
	}
	if s.store, err = OpenLedger(ctx, opts.Config.Ledger); err != nil {
		_ = s.limits.close()
		return nil, err
	}
	s.keyStore, _ = s.store.(admin.KeyStore) // nil with ledger driver none
	snap, err := buildSnapshot(opts.Config, s.keyStore, nil)
	if err == nil && opts.Config.Ledger.Driver != "none" {
		s.writer, err = newWriter(opts.Config.Ledger, s.store, s.metrics, log)
	}
	if err != nil {
		_ = s.store.Close()
		_ = s.limits.close()
		return nil, err
	}
	s.snap.Store(snap)
	s.syncLedger = opts.Config.Ledger.Durability == "sync"
	s.metrics.WatchFirstRefusal(func() []metrics.AgreementStat {
		st := s.snap.Load().router.Stats()
		out := make([]metrics.AgreementStat, 0, len(st.Agreements))
		for _, a := range st.Agreements {
			as := metrics.AgreementStat{Agreement: a.Name, Holder: a.Holder, Offers: a.Offers, Refusals: map[string]uint64{}}
			for r, n := range a.Refusals {
				as.Refusals[r.String()] = n
			}
			out = append(out, as)
		}
		return out
	})
	s.commitments = newCommitmentGauges(s.metrics.Registry)
	var rb [6]byte
	_, _ = crand.Read(rb[:])
	s.idPrefix = "req_" + hex.EncodeToString(rb[:])
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Reload loads the configuration again and swaps it in atomically. On any
// error the running configuration stays and the error says why.
func (s *Server) Reload() (*config.Config, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.load == nil {
		return nil, errors.New("reload is not available: no configuration file")
	}
	cfg, err := s.load()
	if err == nil {
		var snap *snapshot
		if snap, err = buildSnapshot(cfg, s.keyStore, s.snap.Load()); err == nil {
			old := s.snap.Swap(snap)
			old.close()
			if old.cfg.Listen != cfg.Listen {
				s.log.Warn("listen address changes only on restart", "running", old.cfg.Listen, "configured", cfg.Listen)
			}
			if s.logLevel != nil {
				s.logLevel.Set(cfg.Log.SlogLevel())
			}
			s.metrics.Reload(true)
			s.log.Info("configuration reloaded", "summary", cfg.Summary())
			return cfg, nil
		}
	}
	s.metrics.Reload(false)
	s.log.Error("configuration reload failed; the previous configuration stays in force", "error", err.Error())
	return nil, err
}

// Config returns the configuration in force.
func (s *Server) Config() *config.Config { return s.snap.Load().cfg }

// newRequestID returns an id unique to this process run and, by its random
// prefix, across replicas and restarts.
// idSeqWidth base-36 digits hold every uint64.
const idSeqWidth = 13

const base36 = "0123456789abcdefghijklmnopqrstuvwxyz"

func (s *Server) newRequestID() string {
	n := s.idSeq.Add(1)
	var b [40]byte
	out := append(b[:0], s.idPrefix...)
	out = append(out, '_')
	// Fixed width, so a process's ids sort in the order it makes them: the
	// ledger's primary-key index then grows at its end instead of
	// splitting pages (about 15% of an SQLite insert).
	var digits [idSeqWidth]byte
	for i := len(digits) - 1; i >= 0; i-- {
		digits[i] = base36[n%36]
		n /= 36
	}
	out = append(out, digits[:]...)
	return string(out)
}

// Serve accepts connections on ln until ctx ends, then stops accepting,
// lets in-flight requests and streams finish within the drain timeout, and
// returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	cfg := s.Config()
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
		IdleTimeout:       cfg.Server.IdleTimeout.D(),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// No WriteTimeout: streams may legitimately run for minutes; the
		// upstream's own timeouts bound them.
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	pctx, stopPacing := context.WithCancel(ctx)
	defer stopPacing()
	go s.paceLoop(pctx)
	s.log.Info("multipolar serving", "addr", ln.Addr().String(), "summary", cfg.Summary())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	drain := s.Config().Server.DrainTimeout.D()
	s.log.Info("shutting down: draining in-flight requests", "timeout", drain.String())
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		s.log.Warn("drain timeout reached; closing remaining connections", "error", err.Error())
		_ = hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	s.snap.Load().close()
	// Every request has been answered: drain the ledger queue completely.
	if err := s.Close(); err != nil {
		return err
	}
	s.log.Info("shutdown complete")
	return nil
}

// Close drains the ledger queue into the store and releases the store and
// the limits connection. Serve calls it after the drain; call it yourself
// only for a Server that never served. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var werr error
		if s.writer != nil {
			if werr = s.writer.Close(ctx); werr != nil {
				s.log.Error("ledger drain incomplete", "error", werr.Error())
			}
		}
		s.closeErr = errors.Join(werr, s.store.Close(), s.limits.close())
	})
	return s.closeErr
}

// logRequest writes the one log line of a request.
func (s *Server) logRequest(ctx context.Context, rl *requestLog) {
	level := slog.LevelInfo
	if rl.status >= 500 {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", rl.id),
		slog.String("method", rl.method),
		slog.String("path", rl.path),
		slog.Int("status", rl.status),
		slog.String("key", rl.key),
		slog.String("model", rl.model),
		slog.String("provider", rl.provider),
		slog.Int("attempts", rl.attempts),
		slog.Bool("stream", rl.stream),
		slog.Int64("bytes", rl.bytes),
		slog.Float64("duration_ms", float64(rl.duration.Microseconds())/1000),
		slog.Int64("input_tokens", rl.usage.InputTokens),
		slog.Int64("output_tokens", rl.usage.OutputTokens),
		slog.Int64("cached_tokens", rl.usage.CachedTokens),
		slog.Bool("usage_estimated", rl.usageEstimated),
		slog.String("error", rl.err),
	}
	n := len(attrs)
	if rl.err == "" {
		n--
	}
	s.log.LogAttrs(ctx, level, "request", attrs[:n]...)
}

type requestLog struct {
	id, method, path, key, model, provider, err string
	status, attempts                            int
	workload                                    string
	stream, usageEstimated                      bool
	bytes                                       int64
	duration                                    time.Duration
	usage                                       llm.Usage
}
