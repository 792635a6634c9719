// Package opa is a client for Open Policy Agent's Data API decisions
// (POST /v1/data/{path}). It reads no environment, registers no metrics and
// does not log.
package opa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// DefaultMaxResponseBytes bounds the answer read by a Client whose
// MaxResponseBytes is zero.
const DefaultMaxResponseBytes = 1 << 20

// Client asks one OPA decision for results. It is safe for concurrent use.
// Its zero value is not usable: URL must be set.
type Client struct {
	// URL is the decision's full Data API URL, e.g.
	// http://localhost:8181/v1/data/demoapi/authz/allow.
	URL string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// MaxResponseBytes bounds the answer; zero means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// RequestHeader, when set, is called for each query with the call's
	// context and may add headers that vary per call (e.g. the X-Request-Id
	// of the request being served). It runs before Content-Type is set.
	RequestHeader func(ctx context.Context, h http.Header)
}

// Result is OPA's answer to a decision query.
type Result struct {
	// Defined is false when the decision is undefined: OPA answered 200
	// without a "result" member (often a wrong URL or package name).
	Defined bool
	// Value is the decision's JSON value when Defined.
	Value json.RawMessage
	// DecisionID is present when OPA's decision logging is on.
	DecisionID string
}

// Allowed reports whether the result is the boolean true.
func (r Result) Allowed() bool { return r.Defined && string(r.Value) == "true" }

// Error is a failed query: OPA could not be reached, answered with a non-200
// status, or sent something that is not a Data API answer.
type Error struct {
	// StatusCode is the HTTP status, 0 when no answer was received.
	StatusCode int
	// Code and Message are OPA's error members (e.g. "internal_error").
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("opa: ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "status %d", e.StatusCode)
		if e.Code != "" {
			fmt.Fprintf(&b, " %s", e.Code)
		}
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
	}
	if e.Err != nil {
		if e.StatusCode != 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Decide marshals input, wraps it as {"input": ...} and queries the decision.
func (c *Client) Decide(ctx context.Context, input any) (Result, error) {
	in, err := json.Marshal(input)
	if err != nil {
		return Result{}, &Error{Err: fmt.Errorf("encoding input: %w", err)}
	}
	body := make([]byte, 0, len(in)+10)
	body = append(append(append(body, `{"input":`...), in...), '}')
	return c.Query(ctx, body)
}

// Query posts body, which must be a complete request document
// ({"input": ...}), and returns OPA's result. All errors are *Error.
func (c *Client) Query(ctx context.Context, body []byte) (Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return Result{}, &Error{Err: errors.New("bad decision URL")}
	}
	if c.RequestHeader != nil {
		c.RequestHeader(ctx, req.Header)
	}
	req.Header["Content-Type"] = contentTypeJSON
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
		}
		return Result{}, &Error{Err: err}
	}
	defer resp.Body.Close()
	max := c.MaxResponseBytes
	if max <= 0 {
		max = DefaultMaxResponseBytes
	}
	buf, err := readBody(resp, max)
	if err != nil {
		return Result{}, &Error{StatusCode: resp.StatusCode, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{StatusCode: resp.StatusCode}
		var w struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(buf, &w) == nil {
			e.Code, e.Message = printable(w.Code, 64), printable(w.Message, 256)
		}
		return Result{}, e
	}
	r, err := ParseResult(buf)
	if err != nil {
		return Result{}, &Error{StatusCode: resp.StatusCode, Err: err}
	}
	return r, nil
}

var contentTypeJSON = []string{"application/json"}

// Answers OPA sends for boolean decisions with logging off; matching them
// whole avoids a JSON decode on the hot path.
var (
	answerTrue  = []byte(`{"result":true}`)
	answerFalse = []byte(`{"result":false}`)
	answerUndef = []byte(`{}`)
)

// ParseResult decodes a Data API answer body.
func ParseResult(body []byte) (Result, error) {
	// JSON's own white space (RFC 8259 section 2), not bytes.TrimSpace's:
	// a form feed or vertical tab before the object is not JSON.
	b := bytes.Trim(body, " \t\r\n")
	switch {
	case bytes.Equal(b, answerTrue):
		return Result{Defined: true, Value: json.RawMessage("true")}, nil
	case bytes.Equal(b, answerFalse):
		return Result{Defined: true, Value: json.RawMessage("false")}, nil
	case bytes.Equal(b, answerUndef):
		return Result{}, nil
	}
	// A map, not a struct: encoding/json matches struct fields without
	// regard to case, so {"result":false,"Result":true} would be allowed.
	var w map[string]json.RawMessage
	if err := json.Unmarshal(b, &w); err != nil || len(b) == 0 || b[0] != '{' {
		return Result{}, errors.New("answer is not a JSON object")
	}
	var id string
	if m, ok := w["decision_id"]; ok && json.Unmarshal(m, &id) != nil {
		return Result{}, errors.New("answer is not a JSON object")
	}
	r := Result{DecisionID: printable(id, 128)}
	if m := w["result"]; len(m) > 0 && string(m) != "null" {
		r.Defined, r.Value = true, m
	}
	return r, nil
}

func readBody(resp *http.Response, max int64) ([]byte, error) {
	n := resp.ContentLength
	if n > max {
		return nil, fmt.Errorf("answer larger than %d bytes", max)
	}
	if n < 0 || n > 512 {
		n = 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, max+1)); err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(buf.Len()) > max {
		return nil, fmt.Errorf("answer larger than %d bytes", max)
	}
	return buf.Bytes(), nil
}

func printable(s string, max int) string {
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}
