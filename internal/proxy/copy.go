package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/multipolar/multipolar/internal/apierr"
)

// serve writes the upstream's answer to the client: headers, then the body,
// flushing every complete server-sent event as soon as it is read.
func (e *Engine) serve(ctx context.Context, w http.ResponseWriter, t *Target, call *Call, resp *http.Response, res *Result) {
	raw, schema := &call.Raw, call.Ingress
	defer resp.Body.Close()
	res.Provider = t.Name
	res.Status = resp.StatusCode
	ct := resp.Header.Get("Content-Type")
	res.Stream = strings.HasPrefix(ct, "text/event-stream")
	h := w.Header()
	h["X-Multipolar-Provider"] = []string{res.Provider}
	if ct != "" {
		h["Content-Type"] = resp.Header["Content-Type"]
	}
	var meter UsageMeter
	if m, ok := t.Upstream.(metering); ok && resp.StatusCode == http.StatusOK {
		meter = m.Meter(raw)
	}
	var err error
	if res.Stream {
		e.openStream(w, call, res)
		defer e.closeStream()
		err = e.copyStream(w, resp.Body, t.StreamIdle, call.API, schema, meter, res)
	} else {
		if resp.ContentLength >= 0 && !call.HoldEnd {
			h["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
		}
		e.setRouteHeader(w, call, res)
		w.WriteHeader(resp.StatusCode)
		err = copyBody(w, resp.Body, resp.ContentLength, t.StreamIdle, meter, res)
	}
	if meter != nil {
		res.setUsage(meter.Usage())
	}
	// A client that left is the reason, whatever the copy recorded first.
	if err != nil && (res.Err == nil || clientGone(ctx)) {
		res.Err = classify(ctx, err, "the upstream connection failed mid-response")
	}
}

var (
	noCache = []string{"no-cache"}
	accelNo = []string{"no"}
)

// idleReader fails a read that waits longer than idle, by closing the body
// from a timer; the timer is re-armed after every read.
type idleReader struct {
	body  io.ReadCloser
	idle  time.Duration
	timer *time.Timer
	fired chan struct{}
}

func newIdleReader(body io.ReadCloser, idle time.Duration) *idleReader {
	r := &idleReader{body: body, idle: idle, fired: make(chan struct{})}
	if idle > 0 {
		r.timer = time.AfterFunc(idle, func() {
			close(r.fired)
			_ = body.Close()
		})
	}
	return r
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if r.timer != nil {
		select {
		case <-r.fired:
			return n, errStreamIdle
		default:
		}
		r.timer.Reset(r.idle)
	}
	return n, err
}

func (r *idleReader) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// meterTail bounds how much of a non-streamed body is kept for the meter:
// usage sits at the end of every provider's answer.
const meterTail = 64 << 10

// copyBody copies a non-streamed body with a pooled buffer, keeping its
// tail for the meter. The idle timer is armed only when the body did not
// arrive with its first read: a typical answer is one read, and a timer per
// request would be its largest cost.
func copyBody(w http.ResponseWriter, body io.ReadCloser, length int64, idle time.Duration, meter UsageMeter, res *Result) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	var src io.Reader = body
	armed := idle <= 0
	arm := func() {
		armed = true
		ir := newIdleReader(body, idle)
		src = ir
	}
	defer func() {
		if ir, ok := src.(*idleReader); ok {
			ir.stop()
		}
	}()
	var tail []byte
	if meter != nil {
		tp := bufPool.Get().(*[]byte)
		defer bufPool.Put(tp)
		tail = (*tp)[:0]
	}
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if !armed && rerr == nil && (length < 0 || res.Bytes+int64(n) < length) {
			arm() // more to come, and it may stall
		}
		if n > 0 {
			if meter != nil {
				tail = keepTail(tail, buf[:n])
			}
			m, werr := w.Write(buf[:n])
			res.Bytes += int64(m)
			if werr != nil {
				return werr
			}
		}
		if rerr == io.EOF {
			if meter != nil {
				meter.Body(tail)
			}
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// keepTail appends p to tail and keeps at most meterTail bytes, the last.
func keepTail(tail, p []byte) []byte {
	if len(p) >= meterTail {
		return append(tail[:0], p[len(p)-meterTail:]...)
	}
	if over := len(tail) + len(p) - meterTail; over > 0 {
		tail = tail[:copy(tail, tail[over:])]
	}
	return append(tail, p...)
}

// openStream writes a stream's headers with res.Status, flushes them so the
// client sees the stream open before the first event, and counts the
// stream in flight until closeStream. It returns w's Flusher, if any.
func (e *Engine) openStream(w http.ResponseWriter, call *Call, res *Result) http.Flusher {
	h := w.Header()
	h["Cache-Control"] = noCache
	h["X-Accel-Buffering"] = accelNo
	e.setRouteHeader(w, call, res)
	w.WriteHeader(res.Status)
	if e.Observer != nil {
		e.Observer.StreamOpen(1)
	}
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	return flusher
}

// closeStream ends what openStream counted.
func (e *Engine) closeStream() {
	if e.Observer != nil {
		e.Observer.StreamOpen(-1)
	}
}

// copyStream copies a text/event-stream body. It writes and flushes only
// complete events (ended by a blank line), so an upstream cut never leaves a
// half event in front of the error event that reports it.
func (e *Engine) copyStream(w http.ResponseWriter, body io.ReadCloser, idle time.Duration, api API, schema Schema, meter UsageMeter, res *Result) error {
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	ir := newIdleReader(body, idle)
	defer ir.stop()
	buf := *bp
	var out []byte // the events as the meter passes them on
	if meter != nil {
		op := bufPool.Get().(*[]byte)
		defer bufPool.Put(op)
		out = (*op)[:0]
	}
	held := 0 // bytes of an incomplete event at the start of buf
	done := false
	for {
		n, rerr := ir.Read(buf[held:])
		held += n
		if end := lastEventEnd(buf[:held]); end > 0 {
			if bytes.Contains(buf[:end], endMarker[api]) {
				done = true
			}
			if bytes.Contains(buf[:end], errorMarker[api]) {
				// The upstream ended the stream with its own error event,
				// in the client's schema: pass it on, add nothing.
				done = true
				res.Err = apierr.New(apierr.UpstreamUnavailable, "the upstream reported an error mid-stream")
			}
			chunk := buf[:end]
			if meter != nil {
				out = meterEvents(out[:0], buf[:end], meter)
				chunk = out
			}
			m, werr := w.Write(chunk)
			res.Bytes += int64(m)
			if werr != nil {
				return werr
			}
			flush()
			held = copy(buf, buf[end:held])
		} else if held == len(buf) {
			// One event larger than the buffer: pass it through as it comes.
			m, werr := w.Write(buf[:held])
			res.Bytes += int64(m)
			if werr != nil {
				return werr
			}
			flush()
			held = 0
		}
		if rerr == nil {
			continue
		}
		// OpenAI streams end with [DONE]: an EOF before it is a cut.
		// Once the end marker went out the answer is complete: a read error
		// after it (the client hung up on [DONE]) changes nothing.
		if done {
			if held > 0 { // a final event without its blank line
				m, _ := w.Write(buf[:held])
				res.Bytes += int64(m)
				flush()
			}
			return nil
		}
		if rerr == io.EOF {
			rerr = errCut
		}
		if errors.Is(rerr, errStreamIdle) {
			res.Err = apierr.Wrap(apierr.UpstreamTimeout, rerr, "the upstream stream stalled")
		} else {
			res.Err = apierr.Wrap(apierr.UpstreamUnavailable, rerr, "the upstream stream was cut before it finished")
		}
		// The client already has part of the answer: end the stream with an
		// error event in its own schema rather than a silent truncation.
		out := schema.AppendStreamError(buf[:0], res.Err)
		m, _ := w.Write(out)
		res.Bytes += int64(m)
		flush()
		return rerr
	}
}

// endMarker and errorMarker are how each API's stream ends: OpenAI with
// data: [DONE] (or an error object), Anthropic with message_stop (or an
// error event).
var (
	endMarker   = [...][]byte{APIOpenAI: []byte("data: [DONE]"), APIAnthropic: []byte("event: message_stop")}
	errorMarker = [...][]byte{APIOpenAI: []byte(`data: {"error"`), APIAnthropic: []byte("event: error")}
)

// meterEvents passes each complete event in b through the meter and
// appends what the client receives to out.
func meterEvents(out, b []byte, meter UsageMeter) []byte {
	for len(b) > 0 {
		end := firstEventEnd(b)
		if end == 0 {
			end = len(b)
		}
		out = append(out, meter.Event(b[:end])...)
		b = b[end:]
	}
	return out
}

// firstEventEnd returns the index just past the first blank line in b, or 0.
func firstEventEnd(b []byte) int {
	for i := 1; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if b[i-1] == '\n' {
			return i + 1
		}
		if i >= 3 && b[i-1] == '\r' && b[i-2] == '\n' && b[i-3] == '\r' {
			return i + 1
		}
	}
	return 0
}

// lastEventEnd returns the index just past the last blank line ("\n\n" or
// "\r\n\r\n") in b, or 0.
func lastEventEnd(b []byte) int {
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == '\n' {
			if b[i-1] == '\n' {
				return i + 1
			}
			if i >= 3 && b[i-1] == '\r' && b[i-2] == '\n' && b[i-3] == '\r' {
				return i + 1
			}
		}
	}
	return 0
}
