// Package config loads, checks and describes Multipolar's one YAML file.
//
// Loading runs in a fixed order: strict decode (an unknown key is an error
// with its path), ${ENV_VAR} expansion, defaults, then validation that reports
// every problem with its field path. A *Config is immutable once Load returns;
// a reload builds a new one.
package config

import (
	"log/slog"
	"net/url"
	"time"
)

// Provider types understood by the gateway. Each is served by a provider
// adapter registered in the server's wiring file.
const (
	TypeOpenAI           = "openai"
	TypeAzureOpenAI      = "azure-openai"
	TypeOpenAICompatible = "openai-compatible"
	TypeAnthropic        = "anthropic"
	TypeBedrock          = "bedrock"
	TypeGemini           = "gemini"
	TypeVertex           = "vertex"
	TypeVertexAnthropic  = "vertex-anthropic"
)

// ProviderTypes lists every provider type, in the order error messages name
// them.
var ProviderTypes = []string{TypeOpenAI, TypeAzureOpenAI, TypeOpenAICompatible, TypeAnthropic,
	TypeBedrock, TypeGemini, TypeVertex, TypeVertexAnthropic}

// Default base URLs by provider type; types without one either require
// base_url or derive it from region.
var defaultBaseURL = map[string]string{
	TypeOpenAI:    DefaultOpenAIBaseURL,
	TypeAnthropic: "https://api.anthropic.com",
	TypeGemini:    "https://generativelanguage.googleapis.com",
}

// Config is the whole file. Fields are documented for the README's config
// reference; yaml tags are the keys accepted in the file.
type Config struct {
	// Listen is the address the gateway serves on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// Log sets the log level and format.
	Log Log `yaml:"log"`
	// Server holds HTTP server limits.
	Server Server `yaml:"server"`
	// Timeouts apply to every upstream attempt unless a provider overrides them.
	Timeouts Timeouts `yaml:"timeouts"`
	// Admin protects /admin/*.
	Admin Admin `yaml:"admin"`
	// Providers are the upstreams, each with its own credentials.
	Providers []Provider `yaml:"providers"`
	// Models are the client-facing model names and the routes that serve them.
	Models []Model `yaml:"models"`
	// Keys are the virtual keys clients present.
	Keys []Key `yaml:"keys"`
	// Teams group keys under shared budgets and limits.
	Teams []Team `yaml:"teams"`
	// Ledger is where usage records go.
	Ledger Ledger `yaml:"ledger"`
	// Limits is where budget reservations and rate-limit counters live.
	Limits Limits `yaml:"limits"`
	// Prices override or extend the built-in price catalog.
	Prices []PriceEntry `yaml:"prices"`
	// Timezone is the default zone for budget periods. Default UTC.
	Timezone string `yaml:"timezone"`
	// Agreements are the organisation's deals; routing acts on them.
	Agreements []Agreement `yaml:"agreements"`
	// Policies constrain routing per workload.
	Policies []Policy `yaml:"policies"`
	// Routing tunes retries and provider health.
	Routing Routing `yaml:"routing"`
}

// Log configures the structured request log.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json or text. Default json.
	Format string `yaml:"format"`
}

