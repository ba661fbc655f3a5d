package proxy

import (
	"context"
	"io"
	"net/http"

	"github.com/multipolar/multipolar/internal/apierr"
	"github.com/multipolar/multipolar/internal/llm"
)

// ChatProvider is an upstream reached through translation: the gateway
// encodes the canonical request into the provider's API and decodes its
// answers back. Provider packages implement it; they import only llm,
// apierr and the standard library.
type ChatProvider interface {
	Name() string
	// NewChatRequest builds the upstream request for r (streamed when
	// r.Stream). It returns an *apierr.Error of kind BadRequest naming the
	// feature and the provider when r asks for something the provider cannot
	// honour (r.Unsupported included).
	NewChatRequest(ctx context.Context, r *llm.Request) (*http.Request, error)
	// DecodeChat decodes a successful non-streamed answer.
	DecodeChat(resp *http.Response, body []byte) (*llm.Response, error)
	// NewStreamDecoder decodes a successful streamed answer.
	NewStreamDecoder(body io.Reader) StreamDecoder
	// DecodeError maps a non-2xx answer to an *apierr.Error whose Message is
	// safe for clients, with RetryAfter set from the upstream's headers.
	DecodeError(resp *http.Response, body []byte) *apierr.Error
}

// StreamDecoder yields canonical events from an upstream stream. Next fills
// ev with the next event; it returns io.EOF after the last event, and any
// other error when the stream breaks. ev's strings are valid until the next
// call.
//
// It is an alias of an unnamed interface type so that provider packages,
// which may not import proxy, can declare the identical return type
// (type StreamDecoder = interface{ Next(*llm.Event) error }).
type StreamDecoder = interface {
	Next(ev *llm.Event) error
}

// Ingress is the client-facing side of translation.
type Ingress interface {
	Schema
	// EncodeResponse appends the client-API encoding of a complete answer.
	EncodeResponse(dst []byte, r *llm.Request, resp *llm.Response) []byte
	// NewStreamEncoder returns an encoder for one streamed answer to r.
	NewStreamEncoder(r *llm.Request) StreamEncoder
}

// StreamEncoder turns canonical events into the client's stream format:
// Encode appends the bytes for ev (possibly none) to dst. An alias of an
// unnamed interface type, as StreamDecoder is, so ingress packages can
// declare the identical type without importing proxy.
type StreamEncoder = interface {
	Encode(dst []byte, ev *llm.Event) []byte
}

// UsageMeter reads token usage from a passthrough answer as it passes.
// Event is given each complete server-sent event (blank line included) and
// returns the bytes the client receives: the event, a rewrite of it, or
// nothing. Body is given the end of a non-streamed body (all of it when it
// is small). Usage returns the counts and whether the upstream reported
// them; when it did not (a cut stream, say) the counts are the meter's
// estimate.
//
// An alias of an unnamed interface type, as StreamDecoder is, so provider
// packages can return it without importing proxy.
type UsageMeter = interface {
	Event(ev []byte) []byte
	Body(tail []byte)
	Usage() (llm.Usage, bool)
}

// metering is implemented by passthrough upstreams that can meter their
// answers. The upstream's NewRequest asks for usage where the client did
// not (an OpenAI stream without include_usage); its meter then keeps the
// usage chunk from the client.
type metering interface {
	Meter(r *llm.RawRequest) UsageMeter
}
