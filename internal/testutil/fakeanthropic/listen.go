package fakeanthropic

import "github.com/multipolar/multipolar/internal/testutil/fakescript"

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
	srv = New(opts)
	baseURL, shutdown, err = fakescript.Listen("fakeanthropic", addr, srv)
	if err != nil {
		return nil, "", nil, err
	}
	return srv, baseURL, shutdown, nil
}
