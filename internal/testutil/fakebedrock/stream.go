package fakebedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/multipolar/multipolar/internal/testutil/fakescript"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// paddingAlphabet is the source of Bedrock's "p" padding field: each event
// carries a prefix of it.
const paddingAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// stream writes the answer as an AWS event stream, flushing each message:
// messageStart; for text, contentBlockDelta pieces and contentBlockStop; for
// a tool use, contentBlockStart, contentBlockDelta input pieces and
// contentBlockStop; then messageStop and metadata. Text blocks get no
// contentBlockStart, as on Bedrock.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, a answer, b Behavior) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	ew := &eventWriter{s: s, ctx: ctx, w: w, rc: http.NewResponseController(w),
		enc: eventstream.NewEncoder(), delay: b.ChunkDelay}

	ew.event("messageStart", map[string]any{"role": "assistant"})
	deltas := 0
	// stop reports whether the stream ended early after a content delta.
	stop := func() bool {
		deltas++
		if b.StreamErrorAfter > 0 && deltas >= b.StreamErrorAfter {
			typ := b.StreamException
			if typ == "" {
				typ = "modelStreamErrorException"
			}
			ew.exception(typ, streamException(typ))
			return true
		}
		if b.CutAfter > 0 && deltas >= b.CutAfter {
			if ew.result == fakescript.Done && !ew.failed {
				fakescript.Abort(w)
			}
			return true
		}
		return false
	}
	block := 0
	if len(a.textPieces) > 0 {
		for _, p := range a.textPieces {
			ew.event("contentBlockDelta", map[string]any{"contentBlockIndex": block, "delta": map[string]any{"text": p}})
			if stop() {
				return
			}
		}
		ew.event("contentBlockStop", map[string]any{"contentBlockIndex": block})
		block++
	}
	if a.tool != nil {
		ew.event("contentBlockStart", map[string]any{"contentBlockIndex": block, "start": map[string]any{
			"toolUse": map[string]any{"toolUseId": a.tool.ID, "name": a.tool.Name}}})
		for _, p := range a.toolPieces {
			ew.event("contentBlockDelta", map[string]any{"contentBlockIndex": block,
				"delta": map[string]any{"toolUse": map[string]any{"input": p}}})
			if stop() {
				return
			}
		}
		ew.event("contentBlockStop", map[string]any{"contentBlockIndex": block})
	}
	ew.event("messageStop", map[string]any{"stopReason": a.stopReason})
	ew.event("metadata", map[string]any{"usage": a.usage(), "metrics": a.metrics(s.opts.Now())})
}

// eventWriter encodes event-stream messages, each flushed on its own, and
// waits ChunkDelay between them. After a failure it does nothing.
type eventWriter struct {
	s      *Server
	ctx    context.Context
	w      http.ResponseWriter
	rc     *http.ResponseController
	enc    *eventstream.Encoder
	delay  time.Duration
	wrote  bool
	result fakescript.Wait
	failed bool
}

// event writes one :message-type event. Headers are in the order Bedrock
// sends them: :event-type, :content-type, :message-type.
func (ew *eventWriter) event(typ string, payload map[string]any) {
	var h eventstream.Headers
	h.Set(":event-type", eventstream.StringValue(typ))
	h.Set(":content-type", eventstream.StringValue("application/json"))
	h.Set(":message-type", eventstream.StringValue("event"))
	ew.write(h, payload)
}

// exception writes one :message-type exception message; SDKs surface it as
// the modeled error named by :exception-type (e.g. *types.ThrottlingException).
func (ew *eventWriter) exception(typ, message string) {
	var h eventstream.Headers
	h.Set(":exception-type", eventstream.StringValue(typ))
	h.Set(":content-type", eventstream.StringValue("application/json"))
	h.Set(":message-type", eventstream.StringValue("exception"))
	ew.write(h, map[string]any{"message": message})
}

func (ew *eventWriter) write(h eventstream.Headers, payload map[string]any) {
	if ew.failed || ew.result != fakescript.Done {
		return
	}
	if ew.wrote && ew.delay > 0 {
		if ew.result = ew.s.Sleep(ew.ctx, ew.delay); ew.result != fakescript.Done {
			if ew.result == fakescript.ServerClosed {
				fakescript.Abort(ew.w)
			}
			return
		}
	}
	ew.wrote = true
	payload["p"] = padding(payload)
	var buf bytes.Buffer
	if err := ew.enc.Encode(&buf, eventstream.Message{Headers: h, Payload: marshal(payload)}); err != nil {
		ew.failed = true
		return
	}
	if _, err := ew.w.Write(buf.Bytes()); err != nil {
		ew.failed = true
		return
	}
	if err := ew.rc.Flush(); err != nil {
		ew.failed = true
	}
}

// padding returns the "p" field for payload. Bedrock picks a random length;
// deriving it from the payload keeps transcripts reproducible while still
// varying the length between events.
func padding(payload map[string]any) string {
	raw, _ := json.Marshal(payload) // payload has no "p" yet and always encodes
	n := 0
	for _, c := range raw {
		n = (n*31 + int(c)) % 1009
	}
	return paddingAlphabet[:1+n%len(paddingAlphabet)]
}
