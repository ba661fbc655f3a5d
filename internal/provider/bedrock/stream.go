package bedrock

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// MaxStreamMessage bounds one event-stream message (prelude, headers,
// payload and CRCs). A message that declares more is refused before any of
// it is buffered, so a corrupt or hostile length cannot make the decoder
// allocate. Bedrock's events are a few hundred bytes.
const MaxStreamMessage = 16 << 20

// minMessageLen is an event-stream message without headers or payload:
// prelude (8), prelude CRC (4) and message CRC (4).
const minMessageLen = 16

// ErrMessageTooLarge reports a stream message longer than MaxStreamMessage.
var ErrMessageTooLarge = errors.New("event-stream message exceeds the size limit")

// maxBlockIndex bounds contentBlockIndex, so a hostile index cannot grow
// the block table.
const maxBlockIndex = 1 << 12

// blockState tracks one content block index of a stream.
type blockState uint8

const (
	blockNone blockState = iota
	blockOpen
	blockClosed
)

// streamDecoder turns a ConverseStream event stream into canonical events.
// It is not safe for concurrent use.
type streamDecoder struct {
	name    string
	r       *bufio.Reader
	dec     *eventstream.Decoder
	buf     []byte // payload buffer, reused across messages
	scratch []byte // unescaped delta text, reused across messages
	blocks  []blockState
	ev      streamEvent // decoded payload, reset per message

	// pending is an event queued behind an implicit EventBlockStart; its
	// Text aliases buf, which stays untouched until the next Decode.
	pending    llm.Event
	hasPending bool

	stop     llm.StopReason
	stopSeq  string
	sawStop  bool
	usage    llm.Usage
	sawUsage bool
	done     bool
}

// streamEvent is the union of the JSON payloads of ConverseStream events
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html).
// Only the fields the adapter reads are declared; "p" padding and metrics
// are skipped.
type streamEvent struct {
	ContentBlockIndex int `json:"contentBlockIndex"`
	Start             struct {
		ToolUse *struct {
			ToolUseID string `json:"toolUseId"`
			Name      string `json:"name"`
		} `json:"toolUse"`
	} `json:"start"`
	Delta struct {
		Text    *string `json:"text"`
		ToolUse *struct {
			Input string `json:"input"`
		} `json:"toolUse"`
		ReasoningContent *struct {
			Text      *string `json:"text"`
			Signature string  `json:"signature"`
		} `json:"reasoningContent"`
	} `json:"delta"`
	StopReason                    string         `json:"stopReason"`
	AdditionalModelResponseFields responseFields `json:"additionalModelResponseFields"`
	Usage                         *tokenUsage    `json:"usage"`
	// Message is set on exception messages.
	Message string `json:"message"`
}

// NewStreamDecoder returns a decoder for a ConverseStream answer body.
func (p *Provider) NewStreamDecoder(body io.Reader) StreamDecoder {
	return newStreamDecoder(p.name, body)
}

// StreamDecoder is the method set of proxy.StreamDecoder, as an alias of an
// unnamed interface type: provider packages may not import proxy, and Go
// compares method result types by identity, so a defined type here could
// never match proxy.ChatProvider (the same alias as package openai's).
//
// Bedrock's decoder returns io.EOF after EventStop or EventError, and an
// error when the stream breaks or ends before messageStop.
type StreamDecoder = interface {
	Next(ev *llm.Event) error
}

func newStreamDecoder(name string, body io.Reader) *streamDecoder {
	return &streamDecoder{
		name: name,
		r:    bufio.NewReaderSize(body, 16<<10),
		dec:  eventstream.NewDecoder(),
		buf:  make([]byte, 0, 4<<10),
	}
}

// Next fills ev with the next event. ev's strings are valid until the next
// call.
func (d *streamDecoder) Next(ev *llm.Event) error {
	if d.hasPending {
		*ev, d.pending, d.hasPending = d.pending, llm.Event{}, false
		return nil
	}
	for {
		if d.done {
			return io.EOF
		}
		msg, err := d.readMessage()
		if errors.Is(err, io.EOF) {
			return d.finish(ev)
		}
		if err != nil {
			d.done = true
			return err
		}
		emitted, err := d.handle(msg, ev)
		if err != nil {
			d.done = true
			return err
		}
		if emitted {
			return nil
		}
	}
}

