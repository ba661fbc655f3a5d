package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// validator checks a decoded, defaulted Config. It also fills in derived
// fields (Provider.URL) as it goes.
type validator struct {
	probs      *problems
	secretRefs map[string]string
}

func (v *validator) errorf(path, format string, args ...any) {
	v.probs.add(path, fmt.Sprintf(format, args...))
}

func (v *validator) config(c *Config) {
	v.listen(c.Listen)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.errorf("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		v.errorf("log.format", "unknown format %q (want json or text)", c.Log.Format)
	}
	if c.Server.MaxBody <= 0 {
		v.errorf("server.max_body", "must be positive")
	}
	v.positive("server.drain_timeout", c.Server.DrainTimeout)
	v.positive("server.read_header_timeout", c.Server.ReadHeaderTimeout)
	v.positive("server.idle_timeout", c.Server.IdleTimeout)
	v.timeouts("timeouts", c.Timeouts)
	// admin.token may be omitted (admin API off), but a reference that
	// resolves empty is a mistake, not a way to disable it.
	if _, ok := v.secretRefs["admin.token"]; ok {
		v.requiredSecret("admin.token", c.Admin.Token)
	}

	if len(c.Providers) == 0 {
		v.errorf("providers", "at least one provider is required")
	}
	providers := map[string]int{}
	for i := range c.Providers {
		v.provider(fmt.Sprintf("providers[%d]", i), &c.Providers[i], providers, i)
	}

	if len(c.Models) == 0 {
		v.errorf("models", "at least one model is required")
	}
	models := map[string]int{}
	for i := range c.Models {
		v.model(fmt.Sprintf("models[%d]", i), &c.Models[i], providers, models, i)
	}

	// Zero keys is allowed: every request is then refused with 401.
	names, secrets := map[string]int{}, map[Secret]int{}
	for i := range c.Keys {
		v.key(fmt.Sprintf("keys[%d]", i), &c.Keys[i], names, secrets, i)
	}
	v.metering(c, providers)
	v.routing(c, providers)
}

func (v *validator) listen(addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		reason := err.Error()
		if ae, ok := errors.AsType[*net.AddrError](err); ok {
			reason = ae.Err
		}
		v.errorf("listen", "%q is not host:port: %s", addr, reason)
		return
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 && port != "0" {
		v.errorf("listen", "%q has an invalid port %q", addr, port)
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.errorf(path, "must be positive, got %s", d.D())
	}
}

func (v *validator) timeouts(path string, t Timeouts) {
	v.positive(path+".connect", t.Connect)
	v.positive(path+".first_byte", t.FirstByte)
	v.positive(path+".stream_idle", t.StreamIdle)
	v.positive(path+".request", t.Request)
}

// requiredSecret reports an empty secret, naming its variable when the file
// referenced one that is set but empty.
func (v *validator) requiredSecret(path string, s Secret) {
	if s != "" {
		return
	}
	if name, ok := v.secretRefs[path]; ok {
		v.errorf(path, "environment variable %s is empty", name)
		return
	}
	v.errorf(path, "required")
}

var providerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)

// gatewayHeaders are set by the gateway itself for each upstream call.
var gatewayHeaders = []string{"Authorization", "api-key", "Host", "Content-Length"}

