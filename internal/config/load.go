package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the file at path and returns its configuration; see Parse.
// A read failure is returned wrapped; problems in the file as an *Error.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data, lookupEnv)
	if err != nil {
		return nil, err
	}
	// A relative ledger path is the config file's neighbour, wherever the
	// gateway is started from.
	if c.Ledger.Driver == "sqlite" && !filepath.IsAbs(c.Ledger.Path) {
		c.Ledger.Path = filepath.Join(filepath.Dir(path), c.Ledger.Path)
	}
	return c, nil
}

// Parse decodes a YAML configuration strictly, expands ${ENV_VAR}
// references through lookupEnv (os.LookupEnv when nil), applies defaults and
// validates the result. When anything is wrong it returns a nil *Config and
// an *Error listing every problem with its field path. The returned Config
// must not be modified; it is safe for concurrent reads.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	probs := newProblems()
	root, err := parseYAML(data)
	if err != nil {
		probs.add("", err.Error())
		return nil, probs.err()
	}
	cfg := &Config{}
	d := &decoder{lookupEnv: lookupEnv, probs: probs, secretRefs: map[string]string{}}
	if root != nil {
		d.decode(root, reflect.ValueOf(cfg).Elem(), "")
	}
	cfg.setDefaults()
	probs.validating = true
	v := &validator{probs: probs, secretRefs: d.secretRefs}
	v.config(cfg)
	if err := probs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseYAML returns the content of the file's single document, or nil for
// an empty file.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	// The YAML parser is third-party code fed untrusted bytes; turn a
	// panic into an ordinary problem rather than crashing the gateway.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("cannot parse YAML: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil, fmt.Errorf("line %d: a config file holds one YAML document, found more", extra.Line)
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

// setDefaults fills in every field left zero that has a default.
func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Server.MaxBody == 0 {
		c.Server.MaxBody = DefaultMaxBody
	}
	if c.Server.DrainTimeout == 0 {
		c.Server.DrainTimeout = DefaultDrainTimeout
	}
	if c.Server.ReadHeaderTimeout == 0 {
		c.Server.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.Server.IdleTimeout == 0 {
		c.Server.IdleTimeout = DefaultIdleTimeout
	}
	c.Timeouts = c.Timeouts.Merge(Timeouts{
		Connect:    DefaultConnectTimeout,
		FirstByte:  DefaultFirstByteTimeout,
		StreamIdle: DefaultStreamIdleTimeout,
		Request:    DefaultRequestTimeout,
	})
	for i := range c.Providers {
		p := &c.Providers[i]
		if p.BaseURL == "" {
			p.BaseURL = defaultBaseURL[p.Type]
		}
		if p.Type == TypeAnthropic && p.AnthropicVersion == "" {
			p.AnthropicVersion = "2023-06-01"
		}
		p.Timeouts = p.Timeouts.Merge(c.Timeouts)
	}
	c.meteringDefaults()
}

// Summary returns a one-line description such as
// "3 providers, 2 models, 4 keys", for the startup log.
func (c *Config) Summary() string {
	return fmt.Sprintf("%s, %s, %s",
		plural(len(c.Providers), "provider"),
		plural(len(c.Models), "model"),
		plural(len(c.Keys), "key"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
