package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/multipolar/multipolar/internal/admin"
	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/budget"
	"github.com/multipolar/multipolar/internal/config"
	inganthropic "github.com/multipolar/multipolar/internal/ingress/anthropic"
	ingopenai "github.com/multipolar/multipolar/internal/ingress/openai"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/pricing"
	provanthropic "github.com/multipolar/multipolar/internal/provider/anthropic"
	"github.com/multipolar/multipolar/internal/proxy"
)

var (
	noProvider = []string{"none"}
	headerJSON = []string{"application/json"}
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	metricsHandler := promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", metricsHandler)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
		if s.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "draining\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("POST /admin/reload", s.admin(s.handleReload))
	mux.HandleFunc("GET /admin/usage", s.admin(s.handleUsage))
	mux.HandleFunc("GET /admin/settlement", s.admin(s.handleSettlement))
	mux.HandleFunc("POST /admin/route/explain", s.admin(s.handleExplain))
	if s.keyStore != nil {
		keys := &admin.Handler{Store: s.keyStore, Validate: s.validateAdminKey, Logger: s.log,
			OnChange: func() { s.snap.Load().dynamic.forget() }}
		mux.Handle("/admin/keys", s.admin(keys.ServeHTTP))
		mux.Handle("/admin/keys/", s.admin(keys.ServeHTTP))
	}
	mux.HandleFunc("/admin/", s.admin(func(w http.ResponseWriter, _ *http.Request) {
		writeAdminJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"message": "no such admin endpoint"}})
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Request-Id"] = []string{s.newRequestID()}
		w.Header()["X-Multipolar-Provider"] = noProvider
		ingopenai.WriteError(w, apierr.New(apierr.NotFound, "Invalid URL (%s %s)", r.Method, r.URL.Path).WithCode("unknown_url"))
	})
	chat := s.llmHandler(&openaiChat)
	embed := s.llmHandler(&openaiEmbeddings)
	messages := s.llmHandler(&anthropicMessages)
	countTokens := s.llmHandler(&anthropicCountTokens)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The two hot endpoints skip the mux's pattern matching.
		if r.Method == http.MethodPost {
			switch r.URL.Path {
			case "/v1/chat/completions", "/chat/completions":
				chat(w, r)
				return
			case "/v1/embeddings", "/embeddings":
				embed(w, r)
				return
			case "/v1/messages":
				messages(w, r)
				return
			case "/v1/messages/count_tokens":
				countTokens(w, r)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// authenticate finds the virtual key for a client's token: a configured
// key, or one created through the admin API.
func (snap *snapshot) authenticate(ctx context.Context, tok string) (*keyEntry, *apierr.Error) {
	if tok == "" {
		return nil, apierr.New(apierr.Unauthorized, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).").WithCode("missing_api_key")
	}
	h := hashSecret(tok)
	// The map is keyed by the SHA-256 of the secret, never the secret, and
	// the final comparison is constant-time; a timing difference can only
	// reveal hash prefixes, which say nothing about any key.
	ke := snap.keys[h]
	if ke == nil {
		var err error
		if ke, err = snap.dynamic.lookup(ctx, h, time.Now()); err != nil {
			return nil, apierr.Wrap(apierr.UpstreamUnavailable, err, "the key store is unavailable")
		}
	}
	if ke == nil || subtle.ConstantTimeCompare(ke.hash[:], h[:]) != 1 {
		return nil, apierr.New(apierr.Unauthorized, "Incorrect API key provided. Check the key given to you for this gateway.")
	}
	return ke, nil
}

func bearer(h string) (string, bool) {
	const p = "Bearer "
	if len(h) < len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

// readBody reads the whole request body, refusing more than limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apierr.Error) {
	tooLarge := func() *apierr.Error {
		return apierr.New(apierr.TooLarge, "the request body is larger than this gateway's limit of %d bytes", limit)
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	var (
		body []byte
		err  error
	)
	if r.ContentLength >= 0 {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, apierr.Wrap(apierr.BadRequest, err, "could not read the request body")
	}
	if len(body) == 0 {
		return nil, apierr.New(apierr.BadRequest, "the request body is empty; send a JSON object")
	}
	return body, nil
}

// ingress describes one client-facing endpoint: how its clients present a
// key, how its body is read and decoded, and how its errors look.
type ingress struct {
	endpoint string
	op       llm.Op
	api      proxy.API
	// token extracts the client's key from the request.
	token func(r *http.Request) (string, bool)
	// sniff checks the body and returns the raw request and the encoder
	// for answers to it.
	sniff func(op llm.Op, body []byte) (llm.RawRequest, proxy.Ingress, error)
	// decode builds the canonical request for translation; nil when the
	// endpoint has no translation (only providers of its own API serve it).
	decode     func(body []byte) (*llm.Request, error)
	writeError func(w http.ResponseWriter, e *apierr.Error)
}

func sniffOpenAI(op llm.Op, body []byte) (llm.RawRequest, proxy.Ingress, error) {
	sn, err := ingopenai.Sniff(body)
	if err != nil {
		return llm.RawRequest{}, nil, err
	}
	return sn.Raw(op, body), ingopenai.Translator{IncludeUsage: sn.IncludeUsage}, nil
}

func sniffAnthropic(op llm.Op, body []byte) (llm.RawRequest, proxy.Ingress, error) {
	sn, err := inganthropic.Sniff(body)
	if err != nil {
		return llm.RawRequest{}, nil, err
	}
	raw := sn.Raw(body)
	raw.Op = op
	return raw, inganthropic.Translator{}, nil
}

// anthropicToken accepts x-api-key, as Anthropic's SDKs send it, or a
// bearer token, as OAuth clients do.
func anthropicToken(r *http.Request) (string, bool) {
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return strings.TrimSpace(k), true
	}
	return bearer(r.Header.Get("Authorization"))
}

func openaiToken(r *http.Request) (string, bool) { return bearer(r.Header.Get("Authorization")) }

var (
	openaiChat = ingress{endpoint: "chat", op: llm.OpChat, api: proxy.APIOpenAI, token: openaiToken,
		sniff: sniffOpenAI, decode: ingopenai.DecodeChat, writeError: ingopenai.WriteError}
	openaiEmbeddings = ingress{endpoint: "embeddings", op: llm.OpEmbeddings, api: proxy.APIOpenAI, token: openaiToken,
		sniff: sniffOpenAI, writeError: ingopenai.WriteError}
	anthropicMessages = ingress{endpoint: "messages", op: llm.OpChat, api: proxy.APIAnthropic, token: anthropicToken,
		sniff: sniffAnthropic, decode: inganthropic.DecodeMessages, writeError: inganthropic.WriteError}
	anthropicCountTokens = ingress{endpoint: "count_tokens", op: llm.OpCountTokens, api: proxy.APIAnthropic, token: anthropicToken,
		sniff: sniffAnthropic, writeError: inganthropic.WriteError}
)

func (s *Server) llmHandler(in *ingress) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		snap := s.snap.Load()
		rl := requestLog{id: s.newRequestID(), method: r.Method, path: r.URL.Path}
		h := w.Header()
		h["X-Request-Id"] = []string{rl.id}
		h["X-Multipolar-Provider"] = noProvider

		var (
			res proxy.Result
			st  requestState
		)
		if e := s.prepareAndForward(r.Context(), w, r, snap, in, &rl, &st, &res); e != nil {
			rl.status = e.Kind.Status()
			rl.err = e.Error()
			in.writeError(w, e)
		} else {
			rl.status, rl.provider, rl.stream, rl.bytes = res.Status, res.Provider, res.Stream, res.Bytes
			rl.attempts = len(res.Attempts)
			rl.usage, rl.usageEstimated = res.Usage, res.UsageEstimated
			if res.Err != nil {
				rl.err = res.Err.Error()
			}
		}
		rl.duration = time.Since(start)
		if st.key != nil && in.op != llm.OpCountTokens {
			stamp := start
			if s.clocked {
				stamp = s.now()
			}
			s.account(r.Context(), snap, &rl, &st, stamp, &res)
		}
		provider := rl.provider
		if provider == "" {
			provider = "none"
		}
		s.metrics.Request(in.endpoint, metricModel(snap, rl.model), provider, rl.status, rl.duration.Seconds())
		s.logRequest(r.Context(), &rl)
	}
}

