// Package proxy is the forwarding engine: it offers a request to a route's
// targets in order, fails over on connection errors, timeouts, 429 and 5xx
// before any byte reached the client, and streams the chosen answer through,
// flushing each server-sent event as it arrives.
package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// Upstream builds the HTTP request a provider expects for a raw request in
// the provider's own API (the passthrough path).
type Upstream interface {
	Name() string
	NewRequest(ctx context.Context, r *llm.RawRequest) (*http.Request, error)
}

// API names a client-facing API schema.
type API uint8

// APIs. The zero value is OpenAI's.
const (
	APIOpenAI API = iota
	APIAnthropic
)

// Target is one entry of a route: a provider, the model name it knows, and
// how to reach it. A target serves a call by passthrough when Upstream is
// set and speaks the call's API, else by translation through Chat.
type Target struct {
	// Name is the provider's name.
	Name string
	// Upstream forwards the client's bytes; nil for providers reached only
	// by translation.
	Upstream Upstream
	// API is the schema Upstream speaks.
	API API
	// Chat translates canonical requests; nil when the provider has no
	// translation (then only clients of its own API reach it).
	Chat ChatProvider
	// Model is the upstream's name for the model.
	Model string
	// Transport carries requests to this upstream; its dial and
	// response-header timeouts are the provider's connect and first-byte
	// timeouts.
	Transport http.RoundTripper
	// StreamIdle bounds the gap between two reads of the upstream body.
	StreamIdle time.Duration
}

// Call is one client request on its way through the engine.
type Call struct {
	// Raw is the client's request as received.
	Raw llm.RawRequest
	// API is the client's API.
	API API
	// Ingress renders answers and errors in the client's API.
	Ingress Ingress
	// Decode turns Raw.Body into the canonical request, on first need.
	Decode func(body []byte) (*llm.Request, error)
	// Gate, when set, admits each attempt and learns its outcome.
	Gate Gate
	// Retry bounds extra rounds over the targets; the zero value retries
	// nothing.
	Retry Retry
	// RouteHeader starts the x-multipolar-route header: the routing
	// decision (refusals, candidates); the engine appends every attempt.
	RouteHeader []byte
	// HoldEnd omits Content-Length from answers, so the client learns the
	// body is complete only when the handler returns: the caller commits
	// the usage record first (durable ledger).
	HoldEnd bool

	canon     *llm.Request
	decodeErr error
}

// Canonical returns the decoded request, decoding it once.
func (c *Call) Canonical() (*llm.Request, error) {
	if c.canon == nil && c.decodeErr == nil {
		if c.Decode == nil {
			c.decodeErr = apierr.New(apierr.BadRequest, "this endpoint cannot be translated to another provider's API")
		} else {
			c.canon, c.decodeErr = c.Decode(c.Raw.Body)
		}
	}
	return c.canon, c.decodeErr
}

// Schema renders errors in the client's API.
type Schema interface {
	WriteError(w http.ResponseWriter, e *apierr.Error)
	AppendStreamError(b []byte, e *apierr.Error) []byte
}

// Observer is told about each upstream attempt and each stream's life. It
// must be safe for concurrent use and cheap: it runs on the request path.
type Observer interface {
	Attempt(a *Attempt, model string)
	StreamOpen(delta int)
}

// Outcome classifies an attempt.
type Outcome uint8

// Outcomes.
const (
	// Served: this attempt's answer went to the client.
	Served Outcome = iota
	// ConnectError: the upstream could not be reached.
	ConnectError
	// Timeout: no response headers within the first-byte timeout.
	Timeout
	// RateLimited: the upstream answered 429.
	RateLimited
	// ServerError: the upstream answered 5xx.
	ServerError
	// AuthRejected: the upstream refused the gateway's credentials (401/403).
	AuthRejected
	// Canceled: the client went away.
	Canceled
	// Unsupported: the provider cannot take this request (a feature it
	// lacks, or an API it cannot be translated to); nothing was sent.
	Unsupported
	// Refused: routing passed the provider over at call time (capacity
	// used, circuit open, cooling down); nothing was sent.
	Refused
)

var outcomeName = [...]string{"served", "connect_error", "timeout", "rate_limited", "server_error", "auth_rejected", "canceled", "unsupported", "refused"}

// String names o for metrics and logs.
func (o Outcome) String() string { return outcomeName[o] }

// Attempt records one try of one target.
type Attempt struct {
	Provider string
	Model    string
	Outcome  Outcome
	// Status is the upstream's HTTP status, 0 when none arrived.
	Status   int
	Duration time.Duration
	// RetryAfter is the upstream's Retry-After, normalised to seconds.
	RetryAfter string
	// Refusal is why routing passed the provider over (Outcome Refused).
	Refusal string
	Err     error
}

