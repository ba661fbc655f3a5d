package anthropic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/multipolar/multipolar/internal/llm"
	"github.com/multipolar/multipolar/internal/llm/jsonscan"
)

// MaxLineSize bounds one line of an upstream stream; a longer line fails
// the stream rather than growing memory without limit.
const MaxLineSize = 1 << 20

// ErrLineTooLong is returned when a stream line exceeds MaxLineSize.
var ErrLineTooLong = errors.New("anthropic stream line too long")

// StreamDecoder is the engine's stream-decoder contract
// (proxy.StreamDecoder), declared as the identical unnamed interface type
// since provider packages do not import proxy.
type StreamDecoder = interface {
	Next(ev *llm.Event) error
}

// EventDecoder reads Anthropic's Messages stream (server-sent events) and
// yields canonical events. It is not safe for concurrent use. Event strings
// alias its buffers and are valid until the next call to Next; it does not
// allocate per event once its buffers have grown.
//
// message_start yields Start then Usage; message_delta, whose usage is
// cumulative, yields Usage (totals, input including cache reads and
// writes) then Stop; ping, citations and blocks of unknown types are
// skipped; an error event yields Error with an *apierr.Error and ends the
// stream.
type EventDecoder struct {
	p       *Provider
	r       *bufio.Reader
	line    []byte // a line longer than the bufio buffer
	data    []byte // the current event's data
	scratch []byte // unescaped strings of the current event
	pending [2]llm.Event
	npend   int
	ipend   int
	usage   llm.Usage
	skip    uint64 // blocks (by index < 64) of types this decoder skips
	stopped bool   // Stop was yielded
	done    bool
}

// NewStreamDecoder returns a decoder for a successful streamed answer.
func (p *Provider) NewStreamDecoder(body io.Reader) StreamDecoder {
	return &EventDecoder{p: p, r: bufio.NewReaderSize(body, 32<<10), data: make([]byte, 0, 4096), scratch: make([]byte, 0, 1024)}
}

// readLine returns the next line without its line ending; it is valid
// until the next call.
func (d *EventDecoder) readLine() ([]byte, error) {
	line, err := d.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		d.line = append(d.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = d.r.ReadSlice('\n')
			if len(d.line)+len(line) > MaxLineSize {
				return nil, ErrLineTooLong
			}
			d.line = append(d.line, line...)
		}
		line = d.line
	}
	if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	return bytes.TrimSuffix(line, []byte{'\r'}), nil
}

// Next fills ev with the next event. It returns io.EOF after the stream's
// last event, io.ErrUnexpectedEOF when the stream ends before a stop.
func (d *EventDecoder) Next(ev *llm.Event) error {
	for {
		if d.ipend < d.npend {
			*ev = d.pending[d.ipend]
			d.ipend++
			return nil
		}
		d.ipend, d.npend = 0, 0
		if d.done {
			return io.EOF
		}
		if err := d.readEvent(); err != nil {
			if errors.Is(err, io.EOF) {
				d.done = true
				if d.stopped {
					return io.EOF
				}
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if len(d.data) == 0 {
			continue
		}
		if err := d.handle(); err != nil {
			d.done = true
			return err
		}
	}
}

// readEvent reads lines up to a blank line, collecting data lines in
// d.data. Event names are not needed: every data object has a "type".
func (d *EventDecoder) readEvent() error {
	d.data = d.data[:0]
	d.scratch = d.scratch[:0]
	for {
		line, err := d.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && len(d.data) > 0 {
				return nil
			}
			return err
		}
		if len(line) == 0 {
			if len(d.data) > 0 {
				return nil
			}
			continue
		}
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			v = bytes.TrimPrefix(v, []byte{' '})
			if len(d.data) > 0 {
				d.data = append(d.data, '\n')
			}
			if len(d.data)+len(v) > MaxLineSize {
				return ErrLineTooLong
			}
			d.data = append(d.data, v...)
		}
	}
}

// str returns a string token's value, aliasing d.data when it has no
// escapes and d.scratch otherwise.
func (d *EventDecoder) str(tok []byte) string {
	if len(tok) < 2 || tok[0] != '"' {
		return ""
	}
	if !hasEscape(tok) {
		return bytesString(tok[1 : len(tok)-1])
	}
	start := len(d.scratch)
	d.scratch, _ = jsonscan.AppendUnescaped(d.scratch, tok[1:len(tok)-1]) // tok is a valid string token
	return bytesString(d.scratch[start:])
}

func (d *EventDecoder) push(ev llm.Event) {
	d.pending[d.npend] = ev
	d.npend++
}