func (v *validator) provider(p string, pr *Provider, seen map[string]int, i int) {
	switch {
	case pr.Name == "":
		v.errorf(p+".name", "required")
	case !providerName.MatchString(pr.Name):
		v.errorf(p+".name", "%q must start with a letter or digit and hold only letters, digits, '.', '_' and '-'", pr.Name)
	default:
		if first, dup := seen[pr.Name]; dup {
			v.errorf(p+".name", "duplicate provider name %q (first at providers[%d])", pr.Name, first)
		} else {
			seen[pr.Name] = i
		}
	}

	known := slices.Contains(ProviderTypes, pr.Type)
	switch {
	case pr.Type == "":
		v.errorf(p+".type", "required (one of %s)", strings.Join(ProviderTypes, ", "))
	case !known:
		v.errorf(p+".type", "unknown provider type %q (want one of %s)", pr.Type, strings.Join(ProviderTypes, ", "))
	}

	if pr.BaseURL == "" {
		if pr.Type == TypeAzureOpenAI || pr.Type == TypeOpenAICompatible {
			v.errorf(p+".base_url", "required for type %s", pr.Type)
		}
	} else if u, msg := parseBaseURL(pr.BaseURL); msg != "" {
		v.errorf(p+".base_url", "%s", msg)
	} else {
		pr.URL = u
	}

	switch pr.Type {
	case TypeOpenAI, TypeAzureOpenAI, TypeAnthropic, TypeGemini:
		v.requiredSecret(p+".api_key", pr.APIKey)
	case TypeBedrock, TypeVertex, TypeVertexAnthropic:
		if pr.APIKey != "" {
			v.errorf(p+".api_key", "not used by type %s (see the README for its credentials)", pr.Type)
		}
	}
	if known {
		v.cloudFields(p, pr)
	}
	if known && pr.Type != TypeAzureOpenAI {
		if pr.APIVersion != "" {
			v.errorf(p+".api_version", "only allowed for type %s", TypeAzureOpenAI)
		}
		if pr.Deployments != nil {
			v.errorf(p+".deployments", "only allowed for type %s", TypeAzureOpenAI)
		}
	}
	for _, model := range sortedKeys(pr.Deployments) {
		if pr.Deployments[model] == "" {
			v.errorf(joinKey(p+".deployments", model), "deployment name required")
		}
	}
	for _, name := range sortedKeys(pr.Headers) {
		hp := joinKey(p+".headers", name)
		switch {
		case !isToken(name):
			v.errorf(hp, "%q is not a valid header name", name)
		case isGatewayHeader(name):
			v.errorf(hp, "%s is set by the gateway and cannot be configured", http.CanonicalHeaderKey(name))
		case strings.ContainsAny(pr.Headers[name], "\r\n\x00"):
			v.errorf(hp, "header value must not contain CR, LF or NUL")
		}
	}
	v.timeouts(p+".timeouts", pr.Timeouts)
}

// cloudFields checks the fields that belong to some provider types only.
func (v *validator) cloudFields(p string, pr *Provider) {
	onlyFor := func(field string, set bool, types ...string) {
		if set && !slices.Contains(types, pr.Type) {
			v.errorf(p+"."+field, "only allowed for type %s", strings.Join(types, ", "))
		}
	}
	google := []string{TypeVertex, TypeVertexAnthropic}
	onlyFor("anthropic_version", pr.AnthropicVersion != "", TypeAnthropic)
	onlyFor("project", pr.Project != "", google...)
	onlyFor("aws", pr.AWS != nil, TypeBedrock)
	onlyFor("credentials", pr.Credentials != "", google...)
	onlyFor("credentials_file", pr.CredentialsFile != "", google...)
	switch pr.Type {
	case TypeBedrock:
		if pr.Region == "" {
			v.errorf(p+".region", "required for type %s (an AWS region such as us-east-1)", pr.Type)
		}
		if a := pr.AWS; a != nil {
			v.requiredSecret(p+".aws.access_key_id", a.AccessKeyID)
			v.requiredSecret(p+".aws.secret_access_key", a.SecretAccessKey)
		}
	case TypeVertex, TypeVertexAnthropic:
		if pr.Region == "" {
			v.errorf(p+".region", "required for type %s (a Google Cloud location such as us-east5, or global)", pr.Type)
		}
		if pr.Project == "" {
			v.errorf(p+".project", "required for type %s", pr.Type)
		}
		if pr.Credentials != "" && pr.CredentialsFile != "" {
			v.errorf(p+".credentials_file", "give credentials or credentials_file, not both")
		}
	}
}

