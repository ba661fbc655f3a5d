package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// secretEnv holds the variables whose values are secrets: no error text may
// contain them.
var secretEnv = map[string]string{
	"MULTIPOLAR_ADMIN_TOKEN": "adm-secret-value-1",
	"AZURE_EAST_KEY":         "az-secret-value-2",
	"COREWEAVE_KEY":          "cw-secret-value-3",
	"TEAM_SEARCH_KEY":        "team-secret-value-4",
	"TEAM_SEARCH_KEY_COPY":   "team-secret-value-4",
	"OPENAI_KEY":             "oa-secret-value-5",
	"ALL_MODELS_KEY":         "all-secret-value-6",
}

// literalSecrets are secrets written (wrongly) in bad files.
var literalSecrets = []string{"sk-live-literal-0123456789", "sk-literal-in-file"}

func testEnv(name string) (string, bool) {
	if v, ok := secretEnv[name]; ok {
		return v, true
	}
	switch name {
	case "OPENAI_ORG":
		return "org-123", true
	case "EMPTY_KEY":
		return "", true
	}
	return "", false
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var urlComparer = cmp.Comparer(func(a, b *url.URL) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.String() == b.String()
})

func defaultTimeouts() Timeouts {
	return Timeouts{
		Connect:    DefaultConnectTimeout,
		FirstByte:  DefaultFirstByteTimeout,
		StreamIdle: DefaultStreamIdleTimeout,
		Request:    DefaultRequestTimeout,
	}
}

func TestLoadMinimal(t *testing.T) {
	got, err := Load("testdata/minimal.good.yaml", testEnv)
	if err != nil {
		t.Fatalf("Load(minimal) error: %v", err)
	}
	want := &Config{
		Listen: "127.0.0.1:8080",
		Log:    Log{Level: "info", Format: "json"},
		Server: Server{
			MaxBody:           DefaultMaxBody,
			DrainTimeout:      DefaultDrainTimeout,
			ReadHeaderTimeout: DefaultReadHeaderTimeout,
			IdleTimeout:       DefaultIdleTimeout,
		},
		Timeouts: defaultTimeouts(),
		Admin:    Admin{Token: "adm-secret-value-1"},
		Providers: []Provider{
			{
				Name:        "azure-east",
				Type:        TypeAzureOpenAI,
				BaseURL:     "https://example-east.openai.azure.com",
				APIKey:      "az-secret-value-2",
				APIVersion:  "2024-10-21",
				Deployments: map[string]string{"gpt-4o": "gpt4o-prod"},
				Timeouts:    defaultTimeouts(),
				URL:         mustURL(t, "https://example-east.openai.azure.com"),
			},
			{
				Name:     "coreweave",
				Type:     TypeOpenAICompatible,
				BaseURL:  "http://127.0.0.1:18080/v1",
				APIKey:   "cw-secret-value-3",
				Timeouts: defaultTimeouts(),
				URL:      mustURL(t, "http://127.0.0.1:18080/v1"),
			},
		},
		Models:   []Model{{Name: "gpt-4o", Routes: []Route{{Provider: "azure-east"}, {Provider: "coreweave"}}, MaxOutputTokens: DefaultMaxOutputTokens}},
		Keys:     []Key{{Name: "team-search", Key: "team-secret-value-4", Models: []string{"gpt-*"}}},
		Ledger:   Ledger{Driver: "sqlite", Path: "testdata/" + DefaultLedgerPath /* beside the file */, Durability: "batch", QueueSize: DefaultLedgerQueueSize, Overflow: "block", FlushInterval: DefaultLedgerFlush, BatchSize: DefaultLedgerBatchSize},
		Limits:   Limits{Driver: "memory"},
		Timezone: "UTC",
	}
	if diff := cmp.Diff(want, got, urlComparer); diff != "" {
		t.Errorf("Load(minimal) mismatch (-want +got):\n%s", diff)
	}
	if s, want := got.Summary(), "2 providers, 1 model, 1 key"; s != want {
		t.Errorf("Summary() = %q, want %q", s, want)
	}
}

