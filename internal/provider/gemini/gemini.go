package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// Default endpoints.
const (
	defaultGeminiBase = "https://generativelanguage.googleapis.com"
	// Vertex's regional endpoint is https://{region}-aiplatform.googleapis.com;
	// the "global" location has no regional host.
	globalVertexBase = "https://aiplatform.googleapis.com"
	// cloudPlatformScope is the OAuth2 scope Vertex AI requires.
	cloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
)

// Options configure a Provider.
type Options struct {
	// Name identifies the provider in errors and logs.
	Name string
	// Vertex selects Vertex AI (project, region, bearer token) instead of
	// the Gemini API (API key).
	Vertex bool
	// BaseURL overrides the endpoint: by default
	// https://generativelanguage.googleapis.com for the Gemini API, and
	// https://{Region}-aiplatform.googleapis.com for Vertex
	// (https://aiplatform.googleapis.com when Region is "global").
	BaseURL *url.URL
	// APIKey is the Gemini API key, sent as x-goog-api-key.
	APIKey string
	// Project and Region locate Vertex models; both are required with
	// Vertex.
	Project, Region string
	// TokenSource yields Vertex access tokens (see VertexTokenSource). The
	// provider wraps it in oauth2.ReuseTokenSource, so a token is fetched
	// again only when it is within oauth2's expiry margin. Required with
	// Vertex.
	TokenSource oauth2.TokenSource
	// Headers are extra headers sent upstream.
	Headers map[string]string
}

// Provider translates canonical chat requests to generateContent. It is
// immutable after New and safe for concurrent use.
type Provider struct {
	name   string
	vertex bool
	// prefix is everything before the model name:
	// {base}/v1beta/models/ or {base}/v1/projects/{p}/locations/{r}/publishers/google/models/.
	prefix string
	ts     oauth2.TokenSource // Vertex only
	header http.Header        // template; value slices are shared, never appended to
}

// New returns a Provider for o.
func New(o Options) (*Provider, error) {
	p := &Provider{name: o.Name, vertex: o.Vertex, header: http.Header{"Content-Type": {"application/json"}}}
	for k, v := range o.Headers {
		p.header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	base := defaultGeminiBase
	if o.Vertex {
		if o.Project == "" || o.Region == "" {
			return nil, fmt.Errorf("provider %q: vertex needs a project and a region", o.Name)
		}
		if o.TokenSource == nil {
			return nil, fmt.Errorf("provider %q: vertex needs a token source", o.Name)
		}
		p.ts = oauth2.ReuseTokenSource(nil, o.TokenSource)
		base = "https://" + o.Region + "-aiplatform.googleapis.com"
		if o.Region == "global" {
			base = globalVertexBase
		}
	} else if o.APIKey != "" {
		p.header["X-Goog-Api-Key"] = []string{o.APIKey}
	}
	if o.BaseURL != nil {
		base = o.BaseURL.String()
	}
	base = strings.TrimSuffix(base, "/")
	if o.Vertex {
		p.prefix = base + "/v1/projects/" + url.PathEscape(o.Project) + "/locations/" + url.PathEscape(o.Region) + "/publishers/google/models/"
	} else {
		p.prefix = base + "/v1beta/models/"
	}
	if _, err := url.Parse(p.prefix + "m:generateContent"); err != nil {
		return nil, fmt.Errorf("provider %q: %w", o.Name, err)
	}
	return p, nil
}

// Name returns the provider's name.
func (p *Provider) Name() string { return p.name }

var (
	acceptSSE  = []string{"text/event-stream"}
	acceptJSON = []string{"application/json"}
)

// NewChatRequest builds the generateContent (or, when r.Stream,
// streamGenerateContent?alt=sse) request for r. A request the provider
// cannot honour is refused with an *apierr.Error of kind BadRequest.
func (p *Provider) NewChatRequest(ctx context.Context, r *llm.Request) (*http.Request, error) {
	body, err := p.encodeRequest(r)
	if err != nil {
		return nil, err
	}
	model := r.UpstreamModel
	if model == "" {
		model = r.Model
	}
	// The model is one path segment; escaping keeps "/" or "?" in a
	// configured name from changing the URL's shape.
	raw := p.prefix + url.PathEscape(model)
	if r.Stream {
		raw += ":streamGenerateContent?alt=sse"
	} else {
		raw += ":generateContent"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, apierr.Wrap(apierr.BadRequest, err, fmt.Sprintf("invalid model name for provider %q", p.name)).WithParam("model")
	}
	h := make(http.Header, len(p.header)+2)
	for k, v := range p.header {
		h[k] = v
	}
	if r.Stream {
		h["Accept"] = acceptSSE
	} else {
		h["Accept"] = acceptJSON
	}
	if p.vertex {
		tok, err := p.ts.Token()
		if err != nil {
			return nil, apierr.Wrap(apierr.UpstreamUnavailable, fmt.Errorf("provider %q: vertex token: %w", p.name, err),
				"the upstream could not be authenticated")
		}
		h["Authorization"] = []string{"Bearer " + tok.AccessToken}
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
		GetBody: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		},
	}
	return req.WithContext(ctx), nil
}

// credentialTypes are the credential files VertexTokenSource accepts: the
// types gcloud and the IAM console write. google.CredentialsFromJSON, which
// takes any type, is deprecated because a file from an untrusted source can
// name arbitrary token endpoints; the type is checked here instead.
var credentialTypes = map[string]google.CredentialsType{
	string(google.ServiceAccount):                google.ServiceAccount,
	string(google.AuthorizedUser):                google.AuthorizedUser,
	string(google.ImpersonatedServiceAccount):    google.ImpersonatedServiceAccount,
	string(google.ExternalAccount):               google.ExternalAccount,
	string(google.ExternalAccountAuthorizedUser): google.ExternalAccountAuthorizedUser,
}

// VertexTokenSource returns a token source for Vertex AI with the
// cloud-platform scope from credentialsJSON (a service-account key or
// another credential file gcloud writes). With nil or empty JSON it uses
// Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's
// file, then the metadata server). ctx is used for the token fetches for
// the life of the source.
func VertexTokenSource(ctx context.Context, credentialsJSON []byte) (oauth2.TokenSource, error) {
	if len(bytes.TrimSpace(credentialsJSON)) == 0 {
		creds, err := google.FindDefaultCredentials(ctx, cloudPlatformScope)
		if err != nil {
			return nil, fmt.Errorf("find default google credentials: %w", err)
		}
		return creds.TokenSource, nil
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(credentialsJSON, &head); err != nil {
		return nil, fmt.Errorf("parse google credentials: %w", err)
	}
	t, ok := credentialTypes[head.Type]
	if !ok {
		return nil, fmt.Errorf("google credentials: unsupported type %q", head.Type)
	}
	creds, err := google.CredentialsFromJSONWithType(ctx, credentialsJSON, t, cloudPlatformScope)
	if err != nil {
		return nil, fmt.Errorf("google credentials: %w", err)
	}
	return creds.TokenSource, nil
}

// errUnsupported is the refusal for a feature the provider cannot honour.
func (p *Provider) errUnsupported(feature string) *apierr.Error {
	return apierr.New(apierr.BadRequest, "feature %q is not supported by provider %q", feature, p.name).WithCode("unsupported_feature")
}
