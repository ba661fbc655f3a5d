package fakeupstream

import (
	"bytes"
	"encoding/json"
	"github.com/multipolar/multipolar/internal/testutil/fakescript"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Flavors accepted by [Options.Flavor].
const (
	FlavorOpenAI = "openai"
	FlavorAzure  = "azure"
)

// DefaultContent is the completion text answered when [Behavior.Content] is
// empty.
const DefaultContent = "Hello from the fake upstream."

// SystemFingerprint is the system_fingerprint of every completion.
const SystemFingerprint = "fp_f4ke0b5e7c"

// maxBody bounds request bodies, like the real servers' request size limit.
const maxBody = 32 << 20

// Options configures a [Server]. It is copied by [New]; later changes have no
// effect.
type Options struct {
	// APIKey, if set, is required: OpenAI paths need "Authorization: Bearer
	// KEY", Azure classic paths "api-key: KEY", and Azure v1 paths either.
	// Requests without it get 401 in the flavor's error shape.
	APIKey string
	// Models are listed by the models endpoints. Default: gpt-4o,
	// gpt-4o-mini, text-embedding-3-small.
	Models []string
	// StrictModels makes chat and embeddings requests for a model not in
	// Models fail with 404 model_not_found, as the real API does. Off by
	// default so tests may use any model name.
	StrictModels bool
	// Chunks is the number of content pieces a completion is split into
	// (default 5). It is also the completion_tokens reported.
	Chunks int
	// CachedTokens is reported as usage.prompt_tokens_details.cached_tokens.
	CachedTokens int
	// Flavor is FlavorOpenAI (default) or FlavorAzure and shapes response
	// bodies, stream chunks and errors. Paths of both are recognised either
	// way.
	Flavor string
	// Now stamps "created" and Request.Time. Default time.Now.
	Now func() time.Time
	// OnRequest, if set, is called with a copy of each request as soon as it
	// is recorded and its Behavior taken, before any delay. Tests use it to
	// know a request has arrived without sleeping. It may be called
	// concurrently and must not block for long.
	OnRequest func(Request)
	// IDs returns the id of each completion, e.g. "chatcmpl-abc". Default: a
	// random id in OpenAI's format. It may be called concurrently.
	IDs func() string
}

// Behavior scripts one response. The zero value is a normal 200 answer.
type Behavior struct {
	// Delay waits before the response headers are written.
	Delay time.Duration
	// Status, if neither 0 nor 200, is answered with the flavor's error body
	// for that status (429 rate limit, 500 server error, ...).
	Status int
	// RetryAfter is sent as the Retry-After header with a Status error, and
	// its seconds appear in the 429 message.
	RetryAfter string
	// RetryAfterMs is sent as the retry-after-ms header with a Status error.
	RetryAfterMs string
	// Hang never answers: the handler returns only when the client goes
	// away or the Server is closed (which drops the connection).
	Hang bool
	// ChunkDelay waits between stream chunks.
	ChunkDelay time.Duration
	// CutAfter, for streams, drops the connection after this many content
	// chunks, without a finish chunk or [DONE]. 0 means no cut.
	CutAfter int
	// Content overrides the completion text (DefaultContent).
	Content string
}

// Request is a copy of one request the Server received.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
	Time     time.Time
}

// Server is a fake OpenAI / Azure OpenAI upstream. It implements
// http.Handler and is safe for concurrent use.
//
// Its script of behaviours and its request log are a fakescript.Script:
// Enqueue, SetDefault, Requests, Reset and Close come from there.
type Server struct {
	*fakescript.Script[Behavior, Request]
	opts Options
}

var _ http.Handler = (*Server)(nil)

// New returns a Server configured by opts. An unknown Flavor is treated as
// FlavorOpenAI.
func New(opts Options) *Server {
	if len(opts.Models) == 0 {
		opts.Models = []string{"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"}
	} else {
		opts.Models = slices.Clone(opts.Models)
	}
	if opts.Chunks <= 0 {
		opts.Chunks = 5
	}
	if opts.Flavor != FlavorAzure {
		opts.Flavor = FlavorOpenAI
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IDs == nil {
		opts.IDs = randomID
	}
	return &Server{Script: fakescript.New[Behavior](Request.clone), opts: opts}
}

// clone deep-copies r.
func (r Request) clone() Request {
	r.Header = r.Header.Clone()
	r.Body = slices.Clone(r.Body)
	return r
}

// record appends a copy of r and, if work is set, takes the next Behavior,
// both under one lock. It returns another copy of r for OnRequest.
func (s *Server) record(r *http.Request, body []byte, work bool) (Request, Behavior) {
	req := Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Body:     slices.Clone(body),
		Time:     s.opts.Now(),
	}
	return req.clone(), s.Record(req, work)
}

// operation is what a path asks for.
type operation int

const (
	opChat operation = iota + 1
	opEmbeddings
	opModels
)

// family is which API a path belongs to; it decides authentication and
// whether "model" is required.
type family int

const (
	famOpenAI       family = iota + 1 // /v1/...
	famAzureClassic                   // /openai/deployments/{d}/...?api-version=
	famAzureV1                        // /openai/v1/...
)