func TestLoadFull(t *testing.T) {
	c, err := Load("testdata/full.good.yaml", testEnv)
	if err != nil {
		t.Fatalf("Load(full) error: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, "0.0.0.0:9090"},
		{"log", c.Log, Log{Level: "debug", Format: "text"}},
		{"slog level", c.Log.SlogLevel(), slog.LevelDebug},
		{"server", c.Server, Server{MaxBody: 64 << 20, DrainTimeout: Duration(45 * time.Second), ReadHeaderTimeout: Duration(5 * time.Second), IdleTimeout: Duration(2 * time.Minute)}},
		{"timeouts", c.Timeouts, Timeouts{Connect: Duration(3 * time.Second), FirstByte: Duration(90 * time.Second), StreamIdle: Duration(30 * time.Second), Request: Duration(15 * time.Minute)}},
		{"ledger", c.Ledger, Ledger{Driver: "sqlite", Path: "/var/lib/multipolar/ledger.db", Durability: "batch", QueueSize: 16384, Overflow: "drop", FlushInterval: Duration(250 * time.Millisecond), BatchSize: 512}},
		{"admin token trimmed", c.Admin.Token.Value(), "adm-secret-value-1"},
		{"openai default base_url", c.Providers[0].BaseURL, DefaultOpenAIBaseURL},
		{"openai URL", c.Providers[0].URL.String(), DefaultOpenAIBaseURL},
		{"headers expanded and escaped", c.Providers[0].Headers, map[string]string{"OpenAI-Organization": "org-123", "X-Literal": "cost ${NOT_A_VAR}"}},
		{"provider timeouts merged", c.Providers[0].Timeouts, Timeouts{Connect: Duration(3 * time.Second), FirstByte: Duration(200 * time.Second), StreamIdle: Duration(30 * time.Second), Request: Duration(15 * time.Minute)}},
		{"azure URL trailing slash trimmed", c.Providers[1].URL.String(), "https://example-east.openai.azure.com"},
		{"azure deployments", c.Providers[1].Deployments, map[string]string{"gpt-4o": "gpt4o-prod", "gpt-4o-mini": "mini-prod"}},
		{"compatible URL path trimmed", c.Providers[2].URL.Path, "/v1"},
		{"empty optional api_key", c.Providers[2].APIKey.Value(), ""},
		{"compatible timeouts", c.Providers[2].Timeouts.Connect, Duration(time.Second)},
		{"provider without key", c.Providers[3].APIKey.Value(), ""},
		{"routes", c.Models[0].Routes, []Route{{Provider: "openai-main"}, {Provider: "azure-east"}, {Provider: "coreweave", Model: "llama-3.1-70b"}}},
		{"flow routes", c.Models[1].Routes, []Route{{Provider: "azure-east"}, {Provider: "openai-main", Model: "gpt-4o-mini-2024-07-18"}}},
		{"block route", c.Models[2].Routes, []Route{{Provider: "local.vllm_2", Model: "meta-llama/Llama-3.1-8B-Instruct"}}},
		{"key without models", c.Keys[1].Models, []string(nil)},
		{"summary", c.Summary(), "4 providers, 3 models, 2 keys"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}

func TestGoodFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f, testEnv); err != nil {
				t.Errorf("Load(%s) error:\n%v", f, err)
			}
		})
	}
}

