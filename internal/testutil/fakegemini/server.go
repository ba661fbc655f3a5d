package fakegemini

import (
	"crypto/rand"
	"encoding/base64"
	"github.com/multipolar/multipolar/internal/testutil/fakescript"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// DefaultContent is the answer text when [Behavior.Content] is empty and
// no [Behavior.FunctionCall] is scripted.
const DefaultContent = "Hello from the fake Gemini."

// maxBody bounds request bodies (Gemini allows 20 MB inline requests).
const maxBody = 32 << 20

// Backends reported in [Request.Backend].
const (
	BackendGemini = "gemini"
	BackendVertex = "vertex"
)

// Options configures a [Server]. It is copied by [New]; later changes have no
// effect.
type Options struct {
	// APIKey, if set, is required on Gemini API paths as x-goog-api-key or
	// the key query parameter.
	APIKey string
	// VertexToken, if set, is required on Vertex AI paths as
	// "Authorization: Bearer TOKEN".
	VertexToken string
	// Chunks is the number of text pieces an answer is split into (default
	// 5); it is also the number of stream chunks and candidatesTokenCount.
	Chunks int
	// CachedTokens is reported as cachedContentTokenCount and included in
	// promptTokenCount.
	CachedTokens int
	// ThoughtsTokens is reported as thoughtsTokenCount (thinking models).
	ThoughtsTokens int
	// Now stamps Request.Time and Vertex's createTime. Default time.Now.
	Now func() time.Time
	// IDs returns each responseId. Default: random, in Google's base64url
	// shape. It may be called concurrently.
	IDs func() string
	// OnRequest, if set, is called with a copy of each request as soon as it
	// is recorded and its Behavior taken, before any delay. It may be called
	// concurrently and must not block for long.
	OnRequest func(Request)
}

// FunctionCall is a function call the model asks for.
type FunctionCall struct {
	// Name is the function's name.
	Name string
	// Args is the arguments as a JSON object, e.g. `{"city":"Paris"}`.
	// Empty or invalid JSON is sent as "{}".
	Args string
}

// Behavior scripts one response. The zero value is a normal 200 answer.
type Behavior struct {
	// Delay waits before the response headers are written.
	Delay time.Duration
	// Status, if neither 0 nor 200, is answered with Google's error body for
	// that status (429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, ...).
	Status int
	// Hang never answers: the handler returns only when the client goes
	// away or the Server is closed (which drops the connection).
	Hang bool
	// ChunkDelay waits between stream chunks.
	ChunkDelay time.Duration
	// CutAfter, for streams, drops the connection after this many chunks,
	// without the final one. 0 means no cut.
	CutAfter int
	// Content overrides the answer text. With a FunctionCall the answer has
	// text parts only if Content is set.
	Content string
	// FunctionCall, if set, ends the answer with a functionCall part;
	// finishReason stays "STOP", as on Google.
	FunctionCall *FunctionCall
	// StreamErrorAfter, for streams, sends an {"error": ...} chunk after
	// this many chunks and ends the stream. 0 means none.
	StreamErrorAfter int
	// StreamErrorStatus is the HTTP-style code of that error (default 500
	// INTERNAL; 429 RESOURCE_EXHAUSTED and 503 UNAVAILABLE are common).
	StreamErrorStatus int
}

// Request is a copy of one request the Server received.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	// Backend is BackendGemini or BackendVertex, or "" for unknown paths.
	Backend string
	// Model is the {model} path segment; Project and Location are set on
	// Vertex paths.
	Model, Project, Location string
	Header                   http.Header
	Body                     []byte
	Time                     time.Time
}

// Server is a fake Gemini API and Vertex AI generateContent endpoint. It
// implements http.Handler and is safe for concurrent use.
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
	if opts.Chunks <= 0 {
		opts.Chunks = 5
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IDs == nil {
		opts.IDs = randomID
	}
	return &Server{Script: fakescript.New[Behavior](Request.clone), opts: opts}
}

func (r Request) clone() Request {
	r.Header = r.Header.Clone()
	r.Body = slices.Clone(r.Body)
	return r
}

// route is a parsed generateContent path.
type route struct {
	backend, version, model, project, location string
	stream                                     bool
}

// parseRoute recognises the Gemini API and Vertex AI paths in doc.go.
func parseRoute(path string) (route, bool) {
	var rt route
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) < 3 {
		return rt, false
	}
	rt.version = parts[0]
	var last string
	switch {
	case len(parts) == 3 && parts[1] == "models" && (rt.version == "v1beta" || rt.version == "v1"):
		rt.backend, last = BackendGemini, parts[2]
	case len(parts) == 9 && parts[1] == "projects" && parts[3] == "locations" && parts[5] == "publishers" &&
		parts[6] == "google" && parts[7] == "models" && (rt.version == "v1" || rt.version == "v1beta1"):
		rt.backend, rt.project, rt.location, last = BackendVertex, parts[2], parts[4], parts[8]
	default:
		return rt, false
	}
	model, method, ok := strings.Cut(last, ":")
	if !ok || model == "" {
		return rt, false
	}
	rt.model = model
	switch method {
	case "generateContent":
	case "streamGenerateContent":
		rt.stream = true
	default:
		return rt, false
	}
	return rt, true
}

// ServeHTTP answers one request: it records the request and takes the next
// Behavior in one step, applies Hang and Delay, then answers in Google's
// order: unknown path (404), method, authentication, the scripted Status,
// body validation (400), and the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	rt, routed := parseRoute(r.URL.Path)
	req := Request{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Backend: rt.backend, Model: rt.model, Project: rt.project, Location: rt.location,
		Header: r.Header.Clone(), Body: slices.Clone(body), Time: s.opts.Now(),
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
	switch {
	case readErr != nil:
		writeError(w, apiError{code: http.StatusRequestEntityTooLarge, status: "FAILED_PRECONDITION",
			message: "Request payload size exceeds the limit: 20971520 bytes."})
		return
	case !routed:
		writeNotFoundPage(w, r.URL.Path)
		return
	case r.Method != http.MethodPost:
		writeNotFoundPage(w, r.URL.Path)
		return
	}
	if e := s.authenticate(rt, r); e != nil {
		writeError(w, *e)
		return
	}
	if b.Status != 0 && b.Status != http.StatusOK {
		writeError(w, errScripted(b.Status, rt))
		return
	}
	gen, e := parseGenerate(body)
	if e != nil {
		writeError(w, *e)
		return
	}
	a := s.newAnswer(rt, gen, b)
	if !rt.stream {
		writeJSON(w, http.StatusOK, indentJSON(a.response(len(a.pieces), true)))
		return
	}
	s.stream(r.Context(), w, a, b, r.URL.Query().Get("alt") == "sse")
}

// authenticate checks the credential the route's backend expects.
func (s *Server) authenticate(rt route, r *http.Request) *apiError {
	if rt.backend == BackendVertex {
		if s.opts.VertexToken == "" || r.Header.Get("Authorization") == "Bearer "+s.opts.VertexToken {
			return nil
		}
		return ptr(errUnauthenticated())
	}
	if s.opts.APIKey == "" {
		return nil
	}
	key := r.Header.Get("x-goog-api-key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	switch key {
	case s.opts.APIKey:
		return nil
	case "":
		return ptr(errUnregisteredCaller())
	}
	return ptr(errAPIKeyInvalid())
}

// randomID returns an id shaped like Google's responseId: 22 base64url
// characters.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func ptr[T any](v T) *T { return &v }
