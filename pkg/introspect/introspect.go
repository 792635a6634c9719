// Package introspect is a client for OAuth 2.0 Token Introspection (RFC 7662),
// as served by Okta's /v1/introspect and any other conforming authorization
// server. It reads no environment, registers no metrics and does not log.
package introspect

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client authentication methods for the introspection endpoint (RFC 7591 names).
const (
	ClientSecretBasic = "client_secret_basic"
	ClientSecretPost  = "client_secret_post"
	PrivateKeyJWT     = "private_key_jwt" // RFC 7523: a signed assertion, see Client.PrivateKey
)

// DefaultMaxResponseBytes bounds the introspection answer read by a Client
// whose MaxResponseBytes is zero.
const DefaultMaxResponseBytes = 64 << 10

// Client introspects tokens at one endpoint with one set of client credentials.
// A Client is safe for concurrent use. Its zero value is not usable: URL,
// ClientID and ClientSecret (or PrivateKey) must be set.
type Client struct {
	// URL is the introspection endpoint, e.g. https://example.okta.com/oauth2/default/v1/introspect.
	URL          string
	ClientID     string
	ClientSecret string
	// AuthMethod is ClientSecretBasic (the default when empty),
	// ClientSecretPost or PrivateKeyJWT.
	AuthMethod string
	// PrivateKey signs the client assertion of PrivateKeyJWT: an
	// *rsa.PrivateKey (RS256) or an *ecdsa.PrivateKey (ES256, ES384 or
	// ES512 by its curve). KeyID, when set, is the assertion's kid.
	PrivateKey crypto.Signer
	KeyID      string
	// Now is the clock of the assertion's iat and exp; nil means time.Now.
	Now func() time.Time
	// TokenTypeHint is sent as token_type_hint; empty means "access_token".
	TokenTypeHint string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// MaxResponseBytes bounds the answer; zero means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Header is added to every request; may be nil.
	Header http.Header
	// RequestHeader, when set, is called for each request with the call's
	// context and may add headers that vary per call (e.g. the X-Request-Id
	// of the request being served). It runs before Content-Type, Accept
	// and Authorization are set, so it cannot change them.
	RequestHeader func(ctx context.Context, h http.Header)
}

// Response is an introspection answer. Members RFC 7662 names are parsed;
// Raw keeps the whole answer as the server sent it, unknown members included.
type Response struct {
	Active    bool
	Scope     string
	ClientID  string
	Username  string
	TokenType string
	Exp       int64 // seconds since the epoch; 0 when absent
	Iat       int64
	Nbf       int64
	Sub       string
	Aud       []string // a string or an array on the wire
	Iss       string
	Jti       string
	Raw       json.RawMessage
	RateLimit RateLimit
	// WrongType names, in the order above, the members that were present
	// with a type other than their own (a string; a number for exp, iat
	// and nbf; a string or an array of strings for aud). Their field is
	// left zero; null counts as absent. A caller deciding on identity can
	// so tell an absent sub from a sub that was, say, a number.
	WrongType []string
}

// RateLimit is what the server said of its rate limit in Okta's
// X-Rate-Limit-* headers. Limit is -1 when the headers were absent.
type RateLimit struct {
	Limit     int
	Remaining int
	Reset     time.Time
}

