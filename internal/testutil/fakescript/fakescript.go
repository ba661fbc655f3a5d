// Package fakescript is the part every fake upstream shares: a FIFO script
// of behaviours with a default, the log of requests received, a close
// signal that releases hung handlers, and serving on a real listener. Each
// fake (fakeupstream, fakeanthropic, fakebedrock, fakegemini) embeds a
// Script of its own Behavior and Request types and speaks its provider's
// wire format on top.
package fakescript

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Script holds a fake's behaviours and the requests it received. It is
// safe for concurrent use.
type Script[B, R any] struct {
	clone func(R) R

	mu       sync.Mutex
	queue    []B
	def      B
	requests []R

	closed    chan struct{}
	closeOnce sync.Once
}

// New returns an empty Script; clone deep-copies a recorded request, so
// callers of Requests can keep what they get.
func New[B, R any](clone func(R) R) *Script[B, R] {
	return &Script[B, R]{clone: clone, closed: make(chan struct{})}
}

// Enqueue appends behaviours to the script. Each scripted request consumes
// one, in arrival order, even if it is then rejected (for example with 401).
func (s *Script[B, R]) Enqueue(b ...B) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, b...)
}

// SetDefault sets the behaviour used when the queue is empty.
func (s *Script[B, R]) SetDefault(b B) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = b
}

// Requests returns copies of every request received since New or Reset, in
// arrival order.
func (s *Script[B, R]) Requests() []R {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]R, len(s.requests))
	for i, r := range s.requests {
		out[i] = s.clone(r)
	}
	return out
}

// Reset empties the queue, restores the zero default behaviour and forgets
// recorded requests. It does not undo Close.
func (s *Script[B, R]) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero B
	s.queue, s.def, s.requests = nil, zero, nil
}

// Close releases every hung or delayed handler, dropping its connection.
// Requests arriving later are still served. Close is idempotent.
func (s *Script[B, R]) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// Record appends req, which the Script now owns, and, when scripted, takes
// the next behaviour (the default when the queue is empty), both under one
// lock so arrival order and script order agree.
func (s *Script[B, R]) Record(req R, scripted bool) B {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	if !scripted {
		var zero B
		return zero
	}
	if len(s.queue) == 0 {
		return s.def
	}
	b := s.queue[0]
	s.queue = s.queue[1:]
	return b
}

// Wait is how a Sleep ended.
type Wait int

// Wait results.
const (
	Done Wait = iota
	ClientGone
	ServerClosed
)

// Sleep waits d, or until the client goes away or the Script is closed.
func (s *Script[B, R]) Sleep(ctx context.Context, d time.Duration) Wait {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return Done
	case <-ctx.Done():
		return ClientGone
	case <-s.closed:
		return ServerClosed
	}
}

// Hang never answers: it returns when the client goes away, or drops the
// connection when the Script is closed.
func (s *Script[B, R]) Hang(ctx context.Context, w http.ResponseWriter) {
	select {
	case <-ctx.Done():
	case <-s.closed:
		Abort(w)
	}
}

// Abort drops the connection without finishing the response, so the client
// sees a truncated body (or a reset stream on HTTP/2).
func Abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
		return
	}
	// HTTP/2 cannot hijack; ErrAbortHandler resets the stream instead and
	// is not logged by net/http.
	panic(http.ErrAbortHandler)
}

// Closer is a fake's handler, whose Close releases hung handlers.
type Closer interface {
	http.Handler
	Close()
}

// Listen serves h on addr (for example "127.0.0.1:0") until shutdown is
// called. baseURL is "http://host:port" with no trailing slash. shutdown
// releases hung handlers, stops the listener and waits up to five seconds
// for open requests; it is safe to call more than once. name prefixes
// errors.
func Listen(name, addr string, h Closer) (baseURL string, shutdown func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("%s: listen %q: %w", name, addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Serve returns ErrServerClosed after shutdown; any other error means
		// the listener died and requests will fail visibly at the client.
		_ = hs.Serve(ln)
	}()
	var once sync.Once
	shutdown = func() {
		once.Do(func() {
			h.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if hs.Shutdown(ctx) != nil {
				_ = hs.Close()
			}
		})
		<-done
	}
	return "http://" + ln.Addr().String(), shutdown, nil
}
