// Package anthropic is the upstream adapter for Anthropic's Messages API and
// for Claude on Vertex AI (rawPredict / streamRawPredict). Anthropic clients
// reach it by passthrough (NewRequest forwards their bytes); other clients
// reach it by translation from the canonical llm.Request (NewChatRequest,
// DecodeChat, NewStreamDecoder, DecodeError).
package anthropic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/multipolar/multipolar/internal/llm/jsonscan"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// DefaultVersion is the anthropic-version header sent when Options.Version
// is empty.
const DefaultVersion = "2023-06-01"

// VertexVersion is the anthropic_version Vertex AI takes in the body.
const VertexVersion = "vertex-2023-10-16"

// DefaultBaseURL is Anthropic's API, used when Options.BaseURL is nil and
// Vertex is off.
const DefaultBaseURL = "https://api.anthropic.com"

// Options configure a Provider.
type Options struct {
	// Name identifies the provider in errors, metrics and logs.
	Name string
	// BaseURL is the API root without /v1 (a trailing /v1 is tolerated),
	// as the SDKs take it. Nil means DefaultBaseURL, or for Vertex
	// https://{Region}-aiplatform.googleapis.com (aiplatform.googleapis.com
	// for the "global" region).
	BaseURL *url.URL
	// APIKey is sent as x-api-key. Not used with Vertex.
	APIKey string
	// Version is the anthropic-version header; DefaultVersion when empty.
	Version string
	// Vertex selects Claude on Vertex AI: model in the URL, anthropic_version
	// in the body, a bearer token from TokenSource.
	Vertex bool
	// Project and Region locate the Vertex AI endpoint.
	Project, Region string
	// TokenSource returns an OAuth2 access token for Vertex; it is called
	// for every request and should cache (wrap golang.org/x/oauth2/google's
	// token source). Required with Vertex.
	TokenSource func(ctx context.Context) (string, error)
	// Headers are extra headers sent upstream, e.g. a fixed
	// "anthropic-beta". A client's own anthropic-beta travels per request
	// through ContextWithBeta.
	Headers map[string]string
}

// Provider builds Anthropic requests and decodes answers. It is immutable
// after New and safe for concurrent use.
type Provider struct {
	name        string
	vertex      bool
	tokenSource func(ctx context.Context) (string, error)
	messagesURL *url.URL // first party
	countURL    *url.URL // first party
	vertexBase  string   // {base}/v1/projects/{p}/locations/{r}/publishers/anthropic/models/
	header      http.Header
	vertexURLs  sync.Map // model -> *[2]*url.URL{rawPredict, streamRawPredict}
}

// ErrUnsupported is returned for an operation the provider cannot serve.
var ErrUnsupported = errors.New("operation not supported by provider")