// Error is a failed introspection: the endpoint could not be reached, answered
// with a non-200 status, or sent something that is not an RFC 7662 answer.
type Error struct {
	// StatusCode is the HTTP status, 0 when no answer was received.
	StatusCode int
	// Code and Description are the RFC 6749 error and error_description
	// members, when the server sent them (printable ASCII, bounded). They
	// are the server's text and may echo the token introspected: Error
	// includes them, so a caller that logs errors should drop them first.
	Code        string
	Description string
	// RetryAfter is when the server asked to be called again (Retry-After,
	// or for a 429 Okta's X-Rate-Limit-Reset); zero when it did not say.
	RetryAfter time.Time
	RateLimit  RateLimit
	// Err is the underlying transport or decoding error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("introspect: ")
	switch {
	case e.StatusCode != 0 && e.Code != "":
		fmt.Fprintf(&b, "status %d %s", e.StatusCode, e.Code)
		if e.Description != "" {
			fmt.Fprintf(&b, ": %s", e.Description)
		}
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "status %d", e.StatusCode)
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

// Introspect asks the server about token. An inactive token is not an error:
// it returns a Response with Active false. All errors are *Error.
func (c *Client) Introspect(ctx context.Context, token string) (*Response, error) {
	form := url.Values{"token": {token}}
	hint := c.TokenTypeHint
	if hint == "" {
		hint = "access_token"
	}
	form.Set("token_type_hint", hint)
	req, err := c.post(ctx, c.URL, form)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, &Error{Err: ScrubURLError(err)}
	}
	defer resp.Body.Close()
	max := c.MaxResponseBytes
	if max <= 0 {
		max = DefaultMaxResponseBytes
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	rl := parseRateLimit(resp.Header)
	if err != nil {
		return nil, &Error{StatusCode: resp.StatusCode, RateLimit: rl, Err: fmt.Errorf("reading body: %w", err)}
	}
	if int64(len(body)) > max {
		return nil, &Error{StatusCode: resp.StatusCode, RateLimit: rl, Err: fmt.Errorf("answer larger than %d bytes", max)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, body, rl)
	}
	r, err := Parse(body)
	if err != nil {
		return nil, &Error{StatusCode: resp.StatusCode, RateLimit: rl, Err: err}
	}
	r.RateLimit = rl
	return r, nil
}

// Parse decodes an RFC 7662 answer. It fails when the body is not a JSON
// object or "active" is missing or not a boolean; other members of the wrong
// type are left zero and named in WrongType (the policy still sees them in
// Raw).
func Parse(body []byte) (*Response, error) {
	// A map, not a struct: encoding/json matches struct fields without
	// regard to case, so {"active":false,"Active":true} would read as active.
	var w map[string]json.RawMessage
	if err := json.Unmarshal(body, &w); err != nil || w == nil {
		return nil, errors.New("answer is not a JSON object")
	}
	var active bool
	if err := json.Unmarshal(w["active"], &active); err != nil || len(w["active"]) == 0 || string(w["active"]) == "null" {
		return nil, errors.New(`answer lacks a boolean "active" member`)
	}
	var raw bytes.Buffer
	if err := json.Compact(&raw, body); err != nil {
		return nil, errors.New("answer is not valid JSON")
	}
	r := &Response{Active: active, Raw: bytes.Clone(raw.Bytes())}
	str := func(name string, dst *string) {
		if m := w[name]; len(m) > 0 && string(m) != "null" && json.Unmarshal(m, dst) != nil {
			r.WrongType = append(r.WrongType, name)
		}
	}
	date := func(name string, dst *int64) {
		var f float64
		if m := w[name]; len(m) > 0 && string(m) != "null" && json.Unmarshal(m, &f) != nil {
			r.WrongType = append(r.WrongType, name)
		}
		*dst = numericDate(w[name])
	}
	str("scope", &r.Scope)
	str("client_id", &r.ClientID)
	str("username", &r.Username)
	str("token_type", &r.TokenType)
	date("exp", &r.Exp)
	date("iat", &r.Iat)
	date("nbf", &r.Nbf)
	str("sub", &r.Sub)
	var ok bool
	if r.Aud, ok = audience(w["aud"]); !ok {
		r.WrongType = append(r.WrongType, "aud")
	}
	str("iss", &r.Iss)
	str("jti", &r.Jti)
	return r, nil
}

// numericDate reads an RFC 7519 NumericDate, which may carry a fraction.
func numericDate(m json.RawMessage) int64 {
	var f float64
	if len(m) == 0 || json.Unmarshal(m, &f) != nil || f < 0 || f > 1<<53 {
		return 0
	}
	return int64(f)
}

// audience reads aud, a string or an array of strings; ok is false when it
// is present (not null) and neither.
func audience(m json.RawMessage) (aud []string, ok bool) {
	if len(m) == 0 {
		return nil, true
	}
	var one *string
	if json.Unmarshal(m, &one) == nil {
		if one == nil {
			return nil, true
		}
		return []string{*one}, true
	}
	var many []string
	if json.Unmarshal(m, &many) == nil {
		return many, true
	}
	return nil, false
}

func statusError(resp *http.Response, body []byte, rl RateLimit) *Error {
	e := &Error{StatusCode: resp.StatusCode, RateLimit: rl}
	var w struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		ErrorCode        string `json:"errorCode"`    // Okta's own error shape
		ErrorSummary     string `json:"errorSummary"` // idem
	}
	if json.Unmarshal(body, &w) == nil {
		e.Code, e.Description = w.Error, w.ErrorDescription
		if e.Code == "" {
			e.Code, e.Description = w.ErrorCode, w.ErrorSummary
		}
	}
	e.Code, e.Description = printable(e.Code, 64), printable(e.Description, 256)
	e.RetryAfter = retryAfter(resp.Header, time.Now())
	if e.RetryAfter.IsZero() && resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = rl.Reset
	}
	return e
}

// printable keeps an upstream string safe to log and to put in an error:
// printable ASCII only, bounded in length.
func printable(s string, max int) string {
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

func retryAfter(h http.Header, now time.Time) time.Time {
	v := h.Get("Retry-After")
	if v == "" {
		return time.Time{}
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return now.Add(time.Duration(secs) * time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return t
	}
	return time.Time{}
}

func parseRateLimit(h http.Header) RateLimit {
	rl := RateLimit{Limit: -1, Remaining: -1}
	if v, err := strconv.Atoi(h.Get("X-Rate-Limit-Limit")); err == nil {
		rl.Limit = v
	}
	if v, err := strconv.Atoi(h.Get("X-Rate-Limit-Remaining")); err == nil {
		rl.Remaining = v
	}
	if v, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64); err == nil && v > 0 {
		rl.Reset = time.Unix(v, 0)
	}
	return rl
}

// ScrubURLError keeps the cause of a transport failure but not the request
// URL, which an operator may have configured with secrets in its query.
func ScrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}