// badFiles maps each testdata/*.bad.yaml to substrings its error must hold.
var badFiles = map[string][]string{
	"unknown-top-level": {"listn: unknown field"},
	"metering": {
		`ledger.driver: unknown value "mysql" (want sqlite, postgres, none)`,
		`ledger.durability: unknown value "eventually" (want batch, sync)`,
		"ledger.flush_interval: must be at most 1m, got 1h0m0s",
		"ledger.batch_size: must not be negative",
		"limits.url: required",
		`prices[0].input: cannot parse "1e-6" as a decimal amount`,
		`prices[0].provider: unknown provider "nobody"`,
		`teams[0].budgets[0].period: unknown value "yearly"`,
		`keys[0].team: unknown team "ghost"`,
		"keys[0].limits.rpm: must not be negative",
	},
	"routing": {
		`providers[0].capabilities[0]: unknown capability "telepathy"`,
		"models[0].routes[0].strategy: only a group (with members) has a strategy",
		`models[0].routes[1].strategy: unknown value "fastest"`,
		"models[0].routes[1].members[0].weight: a weight must be positive and belongs to a weighted group",
		`agreements[0].type: unknown value "exclusive_cookies" (want first_refusal, exclusivity, commitment, revenue_share, licence, price_terms)`,
		"agreements[0].until: must be after from",
		`agreements[1].holder: unknown provider "nobody"`,
		`policies[0].require[0]: unknown capability "magic"`,
		`policies[0].providers[0]: unknown provider "ghost"`,
	},
	"agreements": {
		"agreements[0].providers: required: the providers the scope is exclusive to",
		"agreements[0].until: required: the date the exclusivity ends",
		`agreements[1].providers[0]: unknown provider "ghost"`,
		`agreements[1].currency: unsupported currency "EUR": the ledger prices in USD`,
		"agreements[1].amount: must be more than 0",
		"agreements[1].minimums: required with pacing: minimums",
		"agreements[1].from: required: a commitment's window starts on a date",
		"agreements[2].rate: must be at most 100%",
		"agreements[2].payee: required: who receives the share",
		`agreements[2].payer: unknown team "nobody"`,
		"agreements[2].holder: not used by a revenue_share agreement",
		"agreements[3].holder: name a team or a key, not both",
		"agreements[3].until: required: a licence needs from, until or both",
		"agreements[4].tiers: write a flat discount or tiers, not both",
		"agreements[4].tiers[1].above: must be greater than the previous tier's",
		`agreements[5].rate: cannot parse "lots" as a rate`,
	},
	"cloud-fields": {
		"providers[0].region: required for type bedrock",
		"providers[1].project: required for type vertex",
		"providers[1].credentials_file: give credentials or credentials_file, not both",
		"providers[2].aws: only allowed for type bedrock",
		"providers[3].api_key: required",
		"providers[4].api_key: not used by type vertex-anthropic",
	},
	"unknown-nested":         {"providers[0].type: required", "providers[0].tyep: unknown field", "keys[0].modles: unknown field"},
	"unset-env":              {"providers[0].api_key: environment variable UNSET_AZURE_KEY is not set", "providers[0].headers.X-Team: environment variable UNSET_TEAM is not set"},
	"literal-secret":         {"keys[0].key: secrets must be given as a ${ENV_VAR} reference, not written in the file"},
	"empty-required-secret":  {"providers[0].api_key: environment variable EMPTY_KEY is empty", "keys[0].key: environment variable EMPTY_KEY is empty"},
	"bad-duration":           {`timeouts.connect: cannot parse "5 seconds" as a duration`},
	"negative-duration":      {"server.drain_timeout: must be positive"},
	"bad-size":               {`server.max_body: cannot parse "lots" as a size`},
	"negative-size":          {"server.max_body: size must not be negative"},
	"unknown-provider-type":  {`providers[0].type: unknown provider type "anthropik" (want one of openai, azure-openai, openai-compatible, anthropic, bedrock, gemini, vertex, vertex-anthropic)`},
	"duplicate-provider":     {`providers[2].name: duplicate provider name "x" (first at providers[0])`},
	"unknown-route-provider": {`models[0].routes[1]: unknown provider "corewave"`},
	"duplicate-route":        {`models[0].routes[1]: duplicate route to provider "cw" model "gpt-4o"`},
	"bad-glob":               {`keys[0].models[1]: invalid glob "gpt-[4"`},
	"duplicate-key-secret":   {"keys[2].key: same secret as keys[0]"},
	"azure-field-on-openai":  {"providers[0].api_version: only allowed for type azure-openai", "providers[0].deployments: only allowed for type azure-openai"},
	"missing-base-url":       {"providers[0].base_url: required for type azure-openai", "providers[1].base_url: required for type openai-compatible"},
	"bad-base-url":           {"providers[0].base_url: \"ftp:", "providers[1].base_url: \"https://example.com/v1?x=1\" must not have a query", "providers[2].base_url: \"/v1\" must be an absolute"},
	"bad-listen":             {`listen: "localhost" is not host:port`},
	"yaml-syntax":            {"line "},
	"duplicate-yaml-key":     {"providers[0].type: duplicate key (first at line 3)"},
	"bad-header":             {"providers[0].headers.authorization: Authorization is set by the gateway", `providers[0].headers["Bad Header"]: "Bad Header" is not a valid header name`},
	"empty":                  {"providers: at least one provider is required", "models: at least one model is required"},
	"wrong-shape":            {"providers: expected a list, got a mapping", `models[0].routes: expected a list, got "oa"`, "keys[0].key: expected a ${ENV_VAR} reference, got a mapping"},
	"several": {
		`listen: "nowhere" is not host:port`,
		`log.level: unknown level "loud"`,
		`log.format: unknown format "xml"`,
		`server.max_body: cannot parse "lots" as a size`,
		`server.idle_timeout: cannot parse "soon" as a duration`,
		"providers[0].base_url: required for type azure-openai",
		"providers[0].api_key: environment variable UNSET_AZURE_KEY is not set",
		"providers[0].tyep: unknown field",
		`providers[1].name: "bad name" must start with a letter or digit`,
		"providers[1].api_key: secrets must be given as a ${ENV_VAR} reference",
		`providers[2].name: duplicate provider name "azure-east" (first at providers[0])`,
		"providers[2].base_url: \"https://example.com/v1#frag\" must not have a fragment",
		`models[0].routes[1]: unknown provider "corewave"`,
		`models[1].name: duplicate model name "gpt-4o" (first at models[0])`,
		"models[1].routes: at least one route is required",
		`keys[0].models[0]: invalid glob "[x"`,
		`keys[1].name: duplicate key name "k" (first at keys[0])`,
		"keys[1].key: same secret as keys[0]",
	},
}