// Result is what became of a request.
type Result struct {
	// Provider served the client; empty when none did.
	Provider string
	// Status is the status the client received.
	Status int
	// Attempts lists every try in order.
	Attempts []Attempt
	// Bytes is the body size written to the client.
	Bytes int64
	// Stream reports whether the answer was an event stream.
	Stream bool
	// Err is the failure, when the request failed or was cut.
	Err *apierr.Error
	// Usage is the serving attempt's token usage, when it was metered.
	Usage llm.Usage
	// Metered reports that Usage was read (or estimated) from the answer.
	Metered bool
	// UsageEstimated reports that the upstream did not report usage (a cut
	// stream, say) and Usage is the gateway's estimate.
	UsageEstimated bool
	attempts       [4]Attempt
}

// setUsage records the serving attempt's usage.
func (r *Result) setUsage(u llm.Usage, reported bool) {
	r.Usage, r.Metered, r.UsageEstimated = u, true, !reported
}

// Engine forwards requests. It is safe for concurrent use.
type Engine struct {
	Observer Observer
}

var (
	errStreamIdle = errors.New("upstream stream idle timeout")
	errCut        = errors.New("upstream stream ended before completion")
)

// bufPool holds 32 KiB copy buffers, as httputil.ReverseProxy's BufferPool.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// maxErrorBody bounds how much of a failed attempt's body is kept.
const maxErrorBody = 64 << 10

// Gate admits each attempt and learns its outcome: routing's capacity,
// circuit breakers and health. i is the target's index.
type Gate interface {
	// Begin returns "" to go ahead, or the reason the target is passed
	// over now (capacity_exhausted, circuit_open, …).
	Begin(ctx context.Context, i int, t *Target) string
	// End reports an admitted attempt's outcome.
	End(i int, t *Target, a *Attempt)
}

// Retry bounds the extra rounds over a call's targets after every one of
// them failed retryably.
type Retry struct {
	// Rounds is how many extra rounds; 0 disables retries.
	Rounds int
	// Backoff returns the wait before round n (from 1), never shorter than
	// retryAfter.
	Backoff func(n int, retryAfter time.Duration) time.Duration
}

// forwardState is what Forward carries across attempts.
type forwardState struct {
	last429     []byte // a 429 body in the client's own API
	last429From string
}

