// Package fault is authgate's error type and its one table: every failure
// on the request path carries a Kind, and the kind says the answer's
// status, its WWW-Authenticate challenge, its default error code and the
// outcome the metrics and the access log count it as.
package fault

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// Kind classifies a failure by what the client should be told.
type Kind uint8

// Kinds, from the client's point of view.
const (
	Internal        Kind = iota // a bug or an impossible state: 500
	BadRequest                  // the request itself is malformed: 400
	NoToken                     // no bearer credentials at all: 401 with a bare challenge
	Unauthenticated             // credentials that are not valid: 401 invalid_token
	Forbidden                   // the policy said no: 403
	Unavailable                 // a dependency could not answer: 503 with Retry-After
	HeadersTooLarge             // too many or too large request headers to decide on: 431
	Unroutable                  // a request target no route answers (OPTIONS *): 400 without a challenge
	BadGateway                  // proxy mode: the upstream exchange failed: 502
	GatewayTimeout              // proxy mode: no upstream answer within UPSTREAM_TIMEOUT: 504
	numKinds
)

// Outcomes of a failed request, as the authgate_decisions_total metric and
// the access log name them.
const (
	OutcomeError        = "error"
	OutcomeBadRequest   = "bad_request"
	OutcomeNoToken      = "no_token"
	OutcomeInvalidToken = "invalid_token"
	OutcomeDeny         = "deny"
	OutcomeUnavailable  = "unavailable"
)

// row is what a kind means for the answer.
type row struct {
	name      string // Kind.String
	status    int
	outcome   string
	code      string // the body's error when the Error has no Code
	challenge bool   // a WWW-Authenticate challenge (RFC 6750 section 3)
}

// table is the one place that maps a kind to its answer.
var table = [numKinds]row{
	Internal:        {"internal", http.StatusInternalServerError, OutcomeError, "internal_error", false},
	BadRequest:      {"bad_request", http.StatusBadRequest, OutcomeBadRequest, "invalid_request", true},
	NoToken:         {"no_token", http.StatusUnauthorized, OutcomeNoToken, "unauthorized", true},
	Unauthenticated: {"unauthenticated", http.StatusUnauthorized, OutcomeInvalidToken, "invalid_token", true},
	Forbidden:       {"forbidden", http.StatusForbidden, OutcomeDeny, "access_denied", false},
	Unavailable:     {"unavailable", http.StatusServiceUnavailable, OutcomeUnavailable, "temporarily_unavailable", false},
	HeadersTooLarge: {"headers_too_large", http.StatusRequestHeaderFieldsTooLarge, OutcomeBadRequest, "request_header_fields_too_large", false},
	Unroutable:      {"unroutable", http.StatusBadRequest, OutcomeBadRequest, "invalid_request", false},
	// The upstream's failures come after the check: the request's outcome
	// stays the check's (allow, public); these are for the fault's own use.
	BadGateway:     {"bad_gateway", http.StatusBadGateway, OutcomeUnavailable, "bad_gateway", false},
	GatewayTimeout: {"gateway_timeout", http.StatusGatewayTimeout, OutcomeUnavailable, "gateway_timeout", false},
}

func (k Kind) row() row {
	if k >= numKinds {
		return table[Internal]
	}
	return table[k]
}

func (k Kind) String() string { return k.row().name }

// Status is the HTTP status of an answer of kind k.
func (k Kind) Status() int { return k.row().status }

// Outcome is how the metrics and the access log count a failure of kind k.
func (k Kind) Outcome() string { return k.row().outcome }

// Challenges says whether an answer of kind k carries a WWW-Authenticate
// challenge.
func (k Kind) Challenges() bool { return k.row().challenge }

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
	// Answer, when set, replaces the status and the body: the answer a
	// policy shaped for its deny (an object decision), or one a handler
	// shaped (POST /revoke's 502 says what was revoked all the same).
	Answer *Answer
}

// Answer is a deny as a policy (or a handler) shaped it.
type Answer struct {
	Status   int         // 4xx or 5xx; 0 means the kind's
	Header   http.Header // added to the answer
	Body     []byte      // nil: the usual JSON error body
	BodyType string      // Content-Type of Body when Header names none
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

// ErrorCode is the answer's error code: Code, else the kind's default.
func (e *Error) ErrorCode() string {
	if e.Code != "" {
		return e.Code
	}
	return e.Kind.row().code
}

// Reason is why the request failed, short, for the access log: the
// description, then the cause when it says more (why the policy denied,
// why a dependency failed). Never a token: causes are authgate's own
// errors, which never carry one.
func (e *Error) Reason() string {
	switch {
	case e.Kind == NoToken:
		return "no bearer token"
	case e.Kind == Forbidden && e.Err != nil:
		return e.Err.Error()
	case e.Kind == Unavailable && e.Err != nil:
		return e.Description + ": " + e.Err.Error()
	}
	return e.Description
}

// Quotable keeps what an auth-param's quoted string (a challenge's
// error_description, RFC 6750 3, RFC 9449 7.1) may hold safely:
// printable ASCII without '"' and '\'.
func Quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}

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
