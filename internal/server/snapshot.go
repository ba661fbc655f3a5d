package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"github.com/multipolar/multipolar/internal/contract"
	"net"
	"net/http"
	"os"
	"path"
	"sort"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/multipolar/multipolar/internal/admin"
	"github.com/multipolar/multipolar/internal/budget"
	"github.com/multipolar/multipolar/internal/config"
	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/pricing"
	provanthropic "github.com/multipolar/multipolar/internal/provider/anthropic"
	"github.com/multipolar/multipolar/internal/provider/bedrock"
	"github.com/multipolar/multipolar/internal/provider/gemini"
	provopenai "github.com/multipolar/multipolar/internal/provider/openai"
	"github.com/multipolar/multipolar/internal/proxy"
	"github.com/multipolar/multipolar/internal/ratelimit"
	"github.com/multipolar/multipolar/internal/route"
)

// snapshot is everything the request path needs from one configuration,
// compiled once. It is immutable; a reload builds a new one and swaps it in.
type snapshot struct {
	cfg          *config.Config
	keys         map[[sha256.Size]byte]*keyEntry
	models       map[string]*modelEntry
	adminToken   [sha256.Size]byte
	hasAdmin     bool
	maxBody      int64
	reqTimeout   time.Duration
	transports   []*http.Transport
	loadedAtUnix int64
	catalog      *pricing.Catalog
	// modelNames are the configured models, sorted.
	modelNames []string
	// dynamic resolves keys created through the admin API.
	dynamic *dynamicKeys
	// router decides where each request goes; providerTargets are the
	// providers' targets in configuration order (route's ProviderIndex).
	router          *route.Router
	providerTargets []proxy.Target
	// contracts are the agreements compiled: they name each record's
	// agreements and keep the commitments' live burn.
	contracts *contract.Set
	retry     proxy.Retry
	// capsMatter: some provider lacks a capability, so what a request
	// needs must be sniffed for routing.
	capsMatter bool
	// sharedCapacity is each provider's capacity as a rate limit kept in
	// Redis (limits.driver redis), by provider index; nil otherwise.
	sharedCapacity [][]ratelimit.Limit
}

type keyEntry struct {
	name     string
	team     string
	workload string
	hash     [sha256.Size]byte
	// budgets are the key's and its team's; limits likewise.
	budgets []budget.Budget
	limits  []ratelimit.Limit
	expires time.Time
	allowed map[string]bool // every configured model this key may use
	// modelsJSON and modelsAnthropicJSON are the precomputed GET /v1/models
	// answers for this key, in OpenAI's and Anthropic's shapes.
	modelsJSON          []byte
	modelsAnthropicJSON []byte
}

type modelEntry struct {
	name      string
	maxOutput int
}

// adapter is what a provider type offers the engine: a passthrough for
// clients of its own API, a translation for the others, or both.
type adapter struct {
	up   proxy.Upstream // nil when the provider is reached only by translation
	api  proxy.API
	chat proxy.ChatProvider // nil when the provider has no translation
}

// adapterFactory builds a provider's adapter. The server's wiring lists one
// per config type.
type adapterFactory func(p *config.Provider) (adapter, error)

// factories is the wiring: one entry per provider type.
var factories = map[string]adapterFactory{
	config.TypeOpenAI:           newOpenAI(provopenai.FlavorOpenAI),
	config.TypeOpenAICompatible: newOpenAI(provopenai.FlavorOpenAI),
	config.TypeAzureOpenAI:      newOpenAI(provopenai.FlavorAzure),
	config.TypeAnthropic:        newAnthropic,
	config.TypeVertexAnthropic:  newAnthropic,
	config.TypeBedrock:          newBedrock,
	config.TypeGemini:           newGemini,
	config.TypeVertex:           newGemini,
}

// newAnthropic builds the adapter for Anthropic's API or Claude on Vertex
// AI: a passthrough for Anthropic clients and a translation for the others.
func newAnthropic(p *config.Provider) (adapter, error) {
	o := provanthropic.Options{Name: p.Name, BaseURL: p.URL, APIKey: p.APIKey.Value(), Version: p.AnthropicVersion,
		Vertex: p.Type == config.TypeVertexAnthropic, Project: p.Project, Region: p.Region, Headers: p.Headers}
	if o.Vertex {
		ts, err := googleTokenSource(p)
		if err != nil {
			return adapter{}, err
		}
		ts = oauth2.ReuseTokenSource(nil, ts)
		o.TokenSource = func(context.Context) (string, error) {
			tok, err := ts.Token()
			if err != nil {
				return "", err
			}
			return tok.AccessToken, nil
		}
	}
	pr, err := provanthropic.New(o)
	if err != nil {
		return adapter{}, err
	}
	return adapter{up: pr, api: proxy.APIAnthropic, chat: pr}, nil
}

