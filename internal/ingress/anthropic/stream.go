package anthropic

import (
	"strconv"
	"strings"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// StreamEncoder is the engine's stream-encoder contract
// (proxy.StreamEncoder), declared as the identical unnamed interface type
// since ingress packages do not import proxy.
type StreamEncoder = interface {
	Encode(dst []byte, ev *llm.Event) []byte
}

// EventEncoder renders canonical events as Anthropic's Messages stream:
// message_start, ping, content_block_start/delta/stop per block,
// message_delta and message_stop. It is not safe for concurrent use; make
// one per stream with Translator.NewStreamEncoder.
//
// Canonical block indexes are renumbered 0, 1, 2… in the order blocks
// start, because Anthropic clients append blocks by position. Usage events
// are remembered and sent, as totals, in message_start (input known so far,
// usually 0 when the upstream is not Anthropic) and in message_delta at
// Stop; OpenAI reports usage after finish_reason, but the canonical stream
// puts Usage before Stop, so message_delta carries the final counts.
// Encode does not allocate once the stream's blocks are known.
type EventEncoder struct {
	model   string
	started bool
	stopped bool
	usage   llm.Usage
	blocks  []streamBlock
}

type streamBlock struct {
	src  int
	kind llm.PartType
	// sent is false while a thinking block's content_block_start is held
	// back to learn whether it is redacted.
	sent bool
	open bool
	id   string // tool call id and name, until the start is sent
	name string
}

// NewStreamEncoder returns an encoder for one streamed answer to r.
func (Translator) NewStreamEncoder(r *llm.Request) StreamEncoder {
	return &EventEncoder{model: clientModel(r, ""), blocks: make([]streamBlock, 0, 8)}
}

func appendEvent(dst []byte, name string) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	return append(dst, "\ndata: "...)
}

// Encode appends the SSE bytes for ev (possibly none) to dst.
func (e *EventEncoder) Encode(dst []byte, ev *llm.Event) []byte {
	if e.stopped {
		return dst
	}
	if ev.Type == llm.EventError {
		e.stopped = true
		return AppendStreamError(dst, apierr.From(ev.Err))
	}
	if ev.Type == llm.EventUsage {
		e.usage = ev.Usage
		return dst
	}
	if !e.started {
		e.started = true
		if ev.Type == llm.EventStart && ev.Usage != (llm.Usage{}) {
			e.usage = ev.Usage
		}
		if e.model == "" {
			e.model = strings.Clone(ev.Model) // ev's strings alias the decoder's buffer
		}
		dst = e.messageStart(dst, ev)
		if ev.Type == llm.EventStart {
			return dst
		}
	}
	switch ev.Type {
	case llm.EventBlockStart:
		e.blocks = append(e.blocks, streamBlock{src: ev.Index, kind: ev.Block, open: true, id: ev.ToolCallID, name: ev.ToolName})
		k := len(e.blocks) - 1
		if ev.Block != llm.PartThinking {
			dst = e.blockStart(dst, k, "")
		}
	case llm.EventTextDelta:
		k := e.find(ev.Index)
		if k < 0 {
			if ev.Text == "" {
				return dst
			}
			e.blocks = append(e.blocks, streamBlock{src: ev.Index, kind: llm.PartText, open: true})
			k = len(e.blocks) - 1
			dst = e.blockStart(dst, k, "")
		}
		b := &e.blocks[k]
		if !b.sent {
			if data, ok := strings.CutPrefix(ev.Signature, RedactedPrefix); ok && ev.Text == "" {
				return e.blockStart(dst, k, data)
			}
			dst = e.blockStart(dst, k, "")
		}
		if b.kind == llm.PartToolCall {
			return dst
		}
		if ev.Text != "" {
			dst = e.deltaHead(dst, k)
			if b.kind == llm.PartThinking {
				dst = append(dst, `"thinking_delta","thinking":`...)
			} else {
				dst = append(dst, `"text_delta","text":`...)
			}
			dst = llm.AppendJSONString(dst, ev.Text)
			dst = append(dst, "}}\n\n"...)
		}
		if ev.Signature != "" && b.kind == llm.PartThinking {
			dst = e.deltaHead(dst, k)
			dst = append(dst, `"signature_delta","signature":`...)
			dst = llm.AppendJSONString(dst, ev.Signature)
			dst = append(dst, "}}\n\n"...)
		}
	case llm.EventToolArgsDelta:
		k := e.find(ev.Index)
		if k < 0 || e.blocks[k].kind != llm.PartToolCall || ev.Text == "" {
			return dst
		}
		dst = e.deltaHead(dst, k)
		dst = append(dst, `"input_json_delta","partial_json":`...)
		dst = llm.AppendJSONString(dst, ev.Text)
		dst = append(dst, "}}\n\n"...)
	case llm.EventBlockStop:
		if k := e.find(ev.Index); k >= 0 {
			dst = e.blockStop(dst, k)
		}
	case llm.EventStop:
		for k := range e.blocks {
			dst = e.blockStop(dst, k)
		}
		if ev.Usage != (llm.Usage{}) {
			e.usage = ev.Usage
		}
		e.stopped = true
		dst = appendEvent(dst, "message_delta")
		dst = append(dst, `{"type":"message_delta","delta":{"stop_reason":"`...)
		dst = append(dst, stopReason(ev.StopReason)...)
		dst = append(dst, `","stop_sequence":`...)
		dst = appendNullable(dst, ev.StopSequence)
		dst = append(dst, `,"stop_details":null,"container":null},"usage":{"input_tokens":`...)
		dst = strconv.AppendInt(dst, uncachedInput(&e.usage), 10)
		dst = append(dst, `,"cache_creation_input_tokens":`...)
		dst = strconv.AppendInt(dst, e.usage.CacheWriteTokens, 10)
		dst = append(dst, `,"cache_read_input_tokens":`...)
		dst = strconv.AppendInt(dst, e.usage.CachedTokens, 10)
		dst = append(dst, `,"output_tokens":`...)
		dst = strconv.AppendInt(dst, e.usage.OutputTokens, 10)
		dst = append(dst, `,"server_tool_use":null,"output_tokens_details":null}}`+"\n\n"...)
		dst = appendEvent(dst, "message_stop")
		dst = append(dst, `{"type":"message_stop"}`+"\n\n"...)
	}
	return dst
}

