package openai

import (
	"strconv"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// StreamEncoder is proxy.StreamEncoder, declared here as the identical
// alias of an unnamed interface type because this package may not import
// proxy (STYLE §1): Go compares method result types by identity, so only an
// alias on both sides lets Translator satisfy proxy.Ingress structurally.
type StreamEncoder = interface {
	Encode(dst []byte, ev *llm.Event) []byte
}

// NewStreamEncoder returns a ChunkEncoder for one streamed answer to r.
func (t Translator) NewStreamEncoder(r *llm.Request) StreamEncoder {
	return NewChunkEncoder(r.Model, t.IncludeUsage)
}

// ChunkEncoder turns canonical events into OpenAI's chat.completion.chunk
// server-sent events. It is for one stream and not safe for concurrent use.
// After the first event it appends without allocating.
type ChunkEncoder struct {
	model        string
	includeUsage bool
	started      bool
	done         bool
	// prefix is every chunk's opening up to and including `"choices":`.
	prefix []byte
	usage  llm.Usage
	tools  int
	blocks []blockInfo // by event Index
	buf    [8]blockInfo
}

// blockInfo is what the encoder remembers of an open block.
type blockInfo struct {
	kind llm.PartType
	tool int // index among tool calls, for PartToolCall
}

// NewChunkEncoder returns an encoder that names model in every chunk (the
// client-facing name). includeUsage is the client's
// stream_options.include_usage.
func NewChunkEncoder(model string, includeUsage bool) *ChunkEncoder {
	e := &ChunkEncoder{model: model, includeUsage: includeUsage}
	e.blocks = e.buf[:0]
	return e
}

// Encode appends the SSE bytes for ev (possibly none) to dst. The stream
// is: a role chunk (delta {role, content:""}), content and tool-call deltas,
// a finish chunk with an empty delta, the usage chunk when the client asked
// for it, then [DONE]. Thinking is not shown (no field in Chat
// Completions). An EventError becomes OpenAI's in-stream error event and
// ends the stream.
func (e *ChunkEncoder) Encode(dst []byte, ev *llm.Event) []byte {
	if e.done {
		return dst
	}
	if ev.Type == llm.EventError {
		e.done = true
		return AppendStreamError(dst, apierr.From(ev.Err))
	}
	if !e.started {
		dst = e.start(dst, ev)
		if ev.Type == llm.EventStart {
			return dst
		}
	}
	switch ev.Type {
	case llm.EventBlockStart:
		b := e.block(ev.Index)
		b.kind = ev.Block
		if ev.Block != llm.PartToolCall {
			return dst
		}
		b.tool = e.tools
		e.tools++
		dst = e.openChunk(dst)
		dst = append(dst, `{"tool_calls":[{"index":`...)
		dst = strconv.AppendInt(dst, int64(b.tool), 10)
		dst = append(dst, `,"id":`...)
		dst = llm.AppendJSONString(dst, ev.ToolCallID)
		dst = append(dst, `,"type":"function","function":{"name":`...)
		dst = llm.AppendJSONString(dst, ev.ToolName)
		dst = append(dst, `,"arguments":""}}]}`...)
		return e.closeChunk(dst, "")
	case llm.EventTextDelta:
		if ev.Text == "" || e.block(ev.Index).kind != llm.PartText {
			return dst // thinking, or a signature
		}
		dst = e.openChunk(dst)
		dst = append(dst, `{"content":`...)
		dst = llm.AppendJSONString(dst, ev.Text)
		dst = append(dst, '}')
		return e.closeChunk(dst, "")
	case llm.EventToolArgsDelta:
		if ev.Text == "" {
			return dst
		}
		b := e.block(ev.Index)
		dst = e.openChunk(dst)
		dst = append(dst, `{"tool_calls":[{"index":`...)
		dst = strconv.AppendInt(dst, int64(b.tool), 10)
		dst = append(dst, `,"function":{"arguments":`...)
		dst = llm.AppendJSONString(dst, ev.Text)
		dst = append(dst, `}}]}`...)
		return e.closeChunk(dst, "")
	case llm.EventUsage:
		e.usage = ev.Usage
	case llm.EventStop:
		if ev.Usage != (llm.Usage{}) {
			e.usage = ev.Usage
		}
		e.done = true
		dst = e.openChunk(dst)
		dst = append(dst, "{}"...)
		dst = e.closeChunk(dst, finishReason(ev.StopReason))
		if e.includeUsage {
			dst = append(dst, "data: "...)
			dst = append(dst, e.prefix...)
			dst = append(dst, `[],"usage":`...)
			dst = appendUsage(dst, &e.usage)
			dst = append(dst, "}\n\n"...)
		}
		dst = append(dst, "data: [DONE]\n\n"...)
	}
	return dst
}

// start builds the chunk prefix from the EventStart (or, defensively, from
// nothing when the stream did not begin with one) and appends the role chunk.
func (e *ChunkEncoder) start(dst []byte, ev *llm.Event) []byte {
	e.started = true
	var id string
	if ev.Type == llm.EventStart {
		id = ev.ID
	}
	p := make([]byte, 0, 128+len(id)+len(e.model))
	p = append(p, `{"id":`...)
	p = appendID(p, id)
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = strconv.AppendInt(p, now().Unix(), 10)
	p = append(p, `,"model":`...)
	p = llm.AppendJSONString(p, e.model)
	p = append(p, `,"service_tier":"default","choices":`...)
	e.prefix = p
	dst = e.openChunk(dst)
	dst = append(dst, `{"role":"assistant","content":"","refusal":null}`...)
	return e.closeChunk(dst, "")
}

// block returns the state of block i, growing the table as needed (blocks
// are few; the inline buffer covers the usual case).
func (e *ChunkEncoder) block(i int) *blockInfo {
	if i < 0 {
		i = 0
	}
	for len(e.blocks) <= i {
		e.blocks = append(e.blocks, blockInfo{})
	}
	return &e.blocks[i]
}

func (e *ChunkEncoder) openChunk(dst []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, e.prefix...)
	return append(dst, `[{"index":0,"delta":`...)
}

// closeChunk ends a chunk opened by openChunk after its delta; finish is
// the finish_reason, "" for null.
func (e *ChunkEncoder) closeChunk(dst []byte, finish string) []byte {
	dst = append(dst, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		dst = append(dst, "null"...)
	} else {
		dst = llm.AppendJSONString(dst, finish)
	}
	dst = append(dst, "}]"...)
	if e.includeUsage {
		dst = append(dst, `,"usage":null`...)
	}
	return append(dst, "}\n\n"...)
}