// newBedrock builds the Bedrock Converse adapter, reached by translation
// only, with the configured static credentials or the standard AWS chain.
func newBedrock(p *config.Provider) (adapter, error) {
	o := bedrock.Options{Name: p.Name, Region: p.Region, BaseURL: p.URL, Headers: p.Headers}
	if a := p.AWS; a != nil {
		o.Credentials = bedrock.StaticCredentials(a.AccessKeyID.Value(), a.SecretAccessKey.Value(), a.SessionToken.Value())
	}
	pr, err := bedrock.New(context.Background(), o)
	if err != nil {
		return adapter{}, err
	}
	return adapter{chat: pr}, nil
}

// newGemini builds the Gemini API or Vertex AI adapter; both are reached by
// translation only.
func newGemini(p *config.Provider) (adapter, error) {
	o := gemini.Options{Name: p.Name, Vertex: p.Type == config.TypeVertex, BaseURL: p.URL,
		APIKey: p.APIKey.Value(), Project: p.Project, Region: p.Region, Headers: p.Headers}
	if o.Vertex {
		ts, err := googleTokenSource(p)
		if err != nil {
			return adapter{}, err
		}
		o.TokenSource = ts
	}
	pr, err := gemini.New(o)
	if err != nil {
		return adapter{}, err
	}
	return adapter{chat: pr}, nil
}

// googleTokenSource reads a Vertex provider's service account from
// credentials or credentials_file, or falls back to Application Default
// Credentials.
func googleTokenSource(p *config.Provider) (oauth2.TokenSource, error) {
	js := []byte(p.Credentials.Value())
	if p.CredentialsFile != "" {
		b, err := os.ReadFile(p.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("read credentials_file: %w", err)
		}
		js = b
	}
	ts, err := gemini.VertexTokenSource(context.Background(), js)
	if err != nil {
		return nil, fmt.Errorf("google credentials: %w", err)
	}
	return ts, nil
}

func newOpenAI(f provopenai.Flavor) adapterFactory {
	return func(p *config.Provider) (adapter, error) {
		pr, err := provopenai.New(provopenai.Options{
			Name:        p.Name,
			Flavor:      f,
			BaseURL:     p.URL,
			APIKey:      p.APIKey.Value(),
			APIVersion:  p.APIVersion,
			Deployments: p.Deployments,
			Headers:     p.Headers,
		})
		if err != nil {
			return adapter{}, err
		}
		ad := adapter{up: pr, api: proxy.APIOpenAI}
		ad.chat, _ = any(pr).(proxy.ChatProvider) // translation, where the package offers it
		return ad, nil
	}
}

// newTransport returns the upstream transport for one provider's timeouts.
func newTransport(t config.Timeouts) *http.Transport {
	d := &net.Dialer{Timeout: t.Connect.D(), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   t.Connect.D(),
		ResponseHeaderTimeout: t.FirstByte.D(),
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
		// Bodies pass through as the upstream sent them; the client's own
		// Accept-Encoding is not forwarded, so nothing arrives compressed.
		DisableCompression: true,
	}
}

func hashSecret(s string) [sha256.Size]byte { return sha256.Sum256([]byte(s)) }