type route struct {
	op         operation
	fam        family
	deployment string
}

func parseRoute(path string) (route, bool) {
	ops := map[string]operation{"chat/completions": opChat, "embeddings": opEmbeddings, "models": opModels}
	if rest, ok := strings.CutPrefix(path, "/v1/"); ok {
		op, ok := ops[rest]
		return route{op: op, fam: famOpenAI}, ok
	}
	if rest, ok := strings.CutPrefix(path, "/openai/v1/"); ok {
		op, ok := ops[rest]
		return route{op: op, fam: famAzureV1}, ok
	}
	if path == "/openai/models" {
		return route{op: opModels, fam: famAzureClassic}, true
	}
	if rest, ok := strings.CutPrefix(path, "/openai/deployments/"); ok {
		dep, tail, ok := strings.Cut(rest, "/")
		if !ok || dep == "" {
			return route{}, false
		}
		op, ok := ops[tail]
		if !ok || op == opModels {
			return route{}, false
		}
		return route{op: op, fam: famAzureClassic, deployment: dep}, true
	}
	return route{}, false
}

// ServeHTTP answers one request. It records the request and, for chat and
// embeddings paths, takes the next Behavior in the same step, so the n-th
// such request always gets the n-th Behavior. Then it applies Hang and
// Delay, and answers, in the real servers' order: unknown path (404), wrong
// method, missing api-version (Azure classic), authentication (401), the
// scripted Status, body validation (400), and finally the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	rt, routed := parseRoute(r.URL.Path)
	work := routed && rt.op != opModels
	req, b := s.record(r, body, work)
	if s.opts.OnRequest != nil {
		s.opts.OnRequest(req)
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

	if readErr != nil {
		writeError(w, s.opts.Flavor, apiError{status: http.StatusRequestEntityTooLarge,
			message: "Request body too large.", typ: "invalid_request_error"})
		return
	}
	if !routed {
		if s.opts.Flavor == FlavorAzure {
			writeBody(w, http.StatusNotFound, []byte(azureResourceNotFound))
			return
		}
		writeError(w, s.opts.Flavor, errInvalidURL(r.Method, r.URL.Path))
		return
	}
	wantMethod := http.MethodPost
	if rt.op == opModels {
		wantMethod = http.MethodGet
	}
	if r.Method != wantMethod {
		writeError(w, s.opts.Flavor, errInvalidMethod(r.Method, r.URL.Path))
		return
	}
	// Classic Azure paths need api-version; Azure's frontend answers its own
	// 404 before any model-service validation, whatever the flavor.
	if rt.fam == famAzureClassic && r.URL.Query().Get("api-version") == "" {
		writeBody(w, http.StatusNotFound, []byte(azureResourceNotFound))
		return
	}
	if !s.authorized(rt.fam, r.Header) {
		writeError(w, s.opts.Flavor, errUnauthorized(presentedKey(r.Header)))
		return
	}
	if rt.op == opModels {
		s.serveModels(w)
		return
	}
	if b.Status != 0 && b.Status != http.StatusOK {
		op := "ChatCompletions_Create"
		if rt.op == opEmbeddings {
			op = "Embeddings_Create"
		}
		if b.RetryAfter != "" {
			w.Header().Set("Retry-After", b.RetryAfter)
		}
		if b.RetryAfterMs != "" {
			w.Header().Set("retry-after-ms", b.RetryAfterMs)
		}
		model := requestModel(body, rt)
		writeError(w, s.opts.Flavor, errScripted(b.Status, model, op, r.URL.Query().Get("api-version"), b.RetryAfter))
		return
	}
	switch rt.op {
	case opChat:
		s.serveChat(w, r, rt, body, b)
	case opEmbeddings:
		s.serveEmbeddings(w, rt, body)
	}
}

// authorized reports whether h carries the configured key in the way fam
// expects.
func (s *Server) authorized(fam family, h http.Header) bool {
	if s.opts.APIKey == "" {
		return true
	}
	bearer := h.Get("Authorization") == "Bearer "+s.opts.APIKey
	apiKey := h.Get("Api-Key") == s.opts.APIKey
	switch fam {
	case famOpenAI:
		return bearer
	case famAzureClassic:
		return apiKey
	default:
		return bearer || apiKey
	}
}

func presentedKey(h http.Header) string {
	if k := h.Get("Api-Key"); k != "" {
		return k
	}
	return strings.TrimPrefix(h.Get("Authorization"), "Bearer ")
}

// requestModel returns the model named in the body, or the deployment for
// Azure classic paths that omit it; used in scripted error messages.
func requestModel(body []byte, rt route) string {
	var v struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(body, &v) // validation reports bad JSON later
	if v.Model == "" {
		return rt.deployment
	}
	return v.Model
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomID returns an id shaped like OpenAI's: "chatcmpl-" and 29
// alphanumerics.
func randomID() string {
	var b bytes.Buffer
	b.WriteString("chatcmpl-")
	for range 29 {
		b.WriteByte(idAlphabet[rand.IntN(len(idAlphabet))])
	}
	return b.String()
}