func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".bad.yaml")
		t.Run(name, func(t *testing.T) {
			want, ok := badFiles[name]
			if !ok {
				t.Fatalf("%s has no entry in badFiles", f)
			}
			c, err := Load(f, testEnv)
			if err == nil {
				t.Fatalf("Load(%s) = %s, want error", f, c.Summary())
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("Load(%s) error %T, want *Error", f, err)
			}
			msg := err.Error()
			for _, w := range want {
				if !strings.Contains(msg, w) {
					t.Errorf("Load(%s) error lacks %q; got:\n%s", f, w, msg)
				}
			}
			if len(want) > 1 && len(cerr.Problems) != len(want) {
				t.Errorf("Load(%s) reported %d problems, want %d:\n%s", f, len(cerr.Problems), len(want), msg)
			}
			for name, v := range secretEnv {
				if strings.Contains(msg, v) {
					t.Errorf("Load(%s) error contains the value of %s:\n%s", f, name, msg)
				}
			}
			for _, v := range literalSecrets {
				if strings.Contains(msg, v) {
					t.Errorf("Load(%s) error contains literal secret %q:\n%s", f, v, msg)
				}
			}
		})
	}
	for name := range badFiles {
		if _, err := os.Stat("testdata/" + name + ".bad.yaml"); err != nil {
			t.Errorf("badFiles[%q] has no file: %v", name, err)
		}
	}
}

func TestProblemsInFileOrder(t *testing.T) {
	_, err := Load("testdata/several.bad.yaml", testEnv)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("Load(several) error = %v, want *Error", err)
	}
	var got []string
	for _, p := range cerr.Problems {
		got = append(got, p.Path)
	}
	want := []string{
		"listen", "log.level", "log.format", "server.max_body", "server.idle_timeout",
		"providers[0].base_url", "providers[0].api_key", "providers[0].tyep",
		"providers[1].name", "providers[1].api_key",
		"providers[2].name", "providers[2].base_url",
		"models[0].routes[1]", "models[1].name", "models[1].routes",
		"keys[0].models[0]", "keys[1].name", "keys[1].key",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problem paths (-want +got):\n%s", diff)
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) {
		t.Errorf("Error() has %d lines, want %d", len(lines), len(want))
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml", testEnv)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want fs.ErrNotExist", err)
	}
}

// base is a valid file that the inline cases extend.
const base = `
providers:
  - {name: p, type: openai-compatible, base_url: "http://h/v1"}
  - {name: q, type: openai-compatible, base_url: "http://h2/v1"}
models:
  - {name: m, routes: [p]}
`