// buildSnapshot compiles cfg; keys, when not nil, holds the keys created
// through the admin API.
func buildSnapshot(cfg *config.Config, keys admin.KeyStore, prev *snapshot) (*snapshot, error) {
	s := &snapshot{
		cfg:          cfg,
		keys:         make(map[[sha256.Size]byte]*keyEntry, len(cfg.Keys)),
		models:       make(map[string]*modelEntry, len(cfg.Models)),
		maxBody:      int64(cfg.Server.MaxBody),
		reqTimeout:   cfg.Timeouts.Request.D(),
		loadedAtUnix: time.Now().Unix(),
	}
	if tok := cfg.Admin.Token.Value(); tok != "" {
		s.adminToken, s.hasAdmin = hashSecret(tok), true
	}
	var err error
	for i := range cfg.Providers {
		p := &cfg.Providers[i]
		f, ok := factories[p.Type]
		if !ok {
			return nil, fmt.Errorf("providers[%d]: no adapter for type %q", i, p.Type)
		}
		ad, err := f(p)
		if err != nil {
			return nil, fmt.Errorf("providers[%d]: %w", i, err)
		}
		tr := newTransport(p.Timeouts)
		s.transports = append(s.transports, tr)
		s.providerTargets = append(s.providerTargets, proxy.Target{Name: p.Name, Upstream: ad.up, API: ad.api, Chat: ad.chat,
			Transport: tr, StreamIdle: p.Timeouts.StreamIdle.D()})
	}
	for i := range cfg.Models {
		m := &cfg.Models[i]
		me := &modelEntry{name: m.Name, maxOutput: m.MaxOutputTokens}
		s.models[m.Name] = me
	}
	s.modelNames = make([]string, 0, len(s.models))
	for n := range s.models {
		s.modelNames = append(s.modelNames, n)
	}
	sort.Strings(s.modelNames)
	if s.catalog, err = buildCatalog(cfg); err != nil {
		return nil, err
	}
	for i := range cfg.Keys {
		ke, err := s.compileKey(&cfg.Keys[i], hashSecret(cfg.Keys[i].Key.Value()))
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		s.keys[ke.hash] = ke
	}
	s.dynamic = &dynamicKeys{store: keys, snap: s, cache: make(map[[sha256.Size]byte]cachedKey)}
	var prevRouter *route.Router
	var prevContracts *contract.Set
	if prev != nil {
		prevRouter, prevContracts = prev.router, prev.contracts
	}
	if s.contracts, err = contract.Compile(cfg, prevContracts); err != nil {
		return nil, fmt.Errorf("agreements: %w", err)
	}
	if s.router, err = buildRouter(cfg, s.catalog, s.contracts, prevRouter); err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	s.retry = retryPolicy(cfg.Routing)
	for i := range cfg.Providers {
		if c := len(cfg.Providers[i].Capabilities); c > 0 && c < 3 {
			s.capsMatter = true
		}
	}
	if cfg.Limits.Driver == "redis" {
		s.sharedCapacity = make([][]ratelimit.Limit, len(cfg.Providers))
		for i, p := range cfg.Providers {
			if p.Capacity.RPM > 0 || p.Capacity.TPM > 0 {
				s.sharedCapacity[i] = []ratelimit.Limit{{Name: "provider:" + p.Name, RPM: p.Capacity.RPM, TPM: p.Capacity.TPM}}
			}
		}
	}
	return s, nil
}

// globsMatch reports whether name matches any glob; no globs match all.
func globsMatch(globs []string, name string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// modelList renders OpenAI's model list for the allowed names.
func modelList(names []string, allowed map[string]bool, created int64) []byte {
	b := []byte(`{"object":"list","data":[`)
	first := true
	for _, n := range names {
		if !allowed[n] {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"id":`...)
		b = llm.AppendJSONString(b, n)
		b = append(b, `,"object":"model","created":`...)
		b = strconv.AppendInt(b, created, 10)
		b = append(b, `,"owned_by":"multipolar"}`...)
	}
	return append(b, "]}"...)
}

// anthropicModelList renders Anthropic's model list (one page holding all).
func anthropicModelList(names []string, allowed map[string]bool, created int64) []byte {
	ts := time.Unix(created, 0).UTC().Format(time.RFC3339)
	b := []byte(`{"data":[`)
	var first, last string
	for _, n := range names {
		if !allowed[n] {
			continue
		}
		if first != "" {
			b = append(b, ',')
		} else {
			first = n
		}
		last = n
		b = append(b, `{"type":"model","id":`...)
		b = llm.AppendJSONString(b, n)
		b = append(b, `,"display_name":`...)
		b = llm.AppendJSONString(b, n)
		b = append(b, `,"created_at":"`...)
		b = append(b, ts...)
		b = append(b, `","lifecycle":"active","line":null,"deprecated_at":null,"retires_at":null,"max_input_tokens":null,"max_tokens":null,"capabilities":null}`...) // the spec requires these; unknown here
	}
	b = append(b, `],"has_more":false,"first_id":`...)
	b = appendNullable(b, first)
	b = append(b, `,"last_id":`...)
	b = appendNullable(b, last)
	return append(b, '}')
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return llm.AppendJSONString(b, s)
}

// close releases idle upstream connections of a snapshot that was replaced.
// Requests still running on it keep their connections.
func (s *snapshot) close() {
	for _, t := range s.transports {
		t.CloseIdleConnections()
	}
}
