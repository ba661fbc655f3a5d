package pricing

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed catalog.yaml
var builtinYAML []byte

// Builtin returns the catalog embedded in the binary (catalog.yaml). It is
// parsed once; the result is shared and, like every Catalog, immutable.
func Builtin() *Catalog {
	return builtin()
}

var builtin = sync.OnceValue(func() *Catalog {
	c, err := Parse(builtinYAML)
	if err != nil {
		panic(fmt.Sprintf("pricing: embedded catalog.yaml: %v", err)) // caught by TestBuiltin
	}
	return c
})

// file is the YAML layout of a catalog file.
type file struct {
	// AsOf is the date the prices were read from the sources.
	AsOf string `yaml:"as_of"`
	// Sources maps a provider to the page its prices were read from.
	Sources map[string]string `yaml:"sources"`
	Prices  []fileEntry       `yaml:"prices"`
}

type fileEntry struct {
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`
	// From is a date (2006-01-02) or an RFC 3339 instant; empty means always.
	From   string `yaml:"from"`
	Input  *Money `yaml:"input"`
	Output *Money `yaml:"output"`
	// CachedInput and CacheWrite default to Input when omitted: a model
	// without a cache discount charges cached tokens like any other.
	CachedInput *Money `yaml:"cached_input"`
	CacheWrite  *Money `yaml:"cache_write"`
	Note        string `yaml:"note"`
}

// ParseEntries decodes a catalog file (the layout of catalog.yaml) into
// entries. Unknown keys are errors; input and output are required; prices
// must not be negative; (provider, model, from) must be unique. Every
// problem is reported, joined.
func ParseEntries(data []byte) ([]Entry, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode catalog: %w", err)
	}
	var errs []error
	seen := make(map[string]bool)
	entries := make([]Entry, 0, len(f.Prices))
	for i, fe := range f.Prices {
		e, err := fe.entry()
		if err != nil {
			errs = append(errs, fmt.Errorf("prices[%d] (%s/%s): %w", i, fe.Provider, fe.Model, err))
			continue
		}
		id := e.Provider + "\x00" + e.Model + "\x00" + e.Price.From.String()
		if seen[id] {
			errs = append(errs, fmt.Errorf("prices[%d] (%s/%s): duplicate from %q", i, fe.Provider, fe.Model, fe.From))
			continue
		}
		seen[id] = true
		entries = append(entries, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return entries, nil
}

// Parse decodes a catalog file into a Catalog; see ParseEntries.
func Parse(data []byte) (*Catalog, error) {
	entries, err := ParseEntries(data)
	if err != nil {
		return nil, err
	}
	return NewCatalog(entries), nil
}

func (fe fileEntry) entry() (Entry, error) {
	var errs []error
	if fe.Provider == "" {
		errs = append(errs, errors.New("provider is required"))
	}
	if fe.Model == "" {
		errs = append(errs, errors.New("model is required"))
	}
	var from time.Time
	if fe.From != "" {
		var err error
		if from, err = time.Parse(time.DateOnly, fe.From); err != nil {
			if from, err = time.Parse(time.RFC3339Nano, fe.From); err != nil {
				errs = append(errs, fmt.Errorf("from %q: want YYYY-MM-DD or RFC 3339", fe.From))
			}
		}
		from = from.UTC()
	}
	if fe.Input == nil {
		errs = append(errs, errors.New("input is required"))
	}
	if fe.Output == nil {
		errs = append(errs, errors.New("output is required"))
	}
	if len(errs) > 0 {
		return Entry{}, errors.Join(errs...)
	}
	p := Price{Input: *fe.Input, Output: *fe.Output, CachedInput: *fe.Input, CacheWrite: *fe.Input, From: from}
	if fe.CachedInput != nil {
		p.CachedInput = *fe.CachedInput
	}
	if fe.CacheWrite != nil {
		p.CacheWrite = *fe.CacheWrite
	}
	for name, m := range map[string]Money{"input": p.Input, "output": p.Output, "cached_input": p.CachedInput, "cache_write": p.CacheWrite} {
		if m.Sign() < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", name, m))
		}
	}
	if len(errs) > 0 {
		return Entry{}, errors.Join(errs...)
	}
	return Entry{Provider: fe.Provider, Model: fe.Model, Price: p}, nil
}
