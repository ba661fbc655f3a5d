package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// maxTranslatedBody bounds a non-streamed upstream answer that must be
// decoded whole to be translated.
const maxTranslatedBody = 64 << 20

// translatedRequest builds the upstream request for a call that crosses
// APIs: the client's body is decoded once into the canonical request.
func (e *Engine) translatedRequest(ctx context.Context, call *Call, t *Target, upstreamModel string) (*http.Request, error) {
	canon, err := call.Canonical()
	if err != nil {
		return nil, err
	}
	canon.UpstreamModel = upstreamModel
	return t.Chat.NewChatRequest(ctx, canon)
}

var (
	headerSSE  = []string{"text/event-stream"}
	headerJSON = []string{"application/json"}
)

// serveTranslated writes a translated answer: a non-2xx upstream answer as
// an error in the client's schema, a streamed one event by event, a JSON
// one whole.
func (e *Engine) serveTranslated(ctx context.Context, w http.ResponseWriter, t *Target, call *Call, resp *http.Response, res *Result) {
	defer resp.Body.Close()
	canon, _ := call.Canonical() // decoded before the request was built
	res.Provider = t.Name
	h := w.Header()
	h["X-Multipolar-Provider"] = []string{t.Name}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A 4xx the client should see, in its own schema.
		ae := t.Chat.DecodeError(resp, readLimited(resp.Body))
		res.Status, res.Err = ae.Kind.Status(), ae
		e.setRouteHeader(w, call, res)
		call.Ingress.WriteError(w, ae)
		return
	}
	if canon.Stream {
		e.streamTranslated(ctx, w, t, call, canon, resp, res)
		return
	}
	ir := newIdleReader(resp.Body, t.StreamIdle)
	body, err := io.ReadAll(io.LimitReader(ir, maxTranslatedBody))
	ir.stop()
	var out *llm.Response
	if err == nil {
		out, err = t.Chat.DecodeChat(resp, body)
	}
	if err != nil {
		res.Err = classify(ctx, err, "the upstream's answer could not be read")
		res.Status = res.Err.Kind.Status()
		e.setRouteHeader(w, call, res)
		call.Ingress.WriteError(w, res.Err)
		return
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	enc := call.Ingress.EncodeResponse((*bp)[:0], canon, out)
	h["Content-Type"] = headerJSON
	if !call.HoldEnd {
		h["Content-Length"] = []string{strconv.Itoa(len(enc))}
	}
	e.setRouteHeader(w, call, res)
	w.WriteHeader(http.StatusOK)
	n, _ := w.Write(enc)
	res.Status, res.Bytes = http.StatusOK, int64(n)
	res.setUsage(out.Usage, true)
	if cap(enc) <= 1<<20 {
		*bp = enc[:cap(enc)] // keep a grown buffer, within reason; copyBody and copyStream read into its full length
	}
}

// streamTranslated decodes the upstream stream one event at a time and
// writes each translated event at once.
func (e *Engine) streamTranslated(ctx context.Context, w http.ResponseWriter, t *Target, call *Call, canon *llm.Request, resp *http.Response, res *Result) {
	w.Header()["Content-Type"] = headerSSE
	res.Status, res.Stream = http.StatusOK, true
	flusher := e.openStream(w, call, res)
	defer e.closeStream()
	ir := newIdleReader(resp.Body, t.StreamIdle)
	defer ir.stop()
	dec := t.Chat.NewStreamDecoder(ir)
	enc := call.Ingress.NewStreamEncoder(canon)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	out := (*bp)[:0]
	var ev llm.Event
	for {
		ev.Reset()
		err := dec.Next(&ev)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			res.Err = classify(ctx, err, "the upstream stream broke")
			if res.Err.Kind == apierr.ClientCanceled {
				return
			}
			out = call.Ingress.AppendStreamError(out[:0], res.Err)
		} else {
			switch ev.Type {
			case llm.EventError:
				res.Err = apierr.From(ev.Err)
			case llm.EventUsage:
				res.setUsage(ev.Usage, true)
			}
			out = enc.Encode(out[:0], &ev)
		}
		if len(out) > 0 {
			n, werr := w.Write(out)
			res.Bytes += int64(n)
			if werr != nil {
				if res.Err == nil {
					res.Err = apierr.Wrap(apierr.ClientCanceled, werr, "client closed the request")
				}
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil || ev.Type == llm.EventError {
			return
		}
	}
}

// clientGone reports that ctx ended because the client went away, not
// because the request's deadline passed.
func clientGone(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded)
}

// classify turns a failure while reading an upstream answer into the
// client's error.
func classify(ctx context.Context, err error, msg string) *apierr.Error {
	var ae *apierr.Error
	switch {
	case clientGone(ctx):
		return apierr.Wrap(apierr.ClientCanceled, err, "client closed the request")
	case errors.As(err, &ae):
		return ae
	case isTimeout(err) || errors.Is(err, errStreamIdle):
		return apierr.Wrap(apierr.UpstreamTimeout, err, "the upstream stopped sending")
	}
	return apierr.Wrap(apierr.UpstreamUnavailable, err, msg)
}
