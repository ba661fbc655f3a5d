package fakeanthropic

import (
	"encoding/json"
	"github.com/multipolar/multipolar/internal/testutil/fakescript"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"
)

// DefaultContent is the answer text when [Behavior.Content] is empty.
const DefaultContent = "Hello from the fake Anthropic API."

// VertexVersion is the anthropic_version a Vertex AI request body must carry.
const VertexVersion = "vertex-2023-10-16"

// Token costs of the deterministic count; see the package comment.
const (
	MessageTokens = 4  // per message
	ImageTokens   = 85 // per image block, base64 or url
	ToolTokens    = 20 // per tool definition
)

// maxBody bounds request bodies: the Messages API's documented 32 MB limit.
const maxBody = 32 << 20

// Options configures a [Server]. It is copied by [New]; later changes have no
// effect.
type Options struct {
	// APIKey, if set, is required on first-party paths as "x-api-key: KEY" or
	// "Authorization: Bearer KEY" (OAuth tokens). Otherwise 401
	// authentication_error.
	APIKey string
	// VertexToken, if set, is required on Vertex paths as "Authorization:
	// Bearer TOKEN". Otherwise 401 in Google's error shape.
	VertexToken string
	// Models are listed by GET /v1/models. Default: claude-sonnet-4-5,
	// claude-haiku-4-5, claude-opus-4-5.
	Models []string
	// Chunks is the number of pieces a text answer (and a tool call's input)
	// is streamed in, default 5. It is also the output_tokens reported.
	Chunks int
	// CacheReadTokens is reported as usage.cache_read_input_tokens.
	CacheReadTokens int
	// CacheCreationTokens is reported as usage.cache_creation_input_tokens
	// and usage.cache_creation.ephemeral_5m_input_tokens.
	CacheCreationTokens int
	// Now stamps Request.Time. Default time.Now.
	Now func() time.Time
	// OnRequest, if set, is called with a copy of each request as soon as it
	// is recorded and its Behavior taken, before any delay. It may be called
	// concurrently and must not block for long.
	OnRequest func(Request)
	// IDs returns the id of each message, e.g. "msg_01Abc". The tool_use id
	// and request id are derived from it by swapping the "msg_" prefix for
	// "toolu_" and "req_". Default: random ids in Anthropic's format. It may
	// be called concurrently.
	IDs func() string
}

// ToolCall scripts a tool_use answer.
type ToolCall struct {
	// Name is the tool's name.
	Name string
	// Input is the tool's input; it must be a JSON object. It is sent
	// compacted; streams split it into input_json_delta pieces.
	Input json.RawMessage
}

