// Package apierr defines the small set of error kinds the gateway returns to
// clients, with a message safe to show them and the internal cause kept for
// logs. Ingress adapters render an *Error in their client's own schema.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies a client-visible failure. Each kind has one HTTP status.
type Kind uint8

// Kinds, in the order of the request's life.
const (
	Internal Kind = iota
	BadRequest
	Unauthorized
	Forbidden
	NotFound
	TooLarge
	RateLimited
	ClientCanceled
	UpstreamTimeout
	UpstreamUnavailable
)

var kindStatus = [...]int{
	Internal:            http.StatusInternalServerError,
	BadRequest:          http.StatusBadRequest,
	Unauthorized:        http.StatusUnauthorized,
	Forbidden:           http.StatusForbidden,
	NotFound:            http.StatusNotFound,
	TooLarge:            http.StatusRequestEntityTooLarge,
	RateLimited:         http.StatusTooManyRequests,
	ClientCanceled:      499, // nginx's "client closed request"; never sent, only logged and counted
	UpstreamTimeout:     http.StatusGatewayTimeout,
	UpstreamUnavailable: http.StatusBadGateway,
}

var kindName = [...]string{
	Internal:            "internal",
	BadRequest:          "bad_request",
	Unauthorized:        "unauthorized",
	Forbidden:           "forbidden",
	NotFound:            "not_found",
	TooLarge:            "too_large",
	RateLimited:         "rate_limited",
	ClientCanceled:      "client_canceled",
	UpstreamTimeout:     "upstream_timeout",
	UpstreamUnavailable: "upstream_unavailable",
}

// CodeOverloaded marks an UpstreamUnavailable error whose every upstream
// said it was overloaded (Anthropic's 529): Anthropic clients receive it as
// 529 overloaded_error.
const CodeOverloaded = "overloaded_error"

// Status is the HTTP status for k.
func (k Kind) Status() int { return kindStatus[k] }

// String names k, for logs and metrics.
func (k Kind) String() string { return kindName[k] }

// Error is a failure with a kind, a message safe for clients and an optional
// internal cause that is logged, never sent.
type Error struct {
	Kind Kind
	// Message is shown to the client. It never holds a secret or an upstream URL.
	Message string
	// Param names the offending request field, when there is one.
	Param string
	// Code is a short machine-readable code, e.g. "model_not_found".
	Code string
	// RetryAfter is the Retry-After header value to send, if any.
	RetryAfter string
	// Cause is the internal error, for logs.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Kind.String() + ": " + e.Message + ": " + e.Cause.Error()
	}
	return e.Kind.String() + ": " + e.Message
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Cause }

// New returns an *Error of kind k with a client-safe message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k with a client-safe message and an internal cause.
func Wrap(k Kind, cause error, msg string) *Error {
	return &Error{Kind: k, Message: msg, Cause: cause}
}

// WithParam sets Param and returns e.
func (e *Error) WithParam(p string) *Error { e.Param = p; return e }

// WithCode sets Code and returns e.
func (e *Error) WithCode(c string) *Error { e.Code = c; return e }

// From returns err as an *Error; anything else becomes Internal with a
// generic message, so no internal detail reaches a client.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Internal, Message: "internal error", Cause: err}
}
