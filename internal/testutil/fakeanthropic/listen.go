package fakeanthropic

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Listen serves a new Server configured by opts on addr (for example
// "127.0.0.1:0") until shutdown is called. baseURL is "http://host:port"
// with no trailing slash: pass it to option.WithBaseURL as is, for both the
// first-party and the Vertex client. shutdown releases hung handlers, stops
// the listener and waits up to five seconds for open requests; it is safe to
// call more than once.
//
// The four results break the style guide's three-result rule on purpose:
// callers destructure them in one line in tests and the demo.
func Listen(addr string, opts Options) (srv *Server, baseURL string, shutdown func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", nil, fmt.Errorf("fakeanthropic: listen %q: %w", addr, err)
	}
	srv = New(opts)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Serve returns ErrServerClosed after shutdown; any other error means
		// the listener died and requests will fail visibly at the client.
		_ = hs.Serve(ln)
	}()
	shutdown = func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if hs.Shutdown(ctx) != nil {
			_ = hs.Close()
		}
		<-done
	}
	return srv, "http://" + ln.Addr().String(), shutdown, nil
}