// Behavior scripts one response. The zero value is a normal 200 answer.
type Behavior struct {
	// Delay waits before the response headers are written.
	Delay time.Duration
	// Status, if neither 0 nor 200, is answered with Anthropic's error body
	// for that status.
	Status int
	// RetryAfter is sent as the retry-after header with a Status error.
	RetryAfter string
	// Hang never answers: the handler returns only when the client goes
	// away or the Server is closed (which drops the connection).
	Hang bool
	// ChunkDelay waits between stream events.
	ChunkDelay time.Duration
	// CutAfter, for streams, drops the connection after this many
	// content_block_delta events, without message_delta or message_stop.
	// 0 means no cut.
	CutAfter int
	// Content overrides the answer text (DefaultContent). With a ToolCall it
	// is sent as a text block before the tool_use block.
	Content string
	// ToolCall, if set and the request defines tools, answers with a
	// tool_use block and stop_reason "tool_use". Without tools in the
	// request it is ignored, as a model cannot call an undefined tool.
	ToolCall *ToolCall
	// StopSequence, if set, ends the answer with stop_reason
	// "stop_sequence" and this stop_sequence.
	StopSequence string
	// StreamErrorAfter, for streams, sends an in-stream overloaded_error
	// event after this many content_block_delta events and ends the stream.
	// 0 means none.
	StreamErrorAfter int
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

// Server is a fake Anthropic / Claude-on-Vertex upstream. It implements
// http.Handler and is safe for concurrent use.
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
	if len(opts.Models) == 0 {
		opts.Models = []string{"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-5"}
	} else {
		opts.Models = slices.Clone(opts.Models)
	}
	if opts.Chunks <= 0 {
		opts.Chunks = 5
	}
	if opts.Now == nil {
		opts.Now = time.Now
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

// ServeHTTP answers one request. It records the request and, for messages
// and count_tokens paths, takes the next Behavior in the same step. Then it
// applies Hang and Delay, and answers in this order: body too large (413),
// unknown path (404), wrong method (405), missing anthropic-version (400,
// first-party only), authentication (401), the scripted Status, body
// validation (400), and finally the answer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	rt, routed := parseRoute(r.URL.Path)
	work := routed && rt.op != opModels && rt.op != opModel
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
	ids := s.newIDs(rt.vertex)

	if readErr != nil {
		writeError(w, ids.request, apiError{status: http.StatusRequestEntityTooLarge, typ: "request_too_large",
			message: "Request exceeds the maximum allowed number of bytes."})
		return
	}
	if !routed {
		writeError(w, ids.request, apiError{status: http.StatusNotFound, typ: "not_found_error", message: "Not Found"})
		return
	}
	wantMethod := http.MethodPost
	if rt.op == opModels || rt.op == opModel {
		wantMethod = http.MethodGet
	}
	if r.Method != wantMethod {
		w.Header().Set("Allow", wantMethod)
		writeError(w, ids.request, apiError{status: http.StatusMethodNotAllowed, typ: "invalid_request_error", message: "Method Not Allowed"})
		return
	}
	if !rt.vertex && r.Header.Get("anthropic-version") == "" {
		writeError(w, ids.request, errInvalid("anthropic-version: header is required"))
		return
	}
	if e := s.authenticate(rt, r.Header); e != nil {
		if rt.vertex {
			writeGoogleUnauthenticated(w)
			return
		}
		writeError(w, ids.request, *e)
		return
	}
	switch rt.op {
	case opModels:
		s.serveModels(w, ids.request)
		return
	case opModel:
		s.serveModel(w, ids.request, rt.model)
		return
	}
	if b.Status != 0 && b.Status != http.StatusOK {
		if b.RetryAfter != "" {
			w.Header().Set("retry-after", b.RetryAfter)
		}
		writeError(w, ids.request, errScripted(b.Status, modelOf(body, rt)))
		return
	}
	mr, e := parseMessages(body, rt)
	if e != nil {
		writeError(w, ids.request, *e)
		return
	}
	if rt.op == opCountTokens {
		writeJSON(w, http.StatusOK, ids.request, compactJSON(object{{"input_tokens", mr.inputTokens}}))
		return
	}
	s.serveMessage(w, r, mr, b, ids)
}

// authenticate checks the credentials rt's family expects and returns the
// error to answer, or nil.
func (s *Server) authenticate(rt route, h http.Header) *apiError {
	if rt.vertex {
		if s.opts.VertexToken == "" || h.Get("Authorization") == "Bearer "+s.opts.VertexToken {
			return nil
		}
		return &apiError{status: http.StatusUnauthorized}
	}
	if s.opts.APIKey == "" {
		return nil
	}
	key := h.Get("x-api-key")
	bearer, hasBearer := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	switch {
	case key == s.opts.APIKey, hasBearer && bearer == s.opts.APIKey:
		return nil
	case key == "" && !hasBearer:
		return &apiError{status: http.StatusUnauthorized, typ: "authentication_error", message: "x-api-key header is required"}
	case key == "":
		return &apiError{status: http.StatusUnauthorized, typ: "authentication_error", message: "Invalid bearer token"}
	default:
		return &apiError{status: http.StatusUnauthorized, typ: "authentication_error", message: "invalid x-api-key"}
	}
}

// modelOf returns the model a request names, for error messages.
func modelOf(body []byte, rt route) string {
	if rt.model != "" {
		return rt.model
	}
	var v struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(body, &v) // validation reports bad JSON later
	return v.Model
}

// idSet holds the ids of one exchange.
type idSet struct {
	message, tool, request string
}

// newIDs returns the ids of one exchange, from Options.IDs or random.
func (s *Server) newIDs(vertex bool) idSet {
	var msg string
	if s.opts.IDs != nil {
		msg = s.opts.IDs()
	} else {
		msg = "msg_" + randomSuffix()
		if vertex {
			msg = "msg_vrtx_" + randomSuffix()
		}
	}
	suffix, ok := strings.CutPrefix(msg, "msg_")
	if !ok {
		suffix = msg
	}
	return idSet{message: msg, tool: "toolu_" + suffix, request: "req_" + suffix}
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomSuffix returns "01" and 22 base-62 characters, the shape of
// Anthropic's msg_, toolu_ and req_ ids.
func randomSuffix() string {
	b := []byte("01")
	for range 22 {
		b = append(b, idAlphabet[rand.IntN(len(idAlphabet))])
	}
	return string(b)
}
