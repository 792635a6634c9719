// Package fault is authgate's error type: every failure on the request path
// carries a Kind, and one HTTP error handler maps the kind to a status.
package fault

import (
	"errors"
	"time"
)

// Kind classifies a failure by what the client should be told.
type Kind uint8

// Kinds, from the client's point of view.
const (
	Internal        Kind = iota // a bug or an impossible state: 500
	BadRequest                  // the request itself is malformed: 400
	Unauthenticated             // no usable credentials: 401
	Forbidden                   // the policy said no: 403
	Unavailable                 // a dependency could not answer: 503
	HeadersTooLarge             // too many or too large request headers to decide on: 431
)

func (k Kind) String() string {
	switch k {
	case BadRequest:
		return "bad_request"
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	case Unavailable:
		return "unavailable"
	case HeadersTooLarge:
		return "headers_too_large"
	}
	return "internal"
}

// Error is a failure with a kind. Code and Description are what the client
// sees (RFC 6749/6750 style: "invalid_token", ...); Err is the cause, for
// logs only, never sent to the client.
type Error struct {
	Kind        Kind
	Code        string
	Description string
	// RetryAfter, when set on an Unavailable error, is when to try again.
	RetryAfter time.Time
	Err        error
}

func (e *Error) Error() string {
	msg := e.Kind.String()
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of err: Internal unless err is, or wraps, an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }
