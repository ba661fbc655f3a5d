// Package openai is the upstream adapter for every server that speaks
// OpenAI's API: OpenAI itself, Azure OpenAI (classic deployment URLs and the
// /openai/v1 form) and OpenAI-compatible servers such as vLLM, Ollama,
// CoreWeave, Nebius and Oracle's endpoint. Requests are forwarded as the
// client's bytes; only the model name is rewritten when the upstream calls the
// model by another name.
package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/multipolar/multipolar/internal/llm"
)

// Flavor selects URL layout and authentication.
type Flavor uint8

// Flavors.
const (
	// FlavorOpenAI: {base}/chat/completions, Authorization: Bearer.
	FlavorOpenAI Flavor = iota
	// FlavorAzure: Azure OpenAI, api-key header. With an API version the
	// classic /openai/deployments/{deployment}/...?api-version= URLs, without
	// one the /openai/v1/... form.
	FlavorAzure
)

// Options configure a Provider.
type Options struct {
	// Name identifies the provider.
	Name string
	// Flavor is the URL and auth layout.
	Flavor Flavor
	// BaseURL is the SDK-style base (…/v1) for FlavorOpenAI, the resource
	// endpoint for FlavorAzure.
	BaseURL *url.URL
	// APIKey is the upstream credential; may be empty for FlavorOpenAI.
	APIKey string
	// APIVersion selects Azure's classic URLs.
	APIVersion string
	// Deployments maps an upstream model to its Azure deployment.
	Deployments map[string]string
	// Headers are extra headers sent upstream.
	Headers map[string]string
	// NoStreamUsage stops the gateway from adding
	// stream_options.include_usage to streamed requests, for servers that
	// reject the field. Streamed usage is then estimated.
	NoStreamUsage bool
}

// Provider builds upstream requests. It is immutable after New and safe for
// concurrent use.
type Provider struct {
	name        string
	flavor      Flavor
	classic     bool
	base        string // without trailing slash
	apiVersion  string
	deployments map[string]string
	opURL       [2]*url.URL // non-classic: per llm.Op
	header      http.Header // template; value slices are shared, never appended to
	classicURLs sync.Map    // deployment -> *[2]*url.URL
	// streamUsage: streamed requests ask for a usage chunk (see Meter).
	streamUsage bool
}

// ErrUnsupported is returned for an operation the provider cannot serve.
var ErrUnsupported = errors.New("operation not supported by provider")

// New returns a Provider for o.
func New(o Options) (*Provider, error) {
	if o.BaseURL == nil {
		return nil, fmt.Errorf("provider %q: base URL is required", o.Name)
	}
	p := &Provider{
		name:        o.Name,
		flavor:      o.Flavor,
		base:        strings.TrimSuffix(o.BaseURL.String(), "/"),
		apiVersion:  o.APIVersion,
		deployments: o.Deployments,
		header:      http.Header{"Content-Type": {"application/json"}},
		// Azure took stream_options in api-version 2024-09-01-preview;
		// older versions reject it. Dates compare as strings.
		streamUsage: !o.NoStreamUsage && (o.Flavor != FlavorAzure || o.APIVersion == "" || o.APIVersion >= "2024-09-01"),
	}
	for k, v := range o.Headers {
		p.header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	switch o.Flavor {
	case FlavorAzure:
		p.classic = o.APIVersion != ""
		if o.APIKey != "" {
			p.header["Api-Key"] = []string{o.APIKey}
		}
		if !p.classic {
			if err := p.setOpURLs(p.base + "/openai/v1"); err != nil {
				return nil, err
			}
		}
	default:
		if o.APIKey != "" {
			p.header["Authorization"] = []string{"Bearer " + o.APIKey}
		}
		if err := p.setOpURLs(p.base); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Provider) setOpURLs(prefix string) error {
	for op, suffix := range opPath {
		u, err := url.Parse(prefix + suffix)
		if err != nil {
			return fmt.Errorf("provider %q: %w", p.name, err)
		}
		p.opURL[op] = u
	}
	return nil
}

var opPath = [...]string{llm.OpChat: "/chat/completions", llm.OpEmbeddings: "/embeddings"}

// Name returns the provider's name.
func (p *Provider) Name() string { return p.name }

// deployment is the Azure deployment that serves model.
func (p *Provider) deployment(model string) string {
	if d, ok := p.deployments[model]; ok {
		return d
	}
	return model
}

func (p *Provider) classicURL(op llm.Op, dep string) (*url.URL, error) {
	if v, ok := p.classicURLs.Load(dep); ok {
		return v.(*[2]*url.URL)[op], nil
	}
	var urls [2]*url.URL
	for o, suffix := range opPath {
		u, err := url.Parse(p.base + "/openai/deployments/" + url.PathEscape(dep) + suffix + "?api-version=" + url.QueryEscape(p.apiVersion))
		if err != nil {
			return nil, fmt.Errorf("provider %q deployment %q: %w", p.name, dep, err)
		}
		urls[o] = u
	}
	v, _ := p.classicURLs.LoadOrStore(dep, &urls)
	return v.(*[2]*url.URL)[op], nil
}

// NewRequest builds the upstream request for r. The body is r's bytes, with
// the model rewritten only where the upstream must see another name.
func (p *Provider) NewRequest(ctx context.Context, r *llm.RawRequest) (*http.Request, error) {
	if int(r.Op) >= len(opPath) {
		return nil, ErrUnsupported
	}
	var (
		u    *url.URL
		body []byte
	)
	var edits [2]llm.Edit
	n := 0
	if e, ok := p.usageEdit(r); ok {
		edits[n], n = e, n+1
	}
	switch {
	case p.classic:
		// The deployment in the URL selects the model; Azure ignores the
		// body's model, so it stays as the client wrote it.
		var err error
		if u, err = p.classicURL(r.Op, p.deployment(r.UpstreamModel)); err != nil {
			return nil, err
		}
	case p.flavor == FlavorAzure:
		u = p.opURL[r.Op]
		if e, ok := r.ModelEdit(p.deployment(r.UpstreamModel)); ok {
			edits[n], n = e, n+1
		}
	default:
		u = p.opURL[r.Op]
		if e, ok := r.ModelEdit(r.UpstreamModel); ok {
			edits[n], n = e, n+1
		}
	}
	body = llm.Apply(r.Body, edits[:n]...)
	h := make(http.Header, len(p.header)+1)
	for k, v := range p.header {
		h[k] = v
	}
	if r.Stream {
		h["Accept"] = acceptSSE
	} else {
		h["Accept"] = acceptJSON
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
	return req.WithContext(ctx), nil
}

var (
	acceptSSE  = []string{"text/event-stream"}
	acceptJSON = []string{"application/json"}
)
