package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Ledger configures where usage records are kept.
type Ledger struct {
	// Driver is sqlite (the default, a file), postgres or none.
	Driver string `yaml:"driver"`
	// Path is the SQLite file. Default multipolar.db.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string, a ${ENV_VAR} reference.
	DSN Secret `yaml:"dsn"`
	// Durability is batch (records are committed in batches after the
	// response) or sync (each response waits for its record's group commit,
	// so a served request survives kill -9). Default batch.
	Durability string `yaml:"durability"`
	// QueueSize bounds the records waiting to be written. Default 8192.
	QueueSize int `yaml:"queue_size"`
	// FlushInterval is the longest a record waits in batch durability
	// before its batch is committed. Default 1s: each commit has a fixed
	// cost, so larger batches cost less CPU a record.
	FlushInterval Duration `yaml:"flush_interval"`
	// BatchSize is the most records committed at once; a full batch is
	// committed without waiting for the interval. Default 2048.
	BatchSize int `yaml:"batch_size"`
	// Overflow is what a full queue does: block (the request waits up to
	// 100ms, then the record is dropped and counted) or drop (dropped at
	// once and counted). Default block.
	Overflow string `yaml:"overflow"`
}

// Limits configures where budget reservations and rate-limit counters live.
type Limits struct {
	// Driver is memory (one replica; the default) or redis (replicas share
	// state).
	Driver string `yaml:"driver"`
	// URL is the Redis URL (redis://host:port/db), a ${ENV_VAR} reference.
	URL Secret `yaml:"url"`
	// Prefix namespaces the gateway's keys in Redis; replicas that share
	// budgets must share it. Default "multipolar".
	Prefix string `yaml:"prefix"`
}

// PriceEntry is one dated price of a provider's model, in USD per million
// tokens, as decimal strings. It overrides or extends the built-in catalog.
type PriceEntry struct {
	// Provider names a provider, or "*" for any provider of the model.
	Provider string  `yaml:"provider"`
	Model    string  `yaml:"model"`
	Input    Decimal `yaml:"input"`
	Output   Decimal `yaml:"output"`
	// CachedInput is the price of cached input tokens; default Input.
	CachedInput Decimal `yaml:"cached_input"`
	// CacheWrite is the price of cache-write tokens; default Input.
	CacheWrite Decimal `yaml:"cache_write"`
	// From is the date the price takes effect (UTC). Default: always.
	From Date `yaml:"from"`
}

// Team groups keys under shared budgets and limits.
type Team struct {
	Name    string     `yaml:"name"`
	Budgets []Budget   `yaml:"budgets"`
	Limits  RateLimits `yaml:"limits"`
}

// Budget caps spend over a period.
type Budget struct {
	// Limit is the cap in USD, a decimal string.
	Limit Decimal `yaml:"limit"`
	// Period is daily, weekly (from Monday), monthly or total (prepaid,
	// never resets; top-ups raise it).
	Period string `yaml:"period"`
	// Mode is hard (refused with 429 once reached) or soft (served,
	// alerted through metrics and the log). Default hard.
	Mode string `yaml:"mode"`
	// Timezone places the period's boundaries; default the top-level
	// timezone.
	Timezone string `yaml:"timezone"`
}

// RateLimits are requests and tokens per minute; 0 means unlimited.
type RateLimits struct {
	RPM int64 `yaml:"rpm"`
	TPM int64 `yaml:"tpm"`
}

// Decimal is a non-negative decimal number written as a string ("0.15"),
// kept as written so money stays exact.
type Decimal string

var decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

func (d *Decimal) decodeNode(dec *decoder, n *yaml.Node, path string) {
	s, ok := dec.scalar(n, path, "a decimal number")
	if !ok {
		return
	}
	s = strings.TrimSpace(s)
	if !decimalRE.MatchString(s) {
		dec.errorf(n, path, "cannot parse %q as a decimal amount (write it as a string such as \"0.15\")", s)
		return
	}
	*d = Decimal(s)
}

// Date is a calendar date (2026-01-01, midnight UTC) or an RFC 3339 time.
type Date struct {
	time.Time
	// DateOnly reports that no time of day was written.
	DateOnly bool
}

func (d *Date) decodeNode(dec *decoder, n *yaml.Node, path string) {
	s, ok := dec.scalar(n, path, "a date")
	if !ok {
		return
	}
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			d.Time, d.DateOnly = t.UTC(), layout == "2006-01-02"
			return
		}
	}
	dec.errorf(n, path, "cannot parse %q as a date (want YYYY-MM-DD or RFC 3339)", s)
}

var (
	_ nodeDecoder = (*Decimal)(nil)
	_ nodeDecoder = (*Date)(nil)
)

// Metering defaults.
const (
	DefaultLedgerPath      = "multipolar.db"
	DefaultLedgerQueueSize = 8192
	DefaultLedgerFlush     = Duration(time.Second)
	DefaultLedgerBatchSize = 2048
	DefaultMaxOutputTokens = 16384
)