// Forward offers the call to each target in order, and again for up to
// call.Retry.Rounds more rounds while every failure is retryable and the
// request's deadline allows, and writes the answer, or an error in the
// client's schema, to w. res is filled in; it must be fresh.
func (e *Engine) Forward(ctx context.Context, w http.ResponseWriter, call *Call, targets []Target, res *Result) {
	res.Attempts = res.attempts[:0]
	var st forwardState
	for round := 0; ; round++ {
		first := len(res.Attempts)
		for i := range targets {
			if e.attempt(ctx, w, call, i, &targets[i], res, &st) {
				return
			}
			if ctx.Err() != nil {
				break // the deadline: no time for another target
			}
		}
		if round >= call.Retry.Rounds || ctx.Err() != nil || !retryable(res.Attempts[first:]) {
			break
		}
		wait := call.Retry.Backoff(round+1, maxRetryAfter(res.Attempts[first:]))
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			break // the wait would outlast the request
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	if clientGone(ctx) {
		res.Status = apierr.ClientCanceled.Status()
		res.Err = apierr.Wrap(apierr.ClientCanceled, ctx.Err(), "client closed the request")
		return
	}
	res.Err = failure(call.Raw.Model, res.Attempts)
	if res.Err.Kind == apierr.RateLimited && st.last429 != nil {
		// The upstream's own 429 already speaks the client's API.
		h := w.Header()
		h.Set("Content-Type", "application/json")
		if res.Err.RetryAfter != "" {
			h.Set("Retry-After", res.Err.RetryAfter)
		}
		h["X-Multipolar-Provider"] = []string{st.last429From}
		e.setRouteHeader(w, call, res)
		w.WriteHeader(http.StatusTooManyRequests)
		n, _ := w.Write(st.last429)
		res.Provider, res.Status, res.Bytes = st.last429From, http.StatusTooManyRequests, int64(n)
		return
	}
	res.Status = res.Err.Kind.Status()
	e.setRouteHeader(w, call, res)
	call.Ingress.WriteError(w, res.Err)
}

// retryable reports whether every failure of a round could succeed on a
// later try: rate limits, server errors, connection failures and timeouts.
// A round in which a provider cannot take the request, refused our
// credentials, or the client left is not retried.
func retryable(attempts []Attempt) bool {
	some := false
	for i := range attempts {
		switch attempts[i].Outcome {
		case RateLimited, ServerError, ConnectError, Timeout:
			some = true
		case Refused:
		default:
			return false
		}
	}
	return some
}

// maxRetryAfter is the longest Retry-After a round's upstreams asked for.
func maxRetryAfter(attempts []Attempt) time.Duration {
	var d time.Duration
	for i := range attempts {
		if n, err := strconv.Atoi(attempts[i].RetryAfter); err == nil && time.Duration(n)*time.Second > d {
			d = time.Duration(n) * time.Second
		}
	}
	return d
}

// attempt offers the call to one target. It returns true when the call is
// finished: answered, or the client went away.
func (e *Engine) attempt(ctx context.Context, w http.ResponseWriter, call *Call, i int, t *Target, res *Result, st *forwardState) bool {
	model := call.Raw.Model
	upstreamModel := t.Model
	if upstreamModel == "" {
		upstreamModel = model
	}
	a := Attempt{Provider: t.Name, Model: upstreamModel}
	passthrough := t.Upstream != nil && t.API == call.API
	if !passthrough && t.Chat == nil {
		a.Outcome = Unsupported
		a.Err = apierr.New(apierr.BadRequest, "provider %q does not speak this API and has no translation for it", t.Name)
		e.record(res, &a, model)
		return false
	}
	if call.Gate != nil {
		if why := call.Gate.Begin(ctx, i, t); why != "" {
			a.Outcome, a.Refusal = Refused, why
			e.record(res, &a, model)
			return false
		}
	}
	admitted := call.Gate != nil
	end := func() {
		if admitted {
			admitted = false
			call.Gate.End(i, t, &a)
		}
	}
	defer end()
	start := time.Now()
	var (
		req *http.Request
		err error
	)
	if passthrough {
		call.Raw.UpstreamModel = upstreamModel
		req, err = t.Upstream.NewRequest(ctx, &call.Raw)
	} else {
		req, err = e.translatedRequest(ctx, call, t, upstreamModel)
	}
	var ae *apierr.Error
	if errors.As(err, &ae) && ae.Kind == apierr.BadRequest {
		// The request itself cannot go to this provider (a feature it
		// lacks, or a body that does not decode): not its fault.
		a.Outcome, a.Err = Unsupported, ae
		e.record(res, &a, model)
		if _, derr := call.Canonical(); derr != nil && !passthrough {
			// No provider can take a body that does not decode.
			res.Status, res.Err = ae.Kind.Status(), ae
			e.setRouteHeader(w, call, res)
			call.Ingress.WriteError(w, ae)
			return true
		}
		return false
	}
	var resp *http.Response
	if err == nil {
		resp, err = t.Transport.RoundTrip(req)
	}
	a.Duration = time.Since(start)
	if err != nil {
		a.Err = err
		switch {
		case clientGone(ctx):
			a.Outcome = Canceled
			e.record(res, &a, model)
			res.Status = apierr.ClientCanceled.Status()
			res.Err = apierr.Wrap(apierr.ClientCanceled, err, "client closed the request")
			return true
		case isTimeout(err):
			a.Outcome = Timeout
		default:
			a.Outcome = ConnectError
		}
		e.record(res, &a, model)
		return false
	}
	a.Status = resp.StatusCode
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		a.Outcome = RateLimited
		a.RetryAfter = retryAfter(resp.Header)
		body := readLimited(resp.Body)
		if passthrough && speaksAPI(call.API, body) {
			st.last429, st.last429From = body, a.Provider
		}
	case resp.StatusCode >= 500:
		a.Outcome = ServerError
		_ = readLimited(resp.Body)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// The upstream refused our credentials: a provider fault the
		// client cannot fix, and its message may echo part of a key.
		a.Outcome = AuthRejected
		_ = readLimited(resp.Body)
	default:
		a.Outcome = Served
		e.record(res, &a, model)
		end() // the answer arrived: health learns it before the body streams
		switch {
		case passthrough && resp.StatusCode >= 400:
			e.writeUpstreamError(w, t, call, resp, res)
		case passthrough:
			e.serve(ctx, w, t, call, resp, res)
		default:
			e.serveTranslated(ctx, w, t, call, resp, res)
		}
		return true
	}
	e.record(res, &a, model)
	return false
}