// handle turns the event in d.data into pending canonical events.
func (d *EventDecoder) handle() error {
	if !json.Valid(d.data) {
		return fmt.Errorf("provider %q: malformed stream event", d.p.name)
	}
	var typ, message, block, delta, index, usage, errObj []byte
	it := newObjectIter(d.data)
	for m, ok := it.next(); ok; m, ok = it.next() {
		switch string(m.key) {
		case "type":
			typ = m.val
		case "message":
			message = m.val
		case "content_block":
			block = m.val
		case "delta":
			delta = m.val
		case "index":
			index = m.val
		case "usage":
			usage = m.val
		case "error":
			errObj = m.val
		}
	}
	idx, _ := parseInt(index)
	switch d.str(typ) {
	case "message_start":
		var id, model string
		mi := newObjectIter(message)
		for m, ok := mi.next(); ok; m, ok = mi.next() {
			switch string(m.key) {
			case "id":
				id = d.str(m.val)
			case "model":
				model = d.str(m.val)
			case "usage":
				d.readUsage(m.val)
			}
		}
		d.push(llm.Event{Type: llm.EventStart, ID: id, Model: model, Usage: d.usage})
		d.push(llm.Event{Type: llm.EventUsage, Usage: d.usage})
	case "content_block_start":
		var btype, text, id, name, sig, data []byte
		bi := newObjectIter(block)
		for m, ok := bi.next(); ok; m, ok = bi.next() {
			switch string(m.key) {
			case "type":
				btype = m.val
			case "text", "thinking":
				text = m.val
			case "id":
				id = m.val
			case "name":
				name = m.val
			case "signature":
				sig = m.val
			case "data":
				data = m.val
			}
		}
		ev := llm.Event{Type: llm.EventBlockStart, Index: int(idx)}
		switch d.str(btype) {
		case "text":
			ev.Block = llm.PartText
		case "thinking", "redacted_thinking":
			ev.Block = llm.PartThinking
		case "tool_use":
			ev.Block, ev.ToolCallID, ev.ToolName = llm.PartToolCall, d.str(id), d.str(name)
		default:
			d.setSkip(idx)
			return nil
		}
		d.push(ev)
		if len(data) > 0 { // redacted_thinking: the whole block is here
			v := d.str(data)
			start := len(d.scratch)
			d.scratch = append(d.scratch, RedactedPrefix...)
			d.scratch = append(d.scratch, v...)
			d.push(llm.Event{Type: llm.EventTextDelta, Index: int(idx), Signature: bytesString(d.scratch[start:])})
			return nil
		}
		if t, s := d.str(text), d.str(sig); t != "" || s != "" {
			d.push(llm.Event{Type: llm.EventTextDelta, Index: int(idx), Text: t, Signature: s})
		}
	case "content_block_delta":
		if d.skipped(idx) {
			return nil
		}
		ev := llm.Event{Type: llm.EventTextDelta, Index: int(idx)}
		var dtype []byte
		di := newObjectIter(delta)
		for m, ok := di.next(); ok; m, ok = di.next() {
			switch string(m.key) {
			case "type":
				dtype = m.val
			case "text", "thinking", "partial_json":
				ev.Text = d.str(m.val)
			case "signature":
				ev.Signature = d.str(m.val)
			}
		}
		switch d.str(dtype) {
		case "text_delta", "thinking_delta", "signature_delta":
		case "input_json_delta":
			if ev.Text == "" {
				return nil // Anthropic opens with an empty piece
			}
			ev.Type = llm.EventToolArgsDelta
		default: // citations_delta and anything newer
			return nil
		}
		d.push(ev)
	case "content_block_stop":
		if !d.skipped(idx) {
			d.push(llm.Event{Type: llm.EventBlockStop, Index: int(idx)})
		}
	case "message_delta":
		var reason, seq string
		di := newObjectIter(delta)
		for m, ok := di.next(); ok; m, ok = di.next() {
			switch string(m.key) {
			case "stop_reason":
				reason = d.str(m.val)
			case "stop_sequence":
				seq = d.str(m.val)
			}
		}
		d.readUsage(usage)
		d.push(llm.Event{Type: llm.EventUsage, Usage: d.usage})
		d.push(llm.Event{Type: llm.EventStop, StopReason: stopReason(reason), StopSequence: seq, Usage: d.usage})
		d.stopped = true
	case "message_stop":
		d.done = true
		if !d.stopped {
			d.stopped = true
			d.push(llm.Event{Type: llm.EventStop, Usage: d.usage})
		}
	case "error":
		var etype, emsg string
		ei := newObjectIter(errObj)
		for m, ok := ei.next(); ok; m, ok = ei.next() {
			switch string(m.key) {
			case "type":
				etype = d.str(m.val)
			case "message":
				emsg = d.str(m.val)
			}
		}
		d.push(llm.Event{Type: llm.EventError, Err: d.p.streamError(etype, emsg)})
		d.done = true
	}
	// ping and unknown events yield nothing.
	return nil
}

// readUsage folds a usage object's non-null counts (cumulative totals)
// into d.usage.
func (d *EventDecoder) readUsage(obj []byte) {
	var in, cr, cw int64 = -1, -1, -1
	it := newObjectIter(obj)
	for m, ok := it.next(); ok; m, ok = it.next() {
		n, ok := parseInt(m.val)
		if !ok {
			continue
		}
		switch string(m.key) {
		case "input_tokens":
			in = n
		case "cache_read_input_tokens":
			cr = n
		case "cache_creation_input_tokens":
			cw = n
		case "output_tokens":
			d.usage.OutputTokens = n
		}
	}
	if in < 0 && cr < 0 && cw < 0 {
		return
	}
	base := d.usage.InputTokens - d.usage.CachedTokens - d.usage.CacheWriteTokens // Anthropic's uncached input
	if in >= 0 {
		base = in
	}
	if cr >= 0 {
		d.usage.CachedTokens = cr
	}
	if cw >= 0 {
		d.usage.CacheWriteTokens = cw
	}
	d.usage.InputTokens = max(base, 0) + d.usage.CachedTokens + d.usage.CacheWriteTokens
}

func (d *EventDecoder) setSkip(idx int64) {
	if idx >= 0 && idx < 64 {
		d.skip |= 1 << uint(idx)
	}
}

func (d *EventDecoder) skipped(idx int64) bool {
	return idx >= 0 && idx < 64 && d.skip&(1<<uint(idx)) != 0
}