// requestState is what accounting needs to know about a request once it
// has been answered.
type requestState struct {
	key         *keyEntry
	model       *modelEntry
	raw         llm.RawRequest
	reservation *budget.Reservation
	// decision is the routing plan as x-multipolar-route spells it, kept
	// for the ledger (the pooled plan is reused once the answer is out).
	decision string
}

// account writes the request's usage records and settles its budget
// reservation and rate-limit estimate.
func (s *Server) account(ctx context.Context, snap *snapshot, rl *requestLog, st *requestState, start time.Time, res *proxy.Result) {
	settle := st.model != nil && (st.reservation != nil || len(st.key.limits) > 0)
	if s.writer == nil && !settle {
		return // no ledger, no budgets, no limits: nothing to account
	}
	recs := s.usageRecords(snap, rl, st.key, st.decision, start, res)
	snap.applyContracts(recs)
	var (
		cost   pricing.Money
		billed bool
		tokens int64
	)
	for i := range recs {
		if recs[i].Billable {
			cost, billed = recs[i].Cost, true
			tokens = recs[i].Usage.InputTokens + recs[i].Usage.OutputTokens
		}
	}
	if settle {
		s.settle(ctx, st.key, st.model, &st.raw, st.reservation, cost, tokens, billed, time.Now())
	}
	s.recordUsage(ctx, recs)
}

// metricModel keeps unknown model names out of metric labels, so a client
// cannot grow the label set without bound.
func metricModel(snap *snapshot, m string) string {
	if _, ok := snap.models[m]; ok {
		return m
	}
	return "unknown"
}

// workloadHeader names the request's workload; the key's default applies
// without it.
const workloadHeader = "X-Multipolar-Workload"

