package anthropic

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// Translator is the Anthropic Messages API ingress for translated routes:
// it renders canonical answers and errors as Anthropic's API does. It has
// no state and is safe for concurrent use; the zero value is ready.
type Translator struct{}

// WriteError writes e in Anthropic's error schema; see WriteError.
func (Translator) WriteError(w http.ResponseWriter, e *apierr.Error) { WriteError(w, e) }

// AppendStreamError appends e as an SSE error event; see AppendStreamError.
func (Translator) AppendStreamError(b []byte, e *apierr.Error) []byte {
	return AppendStreamError(b, e)
}

// EncodeResponse appends resp as a Message object. The model is the
// client-facing r.Model; the id gets a "msg_" prefix when it lacks one.
// A tool call whose Arguments are not a JSON object (a non-Anthropic model
// can emit broken JSON) is sent as {"_raw": "<the text>"} so the message
// still parses and the client's tool validation reports the problem.
func (Translator) EncodeResponse(dst []byte, r *llm.Request, resp *llm.Response) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, "msg_", resp.ID)
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = llm.AppendJSONString(dst, clientModel(r, resp.Model))
	dst = append(dst, `,"content":[`...)
	n := 0
	for i := range resp.Content {
		p := &resp.Content[i]
		start := len(dst)
		if n > 0 {
			dst = append(dst, ',')
		}
		switch p.Type {
		case llm.PartText:
			dst = append(dst, `{"type":"text","text":`...)
			dst = llm.AppendJSONString(dst, p.Text)
			dst = append(dst, `,"citations":null}`...)
		case llm.PartThinking:
			if data, ok := strings.CutPrefix(p.Signature, RedactedPrefix); ok && p.Text == "" {
				dst = append(dst, `{"type":"redacted_thinking","data":`...)
				dst = llm.AppendJSONString(dst, data)
				dst = append(dst, '}')
				break
			}
			dst = append(dst, `{"type":"thinking","thinking":`...)
			dst = llm.AppendJSONString(dst, p.Text)
			dst = append(dst, `,"signature":`...)
			dst = llm.AppendJSONString(dst, p.Signature)
			dst = append(dst, '}')
		case llm.PartToolCall:
			if p.ToolCall == nil {
				dst = dst[:start]
				continue
			}
			dst = append(dst, `{"type":"tool_use","id":`...)
			dst = appendID(dst, "toolu_", p.ToolCall.ID)
			dst = append(dst, `,"name":`...)
			dst = llm.AppendJSONString(dst, p.ToolCall.Name)
			dst = append(dst, `,"input":`...)
			dst = appendInput(dst, p.ToolCall.Arguments)
			dst = append(dst, `,"caller":{"type":"direct"}}`...)
		default:
			dst = dst[:start]
			continue
		}
		n++
	}
	dst = append(dst, `],"stop_reason":"`...)
	dst = append(dst, stopReason(resp.StopReason)...)
	dst = append(dst, `","stop_sequence":`...)
	dst = appendNullable(dst, resp.StopSequence)
	dst = append(dst, `,"stop_details":null,"usage":`...)
	dst = appendUsage(dst, &resp.Usage)
	return append(dst, `,"container":null,"diagnostics":null}`...)
}

// clientModel is the model name the client asked for, falling back to the
// upstream's.
func clientModel(r *llm.Request, upstream string) string {
	if r != nil && r.Model != "" {
		return r.Model
	}
	return upstream
}

// stopReason maps a canonical stop reason. An unknown one is reported as
// end_turn: a finished Message always has a reason.
func stopReason(s llm.StopReason) string {
	switch s {
	case llm.StopMaxTokens:
		return "max_tokens"
	case llm.StopToolUse:
		return "tool_use"
	case llm.StopSequence:
		return "stop_sequence"
	case llm.StopContentFilter:
		return "refusal"
	}
	return "end_turn"
}

// appendUsage appends a Usage object. Anthropic's input_tokens excludes
// cache reads and writes; the canonical InputTokens includes them.
func appendUsage(dst []byte, u *llm.Usage) []byte {
	dst = append(dst, `{"input_tokens":`...)
	dst = strconv.AppendInt(dst, uncachedInput(u), 10)
	dst = append(dst, `,"cache_creation_input_tokens":`...)
	dst = strconv.AppendInt(dst, u.CacheWriteTokens, 10)
	dst = append(dst, `,"cache_read_input_tokens":`...)
	dst = strconv.AppendInt(dst, u.CachedTokens, 10)
	dst = append(dst, `,"cache_creation":null,"output_tokens":`...)
	dst = strconv.AppendInt(dst, u.OutputTokens, 10)
	return append(dst, `,"service_tier":null,"server_tool_use":null,"inference_geo":null,"output_tokens_details":null,"speed":null}`...)
}

func uncachedInput(u *llm.Usage) int64 {
	return max(u.InputTokens-u.CachedTokens-u.CacheWriteTokens, 0)
}

func appendNullable(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return llm.AppendJSONString(dst, s)
}

const idChars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// appendID appends a JSON string id with prefix, keeping only the
// characters Anthropic's ids allow ([A-Za-z0-9_-]); an empty id gets a
// random one. Message ids get the "msg_" prefix; tool call ids keep their
// form (the client echoes them back in tool_result, and the translated
// history must keep matching the upstream's), getting "toolu_" only when
// random. It does not allocate.
func appendID(dst []byte, prefix, id string) []byte {
	dst = append(dst, '"')
	if !strings.HasPrefix(id, prefix) && (prefix == "msg_" || id == "") {
		dst = append(dst, prefix...)
	}
	n := 0
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c == '_' || c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
			dst = append(dst, c)
			n++
		}
	}
	if n == 0 {
		for range 24 {
			dst = append(dst, idChars[rand.IntN(len(idChars))])
		}
	}
	return append(dst, '"')
}

// appendInput appends tool arguments as a JSON object: compacted when they
// are one, {} when empty, else wrapped as {"_raw": text}.
func appendInput(dst []byte, args string) []byte {
	a := strings.TrimSpace(args)
	if a == "" {
		return append(dst, "{}"...)
	}
	if a[0] == '{' && json.Valid([]byte(a)) {
		b := bytes.NewBuffer(dst)
		if json.Compact(b, []byte(a)) == nil {
			return b.Bytes()
		}
	}
	dst = append(dst, `{"_raw":`...)
	dst = llm.AppendJSONString(dst, args)
	return append(dst, '}')
}
