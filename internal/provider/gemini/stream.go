package gemini

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// maxLine bounds one SSE line (one chunk's JSON).
const maxLine = 1 << 20

// ErrStreamCut reports a stream that ended before Gemini said why it
// stopped (no finishReason): the connection was cut.
var ErrStreamCut = errors.New("gemini stream ended without a finish reason")

// ErrLineTooLong reports an SSE line over 1 MiB.
var ErrLineTooLong = errors.New("gemini stream line exceeds 1 MiB")

// StreamDecoder is the method set of proxy.StreamDecoder, as an alias of an
// unnamed interface type: provider packages may not import proxy, and Go
// compares method result types by identity, so only the identical alias
// lets *Provider satisfy proxy.ChatProvider.
//
// Gemini's decoder returns io.EOF after EventStop or EventError,
// ErrStreamCut when the body ends before a finishReason, and any read or
// decode error.
type StreamDecoder = interface {
	Next(ev *llm.Event) error
}

// streamDecoder decodes a streamGenerateContent?alt=sse body into canonical
// events. It is for one stream and not safe for concurrent use.
type streamDecoder struct {
	name string
	br   *bufio.Reader
	long []byte // a line longer than br's buffer
	data []byte // the current event's data

	pos int // the next unread byte of data

	// Chunks are decoded from data by a jscan into chunk, which keep their
	// buffers for the whole stream: an event allocates only its strings.
	scan  jscan
	chunk wireChunk
	args  []byte

	// A chunk whose JSON continues into the next SSE event is decoded as
	// before the scanner: jdec reads the rest of the stream through Read,
	// which serves one event's data at a time, each followed by a newline.
	jdec    *json.Decoder
	raw     json.RawMessage
	pending []byte // unread data of the current event
	eof     bool   // the body is exhausted

	queue []llm.Event
	qpos  int

	started  bool
	finished bool // a finishReason (or a prompt block) was seen
	done     bool // nothing more to emit
	reason   llm.StopReason
	usage    llm.Usage
	hasUsage bool

	open      bool // a text or thinking block is open
	openType  llm.PartType
	nextIndex int
	calls     int
}

// NewStreamDecoder returns a decoder for a streamed answer.
func (p *Provider) NewStreamDecoder(body io.Reader) StreamDecoder {
	return newStreamDecoder(p.name, body)
}

func newStreamDecoder(name string, body io.Reader) *streamDecoder {
	return &streamDecoder{name: name, br: bufio.NewReaderSize(body, 64<<10), queue: make([]llm.Event, 0, 8)}
}

// Read serves the data of the stream's SSE events to jdec, each followed
// by a newline, reading the next event only when the last is consumed.
func (d *streamDecoder) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.eof {
			return 0, io.EOF
		}
		ok, err := d.readEvent()
		if err != nil {
			return 0, err
		}
		if !ok {
			d.eof = true
			return 0, io.EOF
		}
		d.data = append(d.data, '\n')
		d.pending = d.data
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// Next fills ev with the next event; it returns io.EOF after EventStop (or
// EventError), ErrStreamCut when the body ends early, and any read error.
// ev's strings are valid until the next call.
func (d *streamDecoder) Next(ev *llm.Event) error {
	for {
		if d.qpos < len(d.queue) {
			*ev = d.queue[d.qpos]
			d.qpos++
			return nil
		}
		d.queue, d.qpos = d.queue[:0], 0
		if d.done {
			return io.EOF
		}
		if err := d.handle(); err != nil {
			if errors.Is(err, io.EOF) { // clean end of body
				if !d.finished {
					d.done = true
					return ErrStreamCut
				}
				d.finish()
				continue
			}
			d.done = true
			return err
		}
	}
}

