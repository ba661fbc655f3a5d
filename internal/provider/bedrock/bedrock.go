package bedrock

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/multipolar/multipolar/internal/apierr"
)

// signingService is the SigV4 service name of the Bedrock Runtime.
const signingService = "bedrock"

// Options configure a Provider.
type Options struct {
	// Name identifies the provider in errors and logs.
	Name string
	// Region is the AWS region, e.g. "us-east-1". It selects the default
	// endpoint and is the SigV4 signing region. Required.
	Region string
	// BaseURL overrides the endpoint; default
	// https://bedrock-runtime.{Region}.amazonaws.com. A path on it is kept
	// as a prefix.
	BaseURL *url.URL
	// Credentials signs requests. Nil means the standard AWS chain
	// (environment, shared config and credentials files, SSO, web identity,
	// container and instance roles) as config.LoadDefaultConfig resolves it.
	// A provider that is not already cached is wrapped in an
	// aws.CredentialsCache.
	Credentials aws.CredentialsProvider
	// Headers are extra headers sent upstream; they are signed too.
	Headers map[string]string
}

// Provider translates canonical chat requests to Bedrock's Converse API. It
// is immutable after New and safe for concurrent use.
type Provider struct {
	name   string
	region string
	base   string // endpoint without trailing slash
	creds  aws.CredentialsProvider
	signer *v4.Signer
	header http.Header // template; value slices are shared, never appended to
	now    func() time.Time
	urls   sync.Map // model ID -> *[2]*url.URL, [0] converse, [1] converse-stream
}

// New returns a Provider for o. With nil o.Credentials it loads the standard
// AWS credential chain, which reads environment and files but retrieves no
// credentials yet: they are fetched (and cached) on the first request.
func New(ctx context.Context, o Options) (*Provider, error) {
	if o.Region == "" {
		return nil, fmt.Errorf("provider %q: region is required", o.Name)
	}
	base := "https://bedrock-runtime." + o.Region + ".amazonaws.com"
	if o.BaseURL != nil {
		base = strings.TrimSuffix(o.BaseURL.String(), "/")
	}
	if _, err := url.Parse(base); err != nil {
		return nil, fmt.Errorf("provider %q: base URL: %w", o.Name, err)
	}
	creds := o.Credentials
	switch creds.(type) {
	case nil:
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(o.Region))
		if err != nil {
			return nil, fmt.Errorf("provider %q: load AWS config: %w", o.Name, err)
		}
		if cfg.Credentials == nil {
			return nil, fmt.Errorf("provider %q: no AWS credentials configured", o.Name)
		}
		creds = cfg.Credentials // LoadDefaultConfig returns an aws.CredentialsCache
	case *aws.CredentialsCache, credentials.StaticCredentialsProvider:
	default:
		creds = aws.NewCredentialsCache(creds)
	}
	p := &Provider{
		name:   o.Name,
		region: o.Region,
		base:   base,
		creds:  creds,
		signer: v4.NewSigner(),
		header: http.Header{"Content-Type": {"application/json"}},
		now:    time.Now,
	}
	for k, v := range o.Headers {
		p.header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	return p, nil
}

// StaticCredentials returns a provider of fixed credentials, for keys that
// come from the gateway's own configuration. session may be empty.
func StaticCredentials(akid, secret, session string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(akid, secret, session)
}

// Name returns the provider's name.
func (p *Provider) Name() string { return p.name }

// modelURL returns a copy of the Converse (stream false) or ConverseStream
// URL for model. The signer writes URL.RawQuery, so each request gets its
// own copy of the cached URL.
func (p *Provider) modelURL(model string, stream bool) (*url.URL, error) {
	i := 0
	if stream {
		i = 1
	}
	if v, ok := p.urls.Load(model); ok {
		u := *v.(*[2]*url.URL)[i]
		return &u, nil
	}
	var urls [2]*url.URL
	prefix := p.base + "/model/" + escapePathSegment(model)
	for j, suffix := range [2]string{"/converse", "/converse-stream"} {
		u, err := url.Parse(prefix + suffix)
		if err != nil {
			return nil, fmt.Errorf("provider %q model %q: %w", p.name, model, err)
		}
		urls[j] = u
	}
	v, _ := p.urls.LoadOrStore(model, &urls)
	u := *v.(*[2]*url.URL)[i]
	return &u, nil
}

// escapePathSegment percent-encodes every byte but RFC 3986's unreserved
// characters. url.PathEscape would leave ':' (in every versioned model ID,
// e.g. "...-v1:0") and other sub-delimiters as they are; the AWS SDKs
// (smithy-go httpbinding.EscapePath) encode them, so the path on the wire —
// and the canonical URI SigV4 signs — is the one Bedrock sees from its own
// SDKs. ARNs' slashes become %2F and stay inside the segment.
func escapePathSegment(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

var (
	acceptEventStream = []string{"application/vnd.amazon.eventstream"}
	acceptJSON        = []string{"application/json"}
)

// newSignedRequest builds and signs a POST of body to u.
func (p *Provider) newSignedRequest(ctx context.Context, u *url.URL, body []byte, stream bool) (*http.Request, error) {
	h := make(http.Header, len(p.header)+4)
	for k, v := range p.header {
		h[k] = v
	}
	if stream {
		h["Accept"] = acceptEventStream
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
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
		ContentLength: int64(len(body)),
		Host:          u.Host,
	}
	req = req.WithContext(ctx)
	// Retrieve per request: the cache refreshes expiring credentials (STS,
	// SSO, instance roles) and serves the rest from memory.
	creds, err := p.creds.Retrieve(ctx)
	if err != nil {
		return nil, apierr.Wrap(apierr.UpstreamUnavailable, fmt.Errorf("provider %q: retrieve AWS credentials: %w", p.name, err),
			"the upstream provider is not available")
	}
	sum := sha256.Sum256(body)
	if err := p.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), signingService, p.region, p.now()); err != nil {
		return nil, apierr.Wrap(apierr.Internal, fmt.Errorf("provider %q: sign request: %w", p.name, err), "internal error")
	}
	return req, nil
}
