package fakebedrock

import (
	"crypto/rand"
	"fmt"
	"github.com/multipolar/multipolar/internal/testutil/fakescript"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// DefaultContent is the answer text when [Behavior.Content] is empty and
// no [Behavior.ToolCall] is scripted.
const DefaultContent = "Hello from the fake Bedrock."

// maxBody bounds request bodies.
const maxBody = 32 << 20

// Options configures a [Server]. It is copied by [New]; later changes have no
// effect.
type Options struct {
	// AccessKeyID and SecretAccessKey, when AccessKeyID is set, are the only
	// credentials accepted; every request must be SigV4-signed with them.
	// Empty AccessKeyID disables authentication.
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken, if set, must arrive as X-Amz-Security-Token, as with
	// temporary (STS) credentials.
	SessionToken string
	// Region is the signing region required in the credential scope.
	// Default "us-east-1".
	Region string
	// Chunks is the number of pieces a text answer (and a tool input) is
	// split into when streamed (default 5). It also drives outputTokens.
	Chunks int
	// CacheReadTokens and CacheWriteTokens are reported as
	// usage.cacheReadInputTokens and usage.cacheWriteInputTokens. Both fields
	// are omitted when both are zero, as Bedrock does without prompt caching.
	CacheReadTokens  int
	CacheWriteTokens int
	// Now stamps Request.Time and measures metrics.latencyMs. Default
	// time.Now.
	Now func() time.Time
	// IDs returns request IDs (x-amzn-RequestId) and toolUseIds. Default: a
	// random UUID. It may be called concurrently.
	IDs func() string
	// OnRequest, if set, is called with a copy of each request as soon as it
	// is recorded and its Behavior taken, before any delay. It may be called
	// concurrently and must not block for long.
	OnRequest func(Request)
}

// ToolCall is a tool use the model asks for.
type ToolCall struct {
	// ID is the toolUseId; default "tooluse_" + Options.IDs().
	ID string
	// Name is the tool's name.
	Name string
	// Input is the tool input as a JSON object, e.g. `{"city":"Paris"}`.
	// Default "{}".
	Input string
}

// Behavior scripts one response. The zero value is a normal 200 answer.
type Behavior struct {
	// Delay waits before the response headers are written.
	Delay time.Duration
	// Status, if neither 0 nor 200, is answered with Bedrock's error for that
	// status (429 ThrottlingException, 400 ValidationException, ...), on
	// Converse and ConverseStream alike.
	Status int
	// Hang never answers: the handler returns only when the client goes
	// away or the Server is closed (which drops the connection).
	Hang bool
	// ChunkDelay waits between stream events.
	ChunkDelay time.Duration
	// CutAfter, for streams, drops the connection after this many content
	// deltas, without messageStop or metadata. 0 means no cut.
	CutAfter int
	// Content overrides the answer text. With a ToolCall, the answer has a
	// text block only if Content is set.
	Content string
	// ToolCall, if set, makes the answer end with a toolUse block and
	// stopReason "tool_use".
	ToolCall *ToolCall
	// StreamErrorAfter, for streams, sends an exception message after this
	// many content deltas and ends the stream. 0 means none.
	StreamErrorAfter int
	// StreamException is the exception type for StreamErrorAfter:
	// "modelStreamErrorException" (default), "throttlingException",
	// "internalServerException", "serviceUnavailableException" or
	// "validationException".
	StreamException string
}

// Request is a copy of one request the Server received.
type Request struct {
	Method string
	// Path is the decoded path; EscapedPath is the path as sent, which is
	// what SigV4 signs.
	Path        string
	EscapedPath string
	RawQuery    string
	// Model is the unescaped {modelId} path segment, or "" for unknown paths.
	Model  string
	Header http.Header
	Body   []byte
	Time   time.Time
}

// Server is a fake Bedrock Runtime. It implements http.Handler and is safe
// for concurrent use.
//
// Its script of behaviours and its request log are a fakescript.Script:
// Enqueue, SetDefault, Requests, Reset and Close come from there.
type Server struct {
	*fakescript.Script[Behavior, Request]
	opts Options
}

var _ http.Handler = (*Server)(nil)

// New returns a Server configured by opts.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Chunks <= 0 {
		opts.Chunks = 5
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IDs == nil {
		opts.IDs = randomUUID
	}
	return &Server{Script: fakescript.New[Behavior](Request.clone), opts: opts}
}

func (r Request) clone() Request {
	r.Header = r.Header.Clone()
	r.Body = slices.Clone(r.Body)
	return r
}

// operation is what a path asks for.
type operation int

const (
	opConverse operation = iota + 1
	opConverseStream
)

// parseRoute splits /model/{modelId}/{op} on the escaped path, so an ARN's
// %2F stays inside the model segment.
func parseRoute(escaped string) (model string, op operation, ok bool) {
	rest, found := strings.CutPrefix(escaped, "/model/")
	if !found {
		return "", 0, false
	}
	seg, tail, found := strings.Cut(rest, "/")
	if !found || seg == "" {
		return "", 0, false
	}
	model, err := url.PathUnescape(seg)
	if err != nil {
		return "", 0, false
	}
	switch tail {
	case "converse":
		return model, opConverse, true
	case "converse-stream":
		return model, opConverseStream, true
	}
	return model, 0, false
}

// ServeHTTP answers one request: it records the request and takes the next
// Behavior in one step, applies Hang and Delay, then answers in Bedrock's
// order: unknown path (404), method, authentication (403), the scripted
// Status, body validation (400), and the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	model, op, routed := parseRoute(r.URL.EscapedPath())
	req := Request{
		Method:      r.Method,
		Path:        r.URL.Path,
		EscapedPath: r.URL.EscapedPath(),
		RawQuery:    r.URL.RawQuery,
		Model:       model,
		Header:      r.Header.Clone(),
		Body:        slices.Clone(body),
		Time:        s.opts.Now(),
	}
	b := s.Record(req.clone(), routed)
	if s.opts.OnRequest != nil {
		s.opts.OnRequest(req.clone())
	}
	if b.Hang {
		s.Hang(r.Context(), w)
		return
	}
	if b.Delay > 0 {
		switch s.Sleep(r.Context(), b.Delay) {
		case fakescript.ClientGone:
			return
		case fakescript.ServerClosed:
			fakescript.Abort(w)
			return
		}
	}
	reqID := s.opts.IDs()
	w.Header().Set("x-amzn-RequestId", reqID)
	switch {
	case readErr != nil:
		writeError(w, apiError{status: http.StatusRequestEntityTooLarge, typ: "ValidationException",
			message: "Input is too long for requested model."})
		return
	case !routed:
		writeError(w, errUnknownOperation())
		return
	case r.Method != http.MethodPost:
		writeError(w, errUnknownOperation())
		return
	}
	if e := s.authenticate(r, body); e != nil {
		writeError(w, *e)
		return
	}
	if b.Status != 0 && b.Status != http.StatusOK {
		writeError(w, errScripted(b.Status, model))
		return
	}
	conv, e := parseConverse(body)
	if e != nil {
		writeError(w, *e)
		return
	}
	a := s.newAnswer(conv, b, req.Time)
	if op == opConverse {
		writeJSON(w, http.StatusOK, a.converseBody(s.opts.Now()))
		return
	}
	s.stream(r.Context(), w, a, b)
}

// randomUUID returns a version 4 UUID, the shape of x-amzn-RequestId.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