func (e *EventEncoder) messageStart(dst []byte, ev *llm.Event) []byte {
	dst = appendEvent(dst, "message_start")
	dst = append(dst, `{"type":"message_start","message":{"id":`...)
	id := ""
	if ev.Type == llm.EventStart {
		id = ev.ID
	}
	dst = appendID(dst, "msg_", id)
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = llm.AppendJSONString(dst, e.model)
	dst = append(dst, `,"content":[],"stop_reason":null,"stop_sequence":null,"stop_details":null,"usage":`...)
	dst = appendUsage(dst, &e.usage)
	dst = append(dst, `,"container":null,"diagnostics":null}}`+"\n\n"...)
	return append(dst, "event: ping\ndata: {\"type\": \"ping\"}\n\n"...)
}

// find returns the position of the open block with canonical index src.
func (e *EventEncoder) find(src int) int {
	for k := len(e.blocks) - 1; k >= 0; k-- {
		if e.blocks[k].src == src && e.blocks[k].open {
			return k
		}
	}
	return -1
}

// blockStart sends block k's content_block_start; redacted, if not empty,
// makes a thinking block a redacted_thinking block holding that data.
func (e *EventEncoder) blockStart(dst []byte, k int, redacted string) []byte {
	b := &e.blocks[k]
	b.sent = true
	dst = appendEvent(dst, "content_block_start")
	dst = append(dst, `{"type":"content_block_start","index":`...)
	dst = strconv.AppendInt(dst, int64(k), 10)
	dst = append(dst, `,"content_block":`...)
	switch {
	case redacted != "":
		dst = append(dst, `{"type":"redacted_thinking","data":`...)
		dst = llm.AppendJSONString(dst, redacted)
		dst = append(dst, '}')
	case b.kind == llm.PartThinking:
		dst = append(dst, `{"type":"thinking","thinking":"","signature":""}`...)
	case b.kind == llm.PartToolCall:
		dst = append(dst, `{"type":"tool_use","id":`...)
		dst = appendID(dst, "toolu_", b.id)
		dst = append(dst, `,"name":`...)
		dst = llm.AppendJSONString(dst, b.name)
		dst = append(dst, `,"input":{},"caller":{"type":"direct"}}`...)
		b.id, b.name = "", "" // may alias the decoder's buffer
	default:
		dst = append(dst, `{"type":"text","text":"","citations":null}`...)
	}
	return append(dst, "}\n\n"...)
}

func (e *EventEncoder) deltaHead(dst []byte, k int) []byte {
	dst = appendEvent(dst, "content_block_delta")
	dst = append(dst, `{"type":"content_block_delta","index":`...)
	dst = strconv.AppendInt(dst, int64(k), 10)
	return append(dst, `,"delta":{"type":`...)
}

func (e *EventEncoder) blockStop(dst []byte, k int) []byte {
	b := &e.blocks[k]
	if !b.open {
		return dst
	}
	if !b.sent {
		dst = e.blockStart(dst, k, "")
	}
	b.open = false
	dst = appendEvent(dst, "content_block_stop")
	dst = append(dst, `{"type":"content_block_stop","index":`...)
	dst = strconv.AppendInt(dst, int64(k), 10)
	return append(dst, "}\n\n"...)
}