// finish handles the end of the body: EventStop after messageStop, else an
// error, since the stream was cut.
func (d *streamDecoder) finish(ev *llm.Event) error {
	d.done = true
	if !d.sawStop {
		return fmt.Errorf("provider %q: stream ended before messageStop: %w", d.name, io.ErrUnexpectedEOF)
	}
	ev.Type, ev.StopReason, ev.StopSequence = llm.EventStop, d.stop, d.stopSeq
	ev.Usage = d.usage
	return nil
}

// readMessage decodes the next message, or returns io.EOF at a clean
// message boundary at the end of the body.
func (d *streamDecoder) readMessage() (eventstream.Message, error) {
	prelude, err := d.r.Peek(8)
	if err != nil {
		if errors.Is(err, io.EOF) {
			if len(prelude) == 0 {
				return eventstream.Message{}, io.EOF
			}
			err = io.ErrUnexpectedEOF
		}
		return eventstream.Message{}, fmt.Errorf("provider %q: read stream: %w", d.name, err)
	}
	// The SDK checks neither bound: a payload length computed from
	// inconsistent lengths underflows to ~4 GiB and would be read whole
	// before the CRC check.
	total, headers := binary.BigEndian.Uint32(prelude), binary.BigEndian.Uint32(prelude[4:])
	if total > MaxStreamMessage {
		return eventstream.Message{}, fmt.Errorf("provider %q: message of %d bytes: %w", d.name, total, ErrMessageTooLarge)
	}
	if uint64(headers)+minMessageLen > uint64(total) {
		return eventstream.Message{}, fmt.Errorf("provider %q: malformed message prelude (length %d, headers %d)", d.name, total, headers)
	}
	msg, err := d.dec.Decode(d.r, d.buf)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the prelude was there: the message was cut
		}
		return eventstream.Message{}, fmt.Errorf("provider %q: decode stream message: %w", d.name, err)
	}
	if cap(msg.Payload) > cap(d.buf) {
		d.buf = msg.Payload[:0] // keep the grown buffer; bounded by MaxStreamMessage
	}
	return msg, nil
}

// headerString returns the string value of header name, or "".
func headerString(h eventstream.Headers, name string) string {
	for i := range h {
		if h[i].Name == name {
			if v, ok := h[i].Value.(eventstream.StringValue); ok {
				return string(v)
			}
			return ""
		}
	}
	return ""
}

