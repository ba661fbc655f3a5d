package llm

// EventType is the kind of a canonical stream event.
type EventType uint8

// Event types. A well-formed stream is: Start, then for each content block
// BlockStart, deltas, BlockStop (blocks may interleave only by Index), then
// Usage (zero or more; the last wins — values are totals, never increments),
// then Stop. Error may end a stream at any point.
const (
	EventStart EventType = iota
	// EventBlockStart opens block Index of kind Block (text, thinking or a
	// tool call with ToolCallID and ToolName).
	EventBlockStart
	// EventTextDelta appends Text to block Index (text or thinking).
	EventTextDelta
	// EventToolArgsDelta appends Text, a piece of the tool call's arguments
	// JSON, to block Index.
	EventToolArgsDelta
	// EventBlockStop closes block Index.
	EventBlockStop
	// EventUsage carries the token totals so far.
	EventUsage
	// EventStop ends the answer with StopReason.
	EventStop
	// EventError reports an error from the upstream mid-stream.
	EventError
)

// Event is one canonical stream event. Decoders fill a caller-owned Event
// and encoders read it; strings may alias the decoder's buffer and are valid
// only until the next call, so a stream translates without allocating per
// event.
type Event struct {
	Type  EventType
	Index int
	// Block is the kind of block EventBlockStart opens: PartText,
	// PartThinking or PartToolCall.
	Block PartType
	// Text is the delta of EventTextDelta and EventToolArgsDelta.
	Text string
	// ID and Model are set on EventStart.
	ID    string
	Model string
	// ToolCallID and ToolName are set on EventBlockStart of a tool call.
	ToolCallID string
	ToolName   string
	// Signature completes a thinking block (Anthropic), on EventTextDelta
	// with empty Text.
	Signature string
	// Usage is set on EventUsage (and may be on EventStop).
	Usage Usage
	// StopReason and StopSequence are set on EventStop.
	StopReason   StopReason
	StopSequence string
	// Err is set on EventError. Provider adapters set an *apierr.Error so
	// the ingress can map its kind to the client's error type.
	Err error
}

// Reset clears e for reuse.
func (e *Event) Reset() { *e = Event{} }