func (c *Config) meteringDefaults() {
	if c.Ledger.Driver == "" {
		c.Ledger.Driver = "sqlite"
	}
	if c.Ledger.Driver == "sqlite" && c.Ledger.Path == "" {
		c.Ledger.Path = DefaultLedgerPath
	}
	if c.Ledger.Durability == "" {
		c.Ledger.Durability = "batch"
	}
	if c.Ledger.QueueSize == 0 {
		c.Ledger.QueueSize = DefaultLedgerQueueSize
	}
	if c.Ledger.Overflow == "" {
		c.Ledger.Overflow = "block"
	}
	if c.Ledger.FlushInterval == 0 {
		c.Ledger.FlushInterval = DefaultLedgerFlush
	}
	if c.Ledger.BatchSize == 0 {
		c.Ledger.BatchSize = DefaultLedgerBatchSize
	}
	if c.Limits.Driver == "" {
		c.Limits.Driver = "memory"
	}
	if c.Limits.Driver == "redis" && c.Limits.Prefix == "" {
		c.Limits.Prefix = "multipolar"
	}
	if c.Timezone == "" {
		c.Timezone = "UTC"
	}
	for i := range c.Models {
		if c.Models[i].MaxOutputTokens == 0 {
			c.Models[i].MaxOutputTokens = DefaultMaxOutputTokens
		}
	}
	fill := func(bs []Budget) {
		for i := range bs {
			if bs[i].Mode == "" {
				bs[i].Mode = "hard"
			}
			if bs[i].Timezone == "" {
				bs[i].Timezone = c.Timezone
			}
		}
	}
	for i := range c.Teams {
		fill(c.Teams[i].Budgets)
	}
	for i := range c.Keys {
		fill(c.Keys[i].Budgets)
	}
	for i := range c.Prices {
		p := &c.Prices[i]
		if p.CachedInput == "" {
			p.CachedInput = p.Input
		}
		if p.CacheWrite == "" {
			p.CacheWrite = p.Input
		}
	}
}

func oneOf(v *validator, path, got string, allowed ...string) bool {
	for _, a := range allowed {
		if got == a {
			return true
		}
	}
	v.errorf(path, "unknown value %q (want %s)", got, strings.Join(allowed, ", "))
	return false
}

// metering checks the ledger, limits, prices, teams and the metering
// fields of keys.
func (v *validator) metering(c *Config, providers map[string]int) {
	l := &c.Ledger
	oneOf(v, "ledger.driver", l.Driver, "sqlite", "postgres", "none")
	oneOf(v, "ledger.durability", l.Durability, "batch", "sync")
	oneOf(v, "ledger.overflow", l.Overflow, "block", "drop")
	if l.Driver == "postgres" {
		v.requiredSecret("ledger.dsn", l.DSN)
	}
	if l.QueueSize < 0 {
		v.errorf("ledger.queue_size", "must not be negative")
	}
	v.positive("ledger.flush_interval", l.FlushInterval)
	if l.FlushInterval > Duration(time.Minute) {
		v.errorf("ledger.flush_interval", "must be at most 1m, got %s", l.FlushInterval.D())
	}
	if l.BatchSize < 0 {
		v.errorf("ledger.batch_size", "must not be negative")
	}
	oneOf(v, "limits.driver", c.Limits.Driver, "memory", "redis")
	if c.Limits.Driver == "redis" {
		v.requiredSecret("limits.url", c.Limits.URL)
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		v.errorf("timezone", "unknown time zone %q", c.Timezone)
	}
	for i := range c.Prices {
		p, path := &c.Prices[i], fmt.Sprintf("prices[%d]", i)
		if _, ok := providers[p.Provider]; !ok && p.Provider != "*" {
			v.errorf(path+".provider", "unknown provider %q (or \"*\" for any)", p.Provider)
		}
		if p.Model == "" {
			v.errorf(path+".model", "required")
		}
		if p.Input == "" {
			v.errorf(path+".input", "required")
		}
		if p.Output == "" {
			v.errorf(path+".output", "required")
		}
	}
	teams := map[string]int{}
	for i := range c.Teams {
		t, path := &c.Teams[i], fmt.Sprintf("teams[%d]", i)
		switch first, dup := teams[t.Name]; {
		case t.Name == "":
			v.errorf(path+".name", "required")
		case dup:
			v.errorf(path+".name", "duplicate team name %q (first at teams[%d])", t.Name, first)
		default:
			teams[t.Name] = i
		}
		v.budgets(path+".budgets", t.Budgets)
		v.rateLimits(path+".limits", t.Limits)
	}
	for i := range c.Keys {
		k, path := &c.Keys[i], fmt.Sprintf("keys[%d]", i)
		if _, ok := teams[k.Team]; k.Team != "" && !ok {
			v.errorf(path+".team", "unknown team %q", k.Team)
		}
		v.budgets(path+".budgets", k.Budgets)
		v.rateLimits(path+".limits", k.Limits)
	}
	for i := range c.Providers {
		v.rateLimits(fmt.Sprintf("providers[%d].capacity", i), c.Providers[i].Capacity)
	}
	for i := range c.Models {
		if c.Models[i].MaxOutputTokens < 0 {
			v.errorf(fmt.Sprintf("models[%d].max_output_tokens", i), "must not be negative")
		}
	}
}

func (v *validator) budgets(path string, bs []Budget) {
	for i := range bs {
		b, p := &bs[i], fmt.Sprintf("%s[%d]", path, i)
		if b.Limit == "" {
			v.errorf(p+".limit", "required (USD, e.g. \"500.00\")")
		}
		oneOf(v, p+".period", b.Period, "daily", "weekly", "monthly", "total")
		oneOf(v, p+".mode", b.Mode, "hard", "soft")
		if _, err := time.LoadLocation(b.Timezone); err != nil {
			v.errorf(p+".timezone", "unknown time zone %q", b.Timezone)
		}
	}
}

func (v *validator) rateLimits(path string, l RateLimits) {
	if l.RPM < 0 {
		v.errorf(path+".rpm", "must not be negative")
	}
	if l.TPM < 0 {
		v.errorf(path+".tpm", "must not be negative")
	}
}