// handle translates one message; emitted reports whether ev was filled.
func (d *streamDecoder) handle(msg eventstream.Message, ev *llm.Event) (emitted bool, err error) {
	switch mt := headerString(msg.Headers, ":message-type"); mt {
	case "event":
	case "exception":
		d.ev = streamEvent{}
		_ = json.Unmarshal(msg.Payload, &d.ev) // the message is optional
		ev.Type = llm.EventError
		ev.Err = d.exception(headerString(msg.Headers, ":exception-type"), d.ev.Message)
		d.done = true
		return true, nil
	case "error":
		ev.Type = llm.EventError
		ev.Err = apierr.Wrap(apierr.UpstreamUnavailable,
			fmt.Errorf("provider %q: stream error %s: %s", d.name, headerString(msg.Headers, ":error-code"), headerString(msg.Headers, ":error-message")),
			"the upstream provider failed while streaming")
		d.done = true
		return true, nil
	default:
		return false, fmt.Errorf("provider %q: unknown stream message type %q", d.name, mt)
	}
	typ := headerString(msg.Headers, ":event-type")
	switch typ {
	case "messageStart":
		ev.Type = llm.EventStart
		return true, nil
	case "contentBlockDelta":
		d.scratch = d.scratch[:0]
		idx, kind, text, scratch, ok := parseDelta(msg.Payload, d.scratch)
		d.scratch = scratch
		if ok && idx <= maxBlockIndex {
			delta := llm.Event{Type: llm.EventTextDelta, Index: idx, Text: text}
			part := llm.PartText
			if kind == deltaToolInput {
				delta.Type, part = llm.EventToolArgsDelta, llm.PartToolCall
			}
			return d.emitDelta(ev, part, delta), nil
		}
	case "contentBlockStart", "contentBlockStop", "messageStop", "metadata":
	default:
		return false, nil // events added after this adapter was written
	}
	d.ev = streamEvent{}
	if err := json.Unmarshal(msg.Payload, &d.ev); err != nil {
		return false, fmt.Errorf("provider %q: decode %s event: %w", d.name, typ, err)
	}
	e := &d.ev
	idx := e.ContentBlockIndex
	if idx < 0 || idx > maxBlockIndex {
		return false, fmt.Errorf("provider %q: %s event: content block index %d out of range", d.name, typ, idx)
	}
	switch typ {
	case "contentBlockStart":
		if e.Start.ToolUse == nil {
			return false, nil // text and reasoning blocks start implicitly
		}
		d.setBlock(idx, blockOpen)
		ev.Type, ev.Index, ev.Block = llm.EventBlockStart, idx, llm.PartToolCall
		ev.ToolCallID, ev.ToolName = e.Start.ToolUse.ToolUseID, e.Start.ToolUse.Name
		return true, nil
	case "contentBlockDelta":
		var delta llm.Event
		var kind llm.PartType
		switch dl := &e.Delta; {
		case dl.Text != nil:
			kind = llm.PartText
			delta = llm.Event{Type: llm.EventTextDelta, Index: idx, Text: *dl.Text}
		case dl.ToolUse != nil:
			kind = llm.PartToolCall
			delta = llm.Event{Type: llm.EventToolArgsDelta, Index: idx, Text: dl.ToolUse.Input}
		case dl.ReasoningContent != nil:
			kind = llm.PartThinking
			delta = llm.Event{Type: llm.EventTextDelta, Index: idx, Signature: dl.ReasoningContent.Signature}
			if dl.ReasoningContent.Text != nil {
				delta.Text = *dl.ReasoningContent.Text
			} else if delta.Signature == "" {
				return false, nil // redacted reasoning has no canonical form
			}
		default:
			return false, nil
		}
		return d.emitDelta(ev, kind, delta), nil
	case "contentBlockStop":
		if d.block(idx) != blockOpen {
			return false, nil // a block that never had content
		}
		d.setBlock(idx, blockClosed)
		ev.Type, ev.Index = llm.EventBlockStop, idx
		return true, nil
	case "messageStop":
		d.sawStop = true
		d.stop = stopReason(e.StopReason)
		d.stopSeq = e.AdditionalModelResponseFields.StopSequence
		return false, nil
	default: // metadata
		if e.Usage == nil {
			return false, nil
		}
		d.usage, d.sawUsage = e.Usage.canonical(), true
		ev.Type, ev.Usage = llm.EventUsage, d.usage
		return true, nil
	}
}

// emitDelta fills ev with delta, preceded by an implicit EventBlockStart of
// kind when block delta.Index is not open: Bedrock sends no
// contentBlockStart for text and reasoning blocks.
func (d *streamDecoder) emitDelta(ev *llm.Event, kind llm.PartType, delta llm.Event) bool {
	if d.block(delta.Index) != blockOpen {
		d.setBlock(delta.Index, blockOpen)
		ev.Type, ev.Index, ev.Block = llm.EventBlockStart, delta.Index, kind
		d.pending, d.hasPending = delta, true
		return true
	}
	*ev = delta
	return true
}

func (d *streamDecoder) block(i int) blockState {
	if i < len(d.blocks) {
		return d.blocks[i]
	}
	return blockNone
}

func (d *streamDecoder) setBlock(i int, s blockState) {
	for len(d.blocks) <= i {
		d.blocks = append(d.blocks, blockNone)
	}
	d.blocks[i] = s
}

// exception maps an in-stream exception (the :exception-type header) to a
// client-safe error; Bedrock's message is kept as the cause, for logs.
func (d *streamDecoder) exception(typ, message string) *apierr.Error {
	cause := fmt.Errorf("provider %q: stream exception %s: %s", d.name, typ, message)
	switch typ {
	case "throttlingException":
		return apierr.Wrap(apierr.RateLimited, cause, "the upstream provider is rate limiting requests")
	case "validationException":
		return apierr.Wrap(apierr.BadRequest, cause, d.name+": "+message)
	case "modelTimeoutException":
		return apierr.Wrap(apierr.UpstreamTimeout, cause, "the upstream model timed out")
	}
	// modelStreamErrorException, internalServerException,
	// serviceUnavailableException and anything newer.
	return apierr.Wrap(apierr.UpstreamUnavailable, cause, "the upstream provider failed while streaming")
}