// setRouteHeader writes x-multipolar-route: the routing decision's prefix
// and every attempt made, as provider=outcome entries.
func (e *Engine) setRouteHeader(w http.ResponseWriter, call *Call, res *Result) {
	// Append in the spare capacity of the caller's (pooled) prefix buffer;
	// call.RouteHeader's own bytes stay as they are.
	b := call.RouteHeader
	for i := range res.Attempts {
		a := &res.Attempts[i]
		if len(b) > 0 {
			b = append(b, ';')
		}
		b = append(b, a.Provider...)
		b = append(b, '=')
		if a.Outcome == Refused {
			b = append(b, "refused:"...)
			b = append(b, a.Refusal...)
			continue
		}
		b = append(b, a.Outcome.String()...)
		if a.Status != 0 && a.Outcome != Served {
			b = append(b, '(')
			b = strconv.AppendInt(b, int64(a.Status), 10)
			b = append(b, ')')
		}
	}
	if len(b) > 0 {
		w.Header()["X-Multipolar-Route"] = []string{string(b)}
	}
}

func (e *Engine) record(res *Result, a *Attempt, model string) {
	res.Attempts = append(res.Attempts, *a)
	if e.Observer != nil {
		e.Observer.Attempt(a, model)
	}
}

// failure turns a list of failed attempts into the client's error.
func failure(model string, attempts []Attempt) *apierr.Error {
	if len(attempts) == 0 {
		return apierr.New(apierr.UpstreamUnavailable, "no upstream is configured for model %q", model)
	}
	// Providers routing passed over say nothing about the others.
	all := func(o Outcome) bool {
		seen := false
		for i := range attempts {
			switch attempts[i].Outcome {
			case Refused:
			case o:
				seen = true
			default:
				return false
			}
		}
		return seen || o == Refused
	}
	var b strings.Builder
	for i := range attempts {
		a := &attempts[i]
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.Provider)
		b.WriteString(": ")
		switch a.Outcome {
		case ConnectError:
			b.WriteString("connection failed")
		case Timeout:
			b.WriteString("timed out")
		case Unsupported:
			b.WriteString("cannot serve this request")
		case Refused:
			b.WriteString("refused (" + a.Refusal + ")")
		default:
			b.WriteString("HTTP ")
			b.WriteString(strconv.Itoa(a.Status))
		}
	}
	var cause error
	for i := range attempts {
		cause = errors.Join(cause, attempts[i].Err)
	}
	switch {
	case all(Unsupported):
		var first *apierr.Error
		if errors.As(attempts[0].Err, &first) {
			return first
		}
	case all(RateLimited):
		e := apierr.Wrap(apierr.RateLimited, cause, "every upstream for model \""+model+"\" is rate limited ("+b.String()+")")
		e.RetryAfter = minRetryAfter(attempts)
		return e
	case all(Timeout):
		return apierr.Wrap(apierr.UpstreamTimeout, cause, "the upstream did not answer in time for model \""+model+"\" ("+b.String()+")")
	}
	e := apierr.Wrap(apierr.UpstreamUnavailable, cause, "all upstreams failed for model \""+model+"\" ("+b.String()+")")
	if allStatus(attempts, 529) {
		e.Code = apierr.CodeOverloaded
	}
	return e
}

// allStatus reports whether every attempt that reached an upstream got
// this status.
func allStatus(attempts []Attempt, status int) bool {
	seen := false
	for i := range attempts {
		switch {
		case attempts[i].Outcome == Refused:
		case attempts[i].Status != status:
			return false
		default:
			seen = true
		}
	}
	return seen
}

func minRetryAfter(attempts []Attempt) string {
	best := -1
	for i := range attempts {
		if n, err := strconv.Atoi(attempts[i].RetryAfter); err == nil && (best < 0 || n < best) {
			best = n
		}
	}
	if best < 0 {
		return ""
	}
	return strconv.Itoa(best)
}

// retryAfter reads Retry-After (seconds) or retry-after-ms, in seconds
// rounded up. An HTTP-date Retry-After is converted from now.
func retryAfter(h http.Header) string {
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			return strconv.Itoa(n)
		}
		if t, err := http.ParseTime(v); err == nil {
			d := time.Until(t)
			if d < 0 {
				d = 0
			}
			return strconv.Itoa(int((d + time.Second - 1) / time.Second))
		}
	}
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && ms >= 0 {
			return strconv.Itoa(int((ms + 999) / 1000))
		}
	}
	return ""
}

func readLimited(body io.ReadCloser) []byte {
	b, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	_ = body.Close()
	return b
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