// SlogLevel returns Level as a slog.Level; Level is validated at load.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Server holds the limits of the client-facing HTTP server.
type Server struct {
	// MaxBody is the largest request body accepted, e.g. "32MiB". Default 32MiB.
	MaxBody ByteSize `yaml:"max_body"`
	// DrainTimeout bounds how long shutdown waits for in-flight requests and
	// streams. Default 30s.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes idle client keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// Timeouts bound upstream attempts. Zero fields take the defaults.
type Timeouts struct {
	// Connect bounds dialing (and TLS) to an upstream. Default 5s.
	Connect Duration `yaml:"connect"`
	// FirstByte bounds the wait for an upstream's response headers. A
	// non-streamed completion only answers when it is done, so this is
	// generous. Default 120s.
	FirstByte Duration `yaml:"first_byte"`
	// StreamIdle bounds the gap between two reads of a streamed body.
	// Default 60s.
	StreamIdle Duration `yaml:"stream_idle"`
	// Request bounds one client request across all its attempts. Default 10m.
	Request Duration `yaml:"request"`
}

// Admin configures the admin API.
type Admin struct {
	// Token is the bearer token for /admin/*. When empty, /admin/* answers 404.
	Token Secret `yaml:"token"`
}

// Provider is one upstream account.
type Provider struct {
	// Name identifies the provider in routes, headers, metrics and logs.
	Name string `yaml:"name"`
	// Type is openai, azure-openai, openai-compatible, anthropic, bedrock,
	// gemini, vertex or vertex-anthropic.
	Type string `yaml:"type"`
	// BaseURL is the upstream's base. For openai and openai-compatible it is
	// what an OpenAI SDK takes as its base URL, /v1 included. For
	// azure-openai it is the resource endpoint (https://NAME.openai.azure.com).
	// Default for openai: https://api.openai.com/v1.
	BaseURL string `yaml:"base_url"`
	// APIKey is the upstream credential, a ${ENV_VAR} reference. Required for
	// openai, azure-openai, anthropic and gemini; optional for
	// openai-compatible; not used by bedrock and vertex*.
	APIKey Secret `yaml:"api_key"`
	// AnthropicVersion is the anthropic-version header. anthropic only.
	// Default 2023-06-01.
	AnthropicVersion string `yaml:"anthropic_version"`
	// Region is where the provider runs: the AWS region (bedrock) or the
	// Google Cloud location (vertex, vertex-anthropic; "global" allowed),
	// required for those; for every type, the region routing policies
	// check for data residency.
	Region string `yaml:"region"`
	// Project is the Google Cloud project. vertex and vertex-anthropic only.
	Project string `yaml:"project"`
	// AWS holds static AWS credentials for bedrock; omitted, the standard
	// AWS chain (environment, shared config, instance role) is used.
	AWS *AWSCredentials `yaml:"aws"`
	// Credentials is a Google service-account JSON, a ${ENV_VAR} reference,
	// for vertex and vertex-anthropic; omitted, Application Default
	// Credentials are used.
	Credentials Secret `yaml:"credentials"`
	// CredentialsFile is a path to a Google service-account JSON file, the
	// alternative to Credentials.
	CredentialsFile string `yaml:"credentials_file"`
	// APIVersion selects Azure's classic deployment URLs
	// (/openai/deployments/{deployment}/...?api-version=); omit it for the
	// /openai/v1 form. azure-openai only.
	APIVersion string `yaml:"api_version"`
	// Deployments maps an upstream model name to an Azure deployment name.
	// A model missing from the map uses its own name as the deployment.
	// azure-openai only.
	Deployments map[string]string `yaml:"deployments"`
	// Headers are extra request headers sent to this upstream (for example
	// OpenAI-Organization). Values may hold ${ENV_VAR} references.
	Headers map[string]string `yaml:"headers"`
	// Timeouts override the top-level timeouts for this provider.
	Timeouts Timeouts `yaml:"timeouts"`
	// Capacity is the provider's provisioned throughput (requests and
	// tokens per minute), already paid for; routing refuses it when used.
	Capacity RateLimits `yaml:"capacity"`
	// Capabilities the provider offers (tools, vision, json); omitted means
	// all of them.
	Capabilities []string `yaml:"capabilities"`
	// Serves are globs of client-facing models the provider can serve,
	// which lets a first-refusal holder be offered models its routes do not
	// name. Omitted: only the models whose routes name it.
	Serves []string `yaml:"serves"`
	// Counterparty is the company that bills for this provider (several
	// providers may share one, e.g. two Azure regions); settlement groups
	// statements by it. Default: the provider's name.
	Counterparty string `yaml:"counterparty"`

	// URL is BaseURL parsed at load time.
	URL *url.URL `yaml:"-"`
}

// AWSCredentials are static AWS credentials, each a ${ENV_VAR} reference.
type AWSCredentials struct {
	AccessKeyID     Secret `yaml:"access_key_id"`
	SecretAccessKey Secret `yaml:"secret_access_key"`
	// SessionToken is optional (temporary credentials).
	SessionToken Secret `yaml:"session_token"`
}

// Model is one client-facing model name.
type Model struct {
	// Name is what clients put in "model".
	Name string `yaml:"name"`
	// Routes are tried in order: the first is offered the request first.
	Routes []Route `yaml:"routes"`
	// Family is the model family (openai, anthropic, llama…), for
	// policies; routes inherit it.
	Family string `yaml:"family"`
	// MaxOutputTokens is the most the model can write; a budget
	// reservation assumes it when a request sets no max_tokens.
	// Default 16384.
	MaxOutputTokens int `yaml:"max_output_tokens"`
}

// Route is one tier of a model's routes. In YAML it is a provider name,
// {provider: NAME, model: UPSTREAM_MODEL}, or a group
// {strategy: weighted|least-latency|least-busy|cheapest, members: [...]}
// whose members are ordered by the strategy.
type Route struct {
	// Provider names an entry of providers (not set on a group).
	Provider string `yaml:"provider"`
	// Model is the name the upstream knows the model by; empty means the
	// client-facing name.
	Model string `yaml:"model"`
	// Family is the upstream model's family (openai, anthropic, llama…),
	// for policies that forbid falling back to another family; default the
	// model's family.
	Family string `yaml:"family"`
	// Weight is a member's share under the weighted strategy.
	Weight int `yaml:"weight"`
	// Strategy orders a group's members: weighted, least-latency (EWMA of
	// time to first byte), least-busy (fewest in flight) or cheapest (by
	// the price catalog); empty keeps their order.
	Strategy string `yaml:"strategy"`
	// Members make this entry a group tier.
	Members []Route `yaml:"members"`
}

// Key is one virtual key.
type Key struct {
	// Name identifies the key in logs and metrics; never the secret.
	Name string `yaml:"name"`
	// Key is the secret clients send as a bearer token, a ${ENV_VAR} reference.
	Key Secret `yaml:"key"`
	// Models are globs (path.Match syntax) of the models this key may use;
	// omitted means every model.
	Models []string `yaml:"models"`
	// Team names the team the key belongs to, if any.
	Team string `yaml:"team"`
	// Workload is the default workload of the key's requests.
	Workload string `yaml:"workload"`
	// Budgets cap the key's spend.
	Budgets []Budget `yaml:"budgets"`
	// Limits are the key's requests and tokens per minute.
	Limits RateLimits `yaml:"limits"`
	// Expires is when the key stops working; zero means never.
	Expires Date `yaml:"expires"`
}

// Defaults.
const (
	DefaultListen            = "127.0.0.1:8080"
	DefaultMaxBody           = ByteSize(32 << 20)
	DefaultDrainTimeout      = Duration(30 * time.Second)
	DefaultReadHeaderTimeout = Duration(10 * time.Second)
	DefaultIdleTimeout       = Duration(120 * time.Second)
	DefaultConnectTimeout    = Duration(5 * time.Second)
	DefaultFirstByteTimeout  = Duration(120 * time.Second)
	DefaultStreamIdleTimeout = Duration(60 * time.Second)
	DefaultRequestTimeout    = Duration(10 * time.Minute)
	DefaultOpenAIBaseURL     = "https://api.openai.com/v1"
)

// Merge returns t with its zero fields taken from def.
func (t Timeouts) Merge(def Timeouts) Timeouts {
	if t.Connect == 0 {
		t.Connect = def.Connect
	}
	if t.FirstByte == 0 {
		t.FirstByte = def.FirstByte
	}
	if t.StreamIdle == 0 {
		t.StreamIdle = def.StreamIdle
	}
	if t.Request == 0 {
		t.Request = def.Request
	}
	return t
}

// Secret is a credential. It never prints its value.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret for %#v, which would otherwise print it.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// MarshalText redacts the secret in JSON and other text encodings, so that
// a Config dumped by the admin API or a JSON slog handler does not leak it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Value returns the secret itself, for the one place that must send it.
func (s Secret) Value() string { return string(s) }

// Duration is a time.Duration written as "5s", "2m" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ByteSize is a size in bytes written as 1024, "64KiB", "32MiB" or "1GiB".
type ByteSize int64