// prepareAndForward authenticates, reads and checks the request, admits it
// against rate limits and budgets, then hands it to the engine. An error
// returned here has not been written yet.
func (s *Server) prepareAndForward(ctx context.Context, w http.ResponseWriter, r *http.Request, snap *snapshot, in *ingress, rl *requestLog, st *requestState, res *proxy.Result) *apierr.Error {
	tok, _ := in.token(r)
	key, e := snap.authenticate(ctx, tok)
	if e != nil {
		return e
	}
	now := time.Now()
	if !key.expires.IsZero() && !now.Before(key.expires) {
		return apierr.New(apierr.Unauthorized, "The key %q expired at %s.", key.name, key.expires.UTC().Format(time.RFC3339)).WithCode("expired_api_key")
	}
	rl.key = key.name
	rl.workload = r.Header.Get(workloadHeader)
	if rl.workload == "" {
		rl.workload = key.workload
	}
	body, e := readBody(w, r, snap.maxBody)
	if e != nil {
		return e
	}
	raw, enc, err := in.sniff(in.op, body)
	if err != nil {
		return apierr.From(err)
	}
	rl.model = raw.Model
	m := snap.models[raw.Model]
	if m == nil {
		return apierr.New(apierr.NotFound, "The model `%s` does not exist on this gateway.", raw.Model).WithParam("model")
	}
	if !key.allowed[raw.Model] {
		return apierr.New(apierr.Forbidden, "The key %q is not allowed to use the model `%s`.", key.name, raw.Model).WithParam("model")
	}
	// From here on the request is the key's: it is accounted, refused or not.
	st.key, st.model, st.raw = key, m, raw
	rt := routingPool.Get().(*routing)
	defer routingPool.Put(rt)
	pe := s.plan(snap, m, &raw, rl.workload, key, rt)
	if s.writer != nil {
		// Refusals included: a request no provider may take is recorded
		// with the reasons each was passed over.
		rt.header = rt.plan.AppendHeader(rt.header[:0])
		st.decision = string(rt.header)
	}
	if pe != nil {
		return pe
	}
	if in.op != llm.OpCountTokens {
		if st.reservation, e = s.admit(ctx, w, snap, key, m, rt.targets, &st.raw, rl.id, now); e != nil {
			return e
		}
	}
	call := proxy.Call{Raw: raw, API: in.api, Ingress: enc, Decode: in.decode, HoldEnd: s.syncLedger,
		Gate: &rt.gate, RouteHeader: rt.header, Retry: snap.retry}
	if in.api == proxy.APIAnthropic {
		if beta := r.Header.Get("Anthropic-Beta"); beta != "" {
			ctx = provanthropic.ContextWithBeta(ctx, beta)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, snap.reqTimeout)
	defer cancel()
	s.engine.Forward(ctx, w, &call, rt.targets, res)
	return nil
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	snap := s.snap.Load()
	h := w.Header()
	h["X-Request-Id"] = []string{s.newRequestID()}
	h["X-Multipolar-Provider"] = noProvider
	// Anthropic's SDKs send anthropic-version (and x-api-key); they get
	// Anthropic's list shape and error schema.
	anthropic := r.Header.Get("Anthropic-Version") != "" || r.Header.Get("X-Api-Key") != ""
	var tok string
	if anthropic {
		tok, _ = anthropicToken(r)
	} else {
		tok, _ = openaiToken(r)
	}
	key, e := snap.authenticate(r.Context(), tok)
	if e != nil {
		if anthropic {
			inganthropic.WriteError(w, e)
		} else {
			ingopenai.WriteError(w, e)
		}
		return
	}
	body := key.modelsJSON
	if anthropic {
		body = key.modelsAnthropicJSON
	}
	h["Content-Type"] = headerJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

// admin guards an admin handler with the admin token. Without a token in
// the configuration the admin API does not exist.
func (s *Server) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		snap := s.snap.Load()
		w.Header()["X-Request-Id"] = []string{s.newRequestID()}
		if !snap.hasAdmin {
			writeAdminJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"message": "the admin API is disabled: set admin.token in the configuration"}})
			return
		}
		tok, ok := bearer(r.Header.Get("Authorization"))
		h := hashSecret(tok)
		if !ok || subtle.ConstantTimeCompare(h[:], snap.adminToken[:]) != 1 {
			writeAdminJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"message": "a valid admin token is required (Authorization: Bearer ...)"}})
			return
		}
		next(w, r)
	}
}

func (s *Server) handleReload(w http.ResponseWriter, _ *http.Request) {
	cfg, err := s.Reload()
	if err != nil {
		body := map[string]any{"status": "error", "error": map[string]any{"message": "reload failed; the previous configuration stays in force: " + err.Error()}}
		var ce *config.Error
		if errors.As(err, &ce) {
			body["problems"] = ce.Problems
		}
		writeAdminJSON(w, http.StatusBadRequest, body)
		return
	}
	writeAdminJSON(w, http.StatusOK, map[string]any{"status": "ok", "summary": cfg.Summary()})
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header()["Content-Type"] = headerJSON
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