// New returns a Provider for o.
func New(o Options) (*Provider, error) {
	p := &Provider{name: o.Name, vertex: o.Vertex, tokenSource: o.TokenSource,
		header: http.Header{"Content-Type": {"application/json"}}}
	for k, v := range o.Headers {
		p.header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	var base string
	switch {
	case o.BaseURL != nil:
		base = strings.TrimSuffix(strings.TrimSuffix(o.BaseURL.String(), "/"), "/v1")
	case o.Vertex && o.Region == "global":
		base = "https://aiplatform.googleapis.com"
	case o.Vertex:
		base = "https://" + o.Region + "-aiplatform.googleapis.com"
	default:
		base = DefaultBaseURL
	}
	if o.Vertex {
		if o.Project == "" || o.Region == "" || o.TokenSource == nil {
			return nil, fmt.Errorf("provider %q: vertex needs a project, a region and a token source", o.Name)
		}
		p.vertexBase = base + "/v1/projects/" + url.PathEscape(o.Project) + "/locations/" + url.PathEscape(o.Region) + "/publishers/anthropic/models/"
		if _, err := url.Parse(p.vertexBase); err != nil {
			return nil, fmt.Errorf("provider %q: %w", o.Name, err)
		}
		return p, nil
	}
	version := o.Version
	if version == "" {
		version = DefaultVersion
	}
	p.header["Anthropic-Version"] = []string{version}
	if o.APIKey != "" {
		p.header["X-Api-Key"] = []string{o.APIKey}
	}
	var err error
	if p.messagesURL, err = url.Parse(base + "/v1/messages"); err != nil {
		return nil, fmt.Errorf("provider %q: %w", o.Name, err)
	}
	if p.countURL, err = url.Parse(base + "/v1/messages/count_tokens"); err != nil {
		return nil, fmt.Errorf("provider %q: %w", o.Name, err)
	}
	return p, nil
}

// Name returns the provider's name.
func (p *Provider) Name() string { return p.name }

type betaKey struct{}

// ContextWithBeta returns ctx carrying the client's anthropic-beta header
// value, which NewRequest and NewChatRequest forward upstream. llm.RawRequest
// has no headers, so the server sets this from the client's request.
func ContextWithBeta(ctx context.Context, beta string) context.Context {
	if beta == "" {
		return ctx
	}
	return context.WithValue(ctx, betaKey{}, beta)
}

// BetaFromContext returns the anthropic-beta value set by ContextWithBeta.
func BetaFromContext(ctx context.Context) string {
	s, _ := ctx.Value(betaKey{}).(string)
	return s
}

// NewRequest builds the passthrough request for r: the client's bytes to
// {base}/v1/messages, with the model rewritten only when the upstream calls
// it by another name. For Vertex the body must change anyway (no "model",
// an "anthropic_version"); that is done by byte surgery on the top-level
// members, leaving every other byte as the client sent it.
func (p *Provider) NewRequest(ctx context.Context, r *llm.RawRequest) (*http.Request, error) {
	switch {
	case r.Op == llm.OpCountTokens && !p.vertex:
		return p.newHTTPRequest(ctx, p.countURL, r.BodyFor(r.UpstreamModel), false, "")
	case r.Op != llm.OpChat:
		// A request this provider cannot take: the engine passes it over.
		return nil, apierr.New(apierr.BadRequest, "provider %q does not serve %s", p.name, r.Op).WithCode("unsupported_feature")
	}
	if !p.vertex {
		return p.newHTTPRequest(ctx, p.messagesURL, r.BodyFor(r.UpstreamModel), r.Stream, "")
	}
	u, err := p.vertexURL(r.UpstreamModel, r.Stream)
	if err != nil {
		return nil, err
	}
	body, err := vertexBody(r.Body)
	if err != nil {
		return nil, fmt.Errorf("provider %q: %w", p.name, err)
	}
	token, err := p.tokenSource(ctx)
	if err != nil {
		return nil, fmt.Errorf("provider %q: vertex token: %w", p.name, err)
	}
	return p.newHTTPRequest(ctx, u, body, r.Stream, token)
}

// vertexBody copies the top-level members of body except "model" and
// "anthropic_version", then adds anthropic_version.
func vertexBody(body []byte) ([]byte, error) {
	i := jsonscan.SkipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, errors.New("request body is not a JSON object")
	}
	out := make([]byte, 0, len(body)+48)
	out = append(out, '{')
	it := newObjectIter(body[i:])
	for {
		m, ok := it.next()
		if !ok {
			break
		}
		if k := string(m.key); k == "model" || k == "anthropic_version" {
			continue
		}
		out = append(out, '"')
		out = append(out, m.key...)
		out = append(out, `":`...)
		out = append(out, m.val...)
		out = append(out, ',')
	}
	out = append(out, `"anthropic_version":"`+VertexVersion+`"}`...)
	return out, nil
}

func (p *Provider) vertexURL(model string, stream bool) (*url.URL, error) {
	i := 0
	if stream {
		i = 1
	}
	if v, ok := p.vertexURLs.Load(model); ok {
		return v.(*[2]*url.URL)[i], nil
	}
	var urls [2]*url.URL
	for j, verb := range [2]string{":rawPredict", ":streamRawPredict"} {
		u, err := url.Parse(p.vertexBase + url.PathEscape(model) + verb)
		if err != nil {
			return nil, fmt.Errorf("provider %q model %q: %w", p.name, model, err)
		}
		urls[j] = u
	}
	v, _ := p.vertexURLs.LoadOrStore(model, &urls)
	return v.(*[2]*url.URL)[i], nil
}

var (
	acceptSSE  = []string{"text/event-stream"}
	acceptJSON = []string{"application/json"}
)

func (p *Provider) newHTTPRequest(ctx context.Context, u *url.URL, body []byte, stream bool, token string) (*http.Request, error) {
	h := make(http.Header, len(p.header)+3)
	for k, v := range p.header {
		h[k] = v
	}
	if stream {
		h["Accept"] = acceptSSE
	} else {
		h["Accept"] = acceptJSON
	}
	if token != "" {
		h["Authorization"] = []string{"Bearer " + token}
	}
	if beta := BetaFromContext(ctx); beta != "" {
		h["Anthropic-Beta"] = []string{beta}
	}
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          u.Host,
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return req.WithContext(ctx), nil
}