// parseBaseURL accepts an absolute http(s) URL without query, fragment or
// credentials and trims the trailing slash from its path.
func parseBaseURL(s string) (*url.URL, string) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Sprintf("%q is not a valid URL", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Sprintf("%q must be an absolute http or https URL", s)
	case u.Host == "":
		return nil, fmt.Sprintf("%q has no host", s)
	case u.User != nil:
		return nil, "must not hold credentials; use api_key or headers"
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Sprintf("%q must not have a query", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, fmt.Sprintf("%q must not have a fragment", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, ""
}

func isGatewayHeader(name string) bool {
	for _, h := range gatewayHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// isToken reports whether s is an RFC 9110 token, the syntax of header
// names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (v *validator) model(p string, m *Model, providers, seen map[string]int, i int) {
	switch {
	case m.Name == "":
		v.errorf(p+".name", "required")
	default:
		if first, dup := seen[m.Name]; dup {
			v.errorf(p+".name", "duplicate model name %q (first at models[%d])", m.Name, first)
		} else {
			seen[m.Name] = i
		}
	}
	if len(m.Routes) == 0 {
		v.errorf(p+".routes", "at least one route is required")
	}
	type target struct{ provider, model string }
	targets := map[target]string{}
	member := func(rp string, r Route, inGroup bool) {
		switch {
		case inGroup && (len(r.Members) > 0 || r.Strategy != ""):
			v.errorf(rp, "a group's members are providers, not groups")
			return
		case r.Provider == "":
			v.errorf(rp+".provider", "required")
			return
		}
		if _, ok := providers[r.Provider]; !ok {
			v.errorf(rp, "unknown provider %q", r.Provider)
			return
		}
		t := target{r.Provider, r.Model}
		if t.model == "" {
			t.model = m.Name
		}
		if first, dup := targets[t]; dup {
			v.errorf(rp, "duplicate route to provider %q model %q (first at %s)", t.provider, t.model, first)
			return
		}
		targets[t] = rp
	}
	for j, r := range m.Routes {
		rp := fmt.Sprintf("%s.routes[%d]", p, j)
		if len(r.Members) == 0 {
			if r.Strategy != "" {
				v.errorf(rp+".strategy", "only a group (with members) has a strategy")
			}
			if r.Weight != 0 {
				v.errorf(rp+".weight", "only members of a weighted group have a weight")
			}
			member(rp, r, false)
			continue
		}
		if r.Provider != "" || r.Model != "" {
			v.errorf(rp, "a group has members, not a provider")
		}
		if r.Strategy != "" {
			oneOf(v, rp+".strategy", r.Strategy, "weighted", "least-latency", "least-busy", "cheapest")
		}
		for k, mr := range r.Members {
			mp := fmt.Sprintf("%s.members[%d]", rp, k)
			if mr.Weight < 0 || (mr.Weight != 0 && r.Strategy != "weighted") {
				v.errorf(mp+".weight", "a weight must be positive and belongs to a weighted group")
			}
			member(mp, mr, true)
		}
	}
}

func (v *validator) key(p string, k *Key, names map[string]int, secrets map[Secret]int, i int) {
	if k.Name == "" {
		v.errorf(p+".name", "required")
	} else if first, dup := names[k.Name]; dup {
		v.errorf(p+".name", "duplicate key name %q (first at keys[%d])", k.Name, first)
	} else {
		names[k.Name] = i
	}
	v.requiredSecret(p+".key", k.Key)
	if k.Key != "" {
		// Never print the secret itself, only where else it appears.
		if first, dup := secrets[k.Key]; dup {
			v.errorf(p+".key", "same secret as keys[%d]", first)
		} else {
			secrets[k.Key] = i
		}
	}
	for j, glob := range k.Models {
		gp := fmt.Sprintf("%s.models[%d]", p, j)
		if glob == "" {
			v.errorf(gp, "must not be empty")
			continue
		}
		if _, err := path.Match(glob, ""); err != nil {
			v.errorf(gp, "invalid glob %q: %s", glob, err.Error())
		}
	}
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