func TestParseInline(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string // empty: must parse
	}{
		{"route mapping", base + "  - {name: n, routes: [p, {provider: q, model: up}]}\n", ""},
		{"route unknown key", base + "  - {name: n, routes: [{provider: q, modle: up}]}\n", "models[1].routes[0].modle: unknown field"},
		{"route missing provider", base + "  - {name: n, routes: [{model: up}]}\n", "models[1].routes[0].provider: required"},
		{"route list", base + "  - {name: n, routes: [[p]]}\n", "models[1].routes[0]: expected a provider name or {provider: NAME, model: UPSTREAM_MODEL}, got a list"},
		{"same upstream via two names", base + "  - {name: n, routes: [p, {provider: p, model: n}]}\n", `models[1].routes[1]: duplicate route to provider "p" model "n"`},
		{"empty models", base[:strings.Index(base, "models:")] + "models: []\n", "models: at least one model is required"},
		{"env in duration", base + "timeouts: {connect: '${OPENAI_ORG}'}\n", `timeouts.connect: cannot parse "org-123" as a duration`},
		{"unterminated ref", base + "listen: '${FOO'\n", "listen: unterminated ${ reference"},
		{"bad ref name", base + "listen: '${1X}'\n", `listen: invalid environment variable name "1X"`},
		{"secret with text", base + "admin: {token: 'Bearer ${OPENAI_KEY}'}\n", "admin.token: secrets must be given as a ${ENV_VAR} reference"},
		{"secret escaped", base + "admin: {token: '$${OPENAI_KEY}'}\n", "admin.token: secrets must be given as a ${ENV_VAR} reference"},
		{"admin empty env", base + "admin: {token: '${EMPTY_KEY}'}\n", "admin.token: environment variable EMPTY_KEY is empty"},
		{"admin omitted", base + "admin: {}\n", ""},
		{"size units", base + "server: {max_body: 512KB}\n", ""},
		{"size garbage", base + "server: {max_body: 12XB}\n", `server.max_body: cannot parse "12XB" as a size`},
		{"size overflow", base + "server: {max_body: 9999999999GiB}\n", "server.max_body: cannot parse"},
		{"zero timeout is default", base + "timeouts: {request: 0s}\n", ""},
		{"negative provider timeout", base[:strings.Index(base, "models:")] + "  - {name: r, type: openai-compatible, base_url: 'http://x', timeouts: {connect: -1s}}\n" + base[strings.Index(base, "models:"):], "providers[2].timeouts.connect: must be positive"},
		{"bad port", base + "listen: 'localhost:http99'\n", `listen: "localhost:http99" has an invalid port`},
		{"multiple documents", base + "---\nlisten: x\n", "one YAML document"},
		{"anchors", base + "keys:\n  - {name: a, key: '${OPENAI_KEY}', models: &m [x, y]}\n  - {name: b, key: '${TEAM_SEARCH_KEY}', models: *m}\n", ""},
		{"merge key", base + "log: {<<: {level: debug}}\n", "merge keys (<<) are not supported"},
		{"non-string key", base + "log: {[a]: b}\n", "log: mapping keys must be strings, got a list"},
		{"scalar for struct", base + "server: big\n", `server: expected a mapping, got "big"`},
		{"odd map key path", base[:strings.Index(base, "models:")] + "  - {name: r, type: openai-compatible, base_url: 'http://x', headers: {'X.Y': '${NOPE}'}}\n" + base[strings.Index(base, "models:"):], `providers[2].headers["X.Y"]: environment variable NOPE is not set`},
		{"header value newline", base[:strings.Index(base, "models:")] + "  - {name: r, type: openai-compatible, base_url: 'http://x', headers: {X-A: \"a\\nb\"}}\n" + base[strings.Index(base, "models:"):], "providers[2].headers.X-A: header value must not contain CR, LF or NUL"},
		{"url credentials", base[:strings.Index(base, "models:")] + "  - {name: r, type: openai-compatible, base_url: 'http://u:pw@x'}\n" + base[strings.Index(base, "models:"):], "providers[2].base_url: must not hold credentials"},
		{"empty deployment", base[:strings.Index(base, "models:")] + "  - {name: r, type: azure-openai, base_url: 'https://x', api_key: '${OPENAI_KEY}', deployments: {a: ''}}\n" + base[strings.Index(base, "models:"):], "providers[2].deployments.a: deployment name required"},
		{"missing openai key", base[:strings.Index(base, "models:")] + "  - {name: r, type: openai}\n" + base[strings.Index(base, "models:"):], "providers[2].api_key: required"},
		{"empty glob", base + "keys: [{name: a, key: '${OPENAI_KEY}', models: ['']}]\n", "keys[0].models[0]: must not be empty"},
		{"missing key", base + "keys: [{name: a}]\n", "keys[0].key: required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), testEnv)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Parse() error:\n%v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("Parse() = nil error, want %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("Parse() error = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestAdminToken(t *testing.T) {
	// admin.token is optional, but a reference given must resolve non-empty.
	_, err := Parse([]byte(base+"admin: {token: '${EMPTY_KEY}'}\n"), testEnv)
	if err == nil || !strings.Contains(err.Error(), "admin.token: environment variable EMPTY_KEY is empty") {
		t.Errorf("Parse(empty admin token) error = %v, want admin.token ... is empty", err)
	}
	c, err := Parse([]byte(base), testEnv)
	if err != nil {
		t.Fatalf("Parse(no admin) error: %v", err)
	}
	if c.Admin.Token != "" {
		t.Errorf("Admin.Token = %q, want empty", c.Admin.Token.Value())
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1024", 1024, true},
		{"64KiB", 64 << 10, true},
		{"32MiB", 32 << 20, true},
		{"1GiB", 1 << 30, true},
		{"512KB", 512_000, true},
		{"1MB", 1_000_000, true},
		{"2 GB", 2_000_000_000, true},
		{"10B", 10, true},
		{"-1", -1, true},
		{"lots", 0, false},
		{"1.5MiB", 0, false},
		{"KiB", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, ok := parseSize(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseSize(%q) = %d, %v, want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestExpand(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{"plain", "plain", ""},
		{"${OPENAI_ORG}", "org-123", ""},
		{"a-${OPENAI_ORG}-b-${OPENAI_ORG}", "a-org-123-b-org-123", ""},
		{"$${OPENAI_ORG}", "${OPENAI_ORG}", ""},
		{"$$${OPENAI_ORG}", "$${OPENAI_ORG}", ""},
		{"$x and $ alone", "$x and $ alone", ""},
		{"${EMPTY_KEY}", "", ""},
		{"${NOPE}", "", "environment variable NOPE is not set"},
		{"${", "", "unterminated ${ reference (write $${ for a literal ${)"},
		{"${a b}", "", `invalid environment variable name "a b"`},
	}
	for _, tc := range tests {
		got, gotErr := expand(tc.in, testEnv)
		if got != tc.want || gotErr != tc.wantErr {
			t.Errorf("expand(%q) = %q, %q, want %q, %q", tc.in, got, gotErr, tc.want, tc.wantErr)
		}
	}
}

func TestSecretRedacted(t *testing.T) {
	const value = "very-secret-value"
	s := Secret(value)
	k := Key{Name: "k", Key: s}
	var out []string
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k))
	}
	var buf bytes.Buffer
	text := slog.New(slog.NewTextHandler(&buf, nil))
	text.Info("m", "secret", s, "key", k)
	json := slog.New(slog.NewJSONHandler(&buf, nil))
	json.Info("m", "secret", s, "key", k, "ptr", &k)
	out = append(out, buf.String())
	for _, o := range out {
		if strings.Contains(o, value) || strings.Contains(o, fmt.Sprintf("%x", value)) {
			t.Errorf("output contains the secret: %s", o)
		}
	}
	if !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("slog output lacks [redacted]: %s", buf.String())
	}
	if s.Value() != value {
		t.Errorf("Value() = %q, want %q", s.Value(), value)
	}
	if got := Secret("").String(); got != "" {
		t.Errorf(`Secret("").String() = %q, want ""`, got)
	}
}

func TestAgreementUntilCoversTheDay(t *testing.T) {
	c, err := Load("testdata/routing.good.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := c.Agreements[0].UntilTime(); !got.Equal(want) {
		t.Errorf("until 2030-12-31 ends at %v, want %v (the whole day)", got, want)
	}
	if got := c.Routing.RetryRounds(); got != 2 {
		t.Errorf("RetryRounds() = %d, want 2", got)
	}
	if g := c.Models[0].Routes[1]; g.Strategy != "weighted" || len(g.Members) != 2 || g.Members[0].Weight != 3 {
		t.Errorf("group tier decoded as %+v", g)
	}
}

func TestSummary(t *testing.T) {
	c := &Config{Providers: make([]Provider, 3), Models: make([]Model, 2), Keys: make([]Key, 4)}
	if got, want := c.Summary(), "3 providers, 2 models, 4 keys"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	if got, want := (&Config{}).Summary(), "0 providers, 0 models, 0 keys"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, testEnv)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse() = %v, %v: want exactly one non-nil", c, err)
		}
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("Parse() error %T with no problems", err)
			}
		}
	})
}