// readEvent reads one SSE event's data into d.data. It returns false at
// the end of the body.
func (d *streamDecoder) readEvent() (bool, error) {
	d.data = d.data[:0]
	have := false
	for {
		line, err := d.readLine()
		if err == io.EOF {
			if len(line) == 0 {
				return have, nil
			}
			err = nil // a last line without a newline
		}
		if err != nil {
			return false, err
		}
		if len(line) == 0 {
			if have {
				return true, nil
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		if string(field) != "data" { // comments, event:, id:, retry:
			continue
		}
		value = bytes.TrimPrefix(value, []byte(" "))
		if have {
			d.data = append(d.data, '\n')
		}
		d.data = append(d.data, value...)
		have = true
	}
}

// readLine returns the next line without its "\n" or "\r\n"; the slice is
// valid until the next call.
func (d *streamDecoder) readLine() ([]byte, error) {
	line, err := d.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		d.long = append(d.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(d.long) > maxLine {
				return nil, ErrLineTooLong
			}
			line, err = d.br.ReadSlice('\n')
			d.long = append(d.long, line...)
		}
		line = d.long
	}
	if len(line) > maxLine {
		return nil, ErrLineTooLong
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read gemini stream: %w", err)
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, err
}

// handle decodes the next chunk and queues its events. It returns io.EOF
// at the clean end of the body.
func (d *streamDecoder) handle() error {
	if d.jdec != nil {
		return d.handleJoined()
	}
	for {
		for d.pos < len(d.data) && isSpace(d.data[d.pos]) {
			d.pos++
		}
		if d.pos < len(d.data) {
			break
		}
		ok, err := d.readEvent()
		d.pos = 0
		if err != nil {
			return err // from the body or the line reader
		}
		if !ok {
			d.eof = true
			return io.EOF
		}
	}
	start := d.pos
	s := &d.scan
	*s = jscan{b: d.data, i: start, scratch: s.scratch[:0]}
	d.chunk.reset()
	s.chunk(&d.chunk)
	if s.err == errNeedMore {
		// Serve the rest of this event, then the next ones, to jdec.
		d.pending = append(d.data[start:], '\n')
		d.data = d.data[:0]
		d.jdec = json.NewDecoder(d)
		return d.handleJoined()
	}
	d.pos = s.i
	return d.emit()
}

// handleJoined decodes the next chunk through jdec.
func (d *streamDecoder) handleJoined() error {
	if err := d.jdec.Decode(&d.raw); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		var syn *json.SyntaxError
		if errors.Is(err, io.ErrUnexpectedEOF) && d.eof {
			return ErrStreamCut // the body ended inside a chunk
		}
		if !errors.As(err, &syn) {
			return err // from the body or the line reader
		}
		return d.decodeError(err)
	}
	s := &d.scan
	*s = jscan{b: d.raw, scratch: s.scratch[:0]}
	d.chunk.reset()
	s.chunk(&d.chunk)
	return d.emit()
}

func (d *streamDecoder) decodeError(err error) error {
	return apierr.Wrap(apierr.UpstreamUnavailable, fmt.Errorf("provider %q: decode stream chunk: %w", d.name, err),
		"the upstream stream could not be read")
}

// emit queues the events of the chunk d.scan decoded.
func (d *streamDecoder) emit() error {
	if err := d.scan.err; err != nil {
		return d.decodeError(err)
	}
	if err := d.scan.typeErr; err != nil {
		return d.decodeError(err)
	}
	c := &d.chunk
	if c.err != nil {
		d.closeBlock()
		d.queue = append(d.queue, llm.Event{Type: llm.EventError, Err: (&Provider{name: d.name}).apiError(c.err, 0, "")})
		d.done = true
		return nil
	}
	if !d.started {
		d.started = true
		d.queue = append(d.queue, llm.Event{Type: llm.EventStart, ID: string(c.id), Model: string(c.model)})
	}
	if c.hasUsage {
		d.usage, d.hasUsage = c.usage.usage(), true
	}
	if c.hasFeedback && len(c.blockReason) != 0 && len(c.cands) == 0 {
		d.finished, d.reason = true, llm.StopContentFilter
	}
	for i := range c.cands {
		cand := &c.cands[i]
		if cand.index != 0 {
			continue
		}
		for j := range cand.parts {
			d.part(&cand.parts[j])
		}
		if len(cand.finish) != 0 {
			d.finished, d.reason = true, stopReason(string(cand.finish))
		}
	}
	return nil
}

// part queues the events of one part.
func (d *streamDecoder) part(rp *wirePart) {
	if rp.hasCall {
		d.closeBlock()
		idx := d.nextIndex
		d.nextIndex++
		if len(rp.args) == 0 || string(rp.args) == "null" {
			d.args = append(d.args[:0], '{', '}')
		} else {
			d.args = appendCompactJSON(d.args[:0], rp.args)
		}
		d.queue = append(d.queue,
			llm.Event{Type: llm.EventBlockStart, Index: idx, Block: llm.PartToolCall,
				ToolCallID: callID(string(rp.callID), d.calls), ToolName: string(rp.name), Signature: string(rp.sig)},
			llm.Event{Type: llm.EventToolArgsDelta, Index: idx, Text: string(d.args)},
			llm.Event{Type: llm.EventBlockStop, Index: idx})
		d.calls++
		return
	}
	t := llm.PartText
	if rp.thought {
		t = llm.PartThinking
	}
	if len(rp.text) == 0 && (t != llm.PartThinking || len(rp.sig) == 0) {
		return
	}
	if !d.open || d.openType != t {
		d.closeBlock()
		d.open, d.openType = true, t
		d.queue = append(d.queue, llm.Event{Type: llm.EventBlockStart, Index: d.nextIndex, Block: t})
		d.nextIndex++
	}
	idx := d.nextIndex - 1
	if len(rp.text) != 0 {
		d.queue = append(d.queue, llm.Event{Type: llm.EventTextDelta, Index: idx, Text: string(rp.text)})
	}
	if t == llm.PartThinking && len(rp.sig) != 0 {
		d.queue = append(d.queue, llm.Event{Type: llm.EventTextDelta, Index: idx, Signature: string(rp.sig)})
	}
}

func (d *streamDecoder) closeBlock() {
	if d.open {
		d.queue = append(d.queue, llm.Event{Type: llm.EventBlockStop, Index: d.nextIndex - 1})
		d.open = false
	}
}

// finish queues the end of a stream that said why it stopped.
func (d *streamDecoder) finish() {
	d.closeBlock()
	reason := d.reason
	if reason == llm.StopEndTurn && d.calls > 0 {
		reason = llm.StopToolUse
	}
	if d.hasUsage {
		d.queue = append(d.queue, llm.Event{Type: llm.EventUsage, Usage: d.usage})
	}
	d.queue = append(d.queue, llm.Event{Type: llm.EventStop, StopReason: reason, Usage: d.usage})
	d.done = true
}
