package openai

import (
	"bytes"

	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/llm/jsonscan"
)

// UsageMeter is the engine's meter contract (proxy.UsageMeter), declared as
// the identical unnamed interface type since provider packages do not
// import proxy.
type UsageMeter = interface {
	Event(ev []byte) []byte
	Body(tail []byte)
	Usage() (llm.Usage, bool)
}

// meter reads usage from an OpenAI-format passthrough answer. When the
// gateway added stream_options.include_usage for a client that did not ask,
// it keeps the usage chunk, and the "usage":null OpenAI then adds to every
// other chunk, from the client: the client sees the stream it asked for.
type meter struct {
	injected bool
	bodyLen  int
	usage    llm.Usage
	reported bool
	chunks   int64 // content chunks seen, for an estimate when usage is missing
}

// Meter returns the meter for one answer to r. Called by the engine.
func (p *Provider) Meter(r *llm.RawRequest) UsageMeter {
	_, injected := p.usageEdit(r)
	return &meter{injected: injected, bodyLen: len(r.Body)}
}

// usageEdit is the body edit that asks the upstream for streamed usage,
// when the client did not and the upstream takes stream_options.
func (p *Provider) usageEdit(r *llm.RawRequest) (llm.Edit, bool) {
	if r.Op != llm.OpChat || !p.streamUsage {
		return llm.Edit{}, false
	}
	return r.UsageEdit()
}

var (
	usageKey  = []byte(`"usage":`)
	usageNull = []byte(`,"usage":null`)
	dataObj   = []byte("data: {")
	noChoices = []byte(`"choices":[]`)
)

func (m *meter) Event(ev []byte) []byte {
	if !bytes.HasPrefix(ev, dataObj) {
		return ev // [DONE], comments, keep-alives
	}
	if u, ok := usageAt(ev); ok {
		m.usage, m.reported = u, true
		if m.injected && bytes.Contains(ev, noChoices) {
			return nil // the chunk only the gateway asked for
		}
	} else {
		m.chunks++
	}
	if m.injected {
		for {
			i := bytes.Index(ev, usageNull)
			if i < 0 {
				break
			}
			ev = append(ev[:i], ev[i+len(usageNull):]...)
		}
	}
	return ev
}

func (m *meter) Body(tail []byte) {
	if u, ok := usageAt(tail); ok {
		m.usage, m.reported = u, true
		return
	}
	m.chunks = int64(len(tail) / 4)
}

// Usage returns the upstream's usage, or, when it sent none (a cut stream,
// a server that omits it), an estimate: four bytes of request a token, one
// token a content chunk.
func (m *meter) Usage() (llm.Usage, bool) {
	if m.reported {
		return m.usage, true
	}
	return llm.Usage{InputTokens: int64(m.bodyLen / 4), OutputTokens: m.chunks}, false
}

// usageAt decodes the last "usage" object in b. OpenAI puts usage after the
// choices, so the last one is the answer's; a "usage" inside a string would
// have its quotes escaped and cannot match.
func usageAt(b []byte) (llm.Usage, bool) {
	i := bytes.LastIndex(b, usageKey)
	if i < 0 {
		return llm.Usage{}, false
	}
	j := i + len(usageKey)
	for j < len(b) && (b[j] == ' ' || b[j] == '\n' || b[j] == '\r' || b[j] == '\t') {
		j++
	}
	if j >= len(b) || b[j] != '{' {
		return llm.Usage{}, false
	}
	end := jsonscan.SkipValue(b, j)
	obj := b[j:end]
	u := llm.Usage{
		InputTokens:     intField(obj, promptTokens),
		OutputTokens:    intField(obj, completionTokens),
		CachedTokens:    intField(obj, cachedTokens),
		ReasoningTokens: intField(obj, reasoningTokens),
	}
	return u, true
}

var (
	promptTokens     = []byte(`"prompt_tokens"`)
	completionTokens = []byte(`"completion_tokens"`)
	cachedTokens     = []byte(`"cached_tokens"`)
	reasoningTokens  = []byte(`"reasoning_tokens"`)
)

// intField reads the integer after key in a usage object: its keys are
// unique (the details objects name theirs differently), so the first match
// is the one. A missing or non-numeric field is 0.
func intField(obj, key []byte) int64 {
	i := bytes.Index(obj, key)
	if i < 0 {
		return 0
	}
	i += len(key)
	for i < len(obj) && (obj[i] == ' ' || obj[i] == ':' || obj[i] == '\n' || obj[i] == '\r' || obj[i] == '\t') {
		i++
	}
	j := i
	for j < len(obj) && obj[j] >= '0' && obj[j] <= '9' {
		j++
	}
	return llm.ParseTokenCount(obj[i:j])
}
