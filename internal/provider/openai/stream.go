package openai

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// Stream reader bounds: lines are read through a bufferSize buffer and may
// grow to maxLine; a longer line breaks the stream with ErrLineTooLong.
const (
	bufferSize = 32 << 10
	maxLine    = 1 << 20
)

// ErrLineTooLong reports an SSE line longer than 1 MiB.
var ErrLineTooLong = errors.New("openai stream: line longer than 1 MiB")

// StreamDecoder is proxy.StreamDecoder, declared here as the identical
// alias of an unnamed interface type because provider packages may not
// import proxy (STYLE §1): Go compares method result types by identity, so
// only an alias on both sides lets *Provider satisfy proxy.ChatProvider.
type StreamDecoder = interface {
	Next(ev *llm.Event) error
}

// ChunkDecoder decodes an OpenAI chat.completion.chunk stream into
// canonical events. It is for one stream and not safe for concurrent use.
//
// Events: Start on the first chunk that has an id or choices (Azure's
// leading prompt-filter chunk has neither and is skipped); a text block for
// content (and for refusal), a thinking block for reasoning_content (sent
// by compatible servers); one block per tool call, opened on its first
// chunk (id and name) with argument deltas after; Usage from the usage
// chunk; then BlockStop and Stop. OpenAI sends usage after the finish
// chunk, so Stop (with the remembered finish_reason) is emitted only at
// [DONE] or at the end of the body after a finish_reason. A body that ends
// before any finish_reason is a broken stream (an UpstreamUnavailable
// *apierr.Error wrapping io.ErrUnexpectedEOF). A
// `data: {"error":…}` event becomes EventError and ends the stream.
//
// Blocks are sequential: a new block closes the open one. OpenAI never
// interleaves tool calls; should a server send arguments for a tool call
// whose block was closed, they are still delivered with that block's Index.
type ChunkDecoder struct {
	p    *Provider
	br   *bufio.Reader
	long []byte // a line longer than the bufio buffer
	data []byte // the data of the current event

	head chunkHead // the whole chunk; head.chunkBody once started
	// dec decodes every chunk, fed through in: one json.Decoder keeps its
	// scanner and error-context buffers, where json.Unmarshal would
	// allocate them for every chunk. fed counts the bytes given to it.
	dec *json.Decoder
	in  payloadReader
	fed int64

	pending []llm.Event
	next    int

	started  bool
	finished bool // Stop or Error queued; io.EOF once drained
	err      error
	sawStop  bool
	stop     llm.StopReason
	blocks   int // blocks opened so far
	open     int // Index of the open block, -1 when none
	openKind llm.PartType
	tools    []toolState // by OpenAI tool_calls index
}

type toolState struct {
	block int // Index of its block, -1 when not seen
	id    string
}

// chunkHead is a chat.completion.chunk; once Start is sent only chunkBody
// is decoded, so id and model are not allocated for every chunk.
type chunkHead struct {
	ID    string `json:"id"`
	Model string `json:"model"`
	chunkBody
}

type chunkBody struct {
	Choices []streamChoice `json:"choices"`
	Usage   *wireUsage     `json:"usage"`
	Error   *wireError     `json:"error"`
}

type streamChoice struct {
	Index int `json:"index"`
	Delta struct {
		Content          string           `json:"content"`
		Refusal          string           `json:"refusal"`
		ReasoningContent string           `json:"reasoning_content"`
		ToolCalls        []streamToolCall `json:"tool_calls"`
	} `json:"delta"`
	FinishReason string `json:"finish_reason"`
}

type streamToolCall struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// NewStreamDecoder returns a ChunkDecoder for an OpenAI SSE body.
func (p *Provider) NewStreamDecoder(body io.Reader) StreamDecoder { return p.NewChunkDecoder(body) }

// NewChunkDecoder returns a decoder for an OpenAI SSE body.
func (p *Provider) NewChunkDecoder(body io.Reader) *ChunkDecoder {
	d := &ChunkDecoder{p: p, br: bufio.NewReaderSize(body, bufferSize), open: -1, pending: make([]llm.Event, 0, 8)}
	d.dec = json.NewDecoder(&d.in)
	return d
}

// payloadReader hands one event's data to the json.Decoder.
type payloadReader struct{ b []byte }

