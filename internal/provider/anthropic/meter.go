package anthropic

import (
	"bytes"
	"encoding/json"
	"github.com/multipolar/multipolar/internal/llm/jsonscan"

	"github.com/multipolar/multipolar/internal/llm"
)

// UsageMeter is the engine's meter contract (proxy.UsageMeter), declared as
// the identical unnamed interface type since provider packages do not
// import proxy.
type UsageMeter = interface {
	Event(ev []byte) []byte
	Body(tail []byte)
	Usage() (llm.Usage, bool)
}

// meter reads usage from an Anthropic passthrough answer: message_start
// carries the input side, each message_delta the cumulative output. Events
// pass to the client unchanged.
type meter struct {
	bodyLen  int
	usage    wireUsageTotals
	reported bool
	deltas   int64 // content deltas seen, for an estimate
}

type wireUsageTotals struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
}

// merge keeps every field the newer report carries.
func (t *wireUsageTotals) merge(n wireUsageTotals) {
	for _, f := range [...]struct{ dst, src **int64 }{
		{&t.InputTokens, &n.InputTokens}, {&t.CacheCreationInputTokens, &n.CacheCreationInputTokens},
		{&t.CacheReadInputTokens, &n.CacheReadInputTokens}, {&t.OutputTokens, &n.OutputTokens},
	} {
		if *f.src != nil {
			*f.dst = *f.src
		}
	}
}

// Meter returns the meter for one passthrough answer to r.
func (p *Provider) Meter(r *llm.RawRequest) UsageMeter { return &meter{bodyLen: len(r.Body)} }

var (
	usageField  = []byte(`"usage":`)
	deltaMarker = []byte(`"type":"content_block_delta"`)
)

func (m *meter) Event(ev []byte) []byte {
	if bytes.Contains(ev, deltaMarker) {
		m.deltas++
	} else if u, ok := lastUsage(ev); ok {
		m.usage.merge(u)
		m.reported = true
	}
	return ev
}

func (m *meter) Body(tail []byte) {
	if u, ok := lastUsage(tail); ok {
		m.usage.merge(u)
		m.reported = true
	}
}

// Usage returns the upstream's totals in the canonical convention (input
// includes cache reads and writes), or an estimate when it sent none.
func (m *meter) Usage() (llm.Usage, bool) {
	if !m.reported {
		return llm.Usage{InputTokens: int64(m.bodyLen / 4), OutputTokens: m.deltas}, false
	}
	v := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	u := &m.usage
	read, write := v(u.CacheReadInputTokens), v(u.CacheCreationInputTokens)
	return llm.Usage{InputTokens: v(u.InputTokens) + read + write, OutputTokens: v(u.OutputTokens),
		CachedTokens: read, CacheWriteTokens: write}, true
}

// lastUsage decodes the last "usage" object in b.
func lastUsage(b []byte) (wireUsageTotals, bool) {
	var u wireUsageTotals
	i := bytes.LastIndex(b, usageField)
	if i < 0 {
		return u, false
	}
	j := jsonscan.SkipSpace(b, i+len(usageField))
	if j >= len(b) || b[j] != '{' {
		return u, false
	}
	end := jsonscan.SkipValue(b, j)
	if end <= j || end > len(b) || json.Unmarshal(b[j:end], &u) != nil {
		return u, false
	}
	return u, true
}