func (r *payloadReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// Next fills ev with the next event. It returns io.EOF after Stop (or an
// Error event) and another error when the stream breaks. ev's strings stay
// valid after the call (they are the decoded chunk's own strings).
func (d *ChunkDecoder) Next(ev *llm.Event) error {
	for {
		if d.next < len(d.pending) {
			*ev = d.pending[d.next]
			d.next++
			return nil
		}
		d.pending, d.next = d.pending[:0], 0
		if d.finished {
			return io.EOF
		}
		if d.err != nil {
			return d.err
		}
		payload, err := d.readEvent()
		switch {
		case errors.Is(err, io.EOF):
			if !d.sawStop {
				d.err = apierr.Wrap(apierr.UpstreamUnavailable, io.ErrUnexpectedEOF, "provider \""+d.p.name+"\" ended the stream before the answer was complete")
				continue
			}
			d.end()
		case err != nil:
			d.err = err
		case bytes.Equal(payload, []byte("[DONE]")):
			d.end()
		default:
			if err := d.handle(payload); err != nil {
				d.err = err
			}
		}
	}
}

// end queues the close of the open block and Stop.
func (d *ChunkDecoder) end() {
	d.closeBlock()
	d.pending = append(d.pending, llm.Event{Type: llm.EventStop, StopReason: d.stop})
	d.finished = true
}

func (d *ChunkDecoder) handle(payload []byte) error {
	var err error
	c := &d.head.chunkBody
	c.Usage, c.Error = nil, nil
	for i := range c.Choices[:cap(c.Choices)] {
		ch := &c.Choices[:cap(c.Choices)][i]
		tcs := ch.Delta.ToolCalls[:0]
		clear(tcs[:cap(tcs)])
		*ch = streamChoice{}
		ch.Delta.ToolCalls = tcs
	}
	c.Choices = c.Choices[:0]
	payload = bytes.TrimSpace(payload)
	d.in.b = payload
	d.fed += int64(len(payload))
	if d.started {
		err = d.dec.Decode(c)
	} else {
		d.head.ID, d.head.Model = "", ""
		err = d.dec.Decode(&d.head)
	}
	if err == nil && d.dec.InputOffset() != d.fed {
		err = errors.New("trailing data after the chunk's JSON value")
	}
	if err != nil {
		return apierr.Wrap(apierr.UpstreamUnavailable, err, "provider \""+d.p.name+"\" sent an invalid stream chunk")
	}
	if c.Error != nil {
		d.pending = append(d.pending, llm.Event{Type: llm.EventError, Err: d.p.streamError(c.Error)})
		d.finished = true
		return nil
	}
	if !d.started {
		if d.head.ID == "" && len(c.Choices) == 0 && c.Usage == nil {
			return nil // Azure's prompt-filter chunk
		}
		d.started = true
		d.pending = append(d.pending, llm.Event{Type: llm.EventStart, ID: d.head.ID, Model: d.head.Model})
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue // one choice: NewChatRequest refuses n > 1
		}
		if t := ch.Delta.ReasoningContent; t != "" {
			d.text(llm.PartThinking, t)
		}
		if t := ch.Delta.Content; t != "" {
			d.text(llm.PartText, t)
		}
		if t := ch.Delta.Refusal; t != "" {
			d.text(llm.PartText, t)
		}
		for j := range ch.Delta.ToolCalls {
			d.toolCall(&ch.Delta.ToolCalls[j])
		}
		if ch.FinishReason != "" {
			d.sawStop, d.stop = true, stopReason(ch.FinishReason)
		}
	}
	if c.Usage != nil {
		d.pending = append(d.pending, llm.Event{Type: llm.EventUsage, Usage: c.Usage.canonical()})
	}
	return nil
}

// text queues a delta for a text or thinking block, opening one if the
// open block is of another kind.
func (d *ChunkDecoder) text(kind llm.PartType, t string) {
	if d.open < 0 || d.openKind != kind {
		d.openBlock(kind, "", "")
	}
	d.pending = append(d.pending, llm.Event{Type: llm.EventTextDelta, Index: d.open, Text: t})
}

func (d *ChunkDecoder) toolCall(tc *streamToolCall) {
	i := tc.Index
	if i < 0 || i > 1024 {
		i = 0
	}
	for len(d.tools) <= i {
		d.tools = append(d.tools, toolState{block: -1})
	}
	ts := &d.tools[i]
	if ts.block < 0 || (tc.ID != "" && tc.ID != ts.id) {
		ts.block = d.openBlock(llm.PartToolCall, tc.ID, tc.Function.Name)
		ts.id = tc.ID
	}
	if tc.Function.Arguments != "" {
		d.pending = append(d.pending, llm.Event{Type: llm.EventToolArgsDelta, Index: ts.block, Text: tc.Function.Arguments})
	}
}

func (d *ChunkDecoder) openBlock(kind llm.PartType, id, name string) int {
	d.closeBlock()
	d.open, d.openKind = d.blocks, kind
	d.blocks++
	d.pending = append(d.pending, llm.Event{Type: llm.EventBlockStart, Index: d.open, Block: kind, ToolCallID: id, ToolName: name})
	return d.open
}

func (d *ChunkDecoder) closeBlock() {
	if d.open >= 0 {
		d.pending = append(d.pending, llm.Event{Type: llm.EventBlockStop, Index: d.open})
		d.open = -1
	}
}

// readEvent returns the data of the next SSE event (data lines joined by
// newlines), skipping comments and events without data. It returns io.EOF
// at the end of the body.
func (d *ChunkDecoder) readEvent() ([]byte, error) {
	d.data = d.data[:0]
	have := false
	for {
		line, err := d.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && have {
				return d.data, nil
			}
			return nil, err
		}
		if len(line) == 0 {
			if have {
				return d.data, nil
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		if string(field) != "data" {
			continue // comment (":…"), event:, id:, retry:
		}
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if have {
			d.data = append(d.data, '\n')
		}
		d.data = append(d.data, value...)
		have = true
	}
}

// readLine returns the next line without its line ending. A last line
// without one is returned before io.EOF.
func (d *ChunkDecoder) readLine() ([]byte, error) {
	line, err := d.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		d.long = append(d.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = d.br.ReadSlice('\n')
			if len(d.long)+len(line) > maxLine {
				return nil, apierr.Wrap(apierr.UpstreamUnavailable, ErrLineTooLong, "provider \""+d.p.name+"\" sent an oversized stream event")
			}
			d.long = append(d.long, line...)
		}
		line = d.long
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}
