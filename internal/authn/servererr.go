package authn

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/authgate/authgate/pkg/introspect"
)

// What a failed introspection means, by who is to blame. The breaker counts
// only failedUpstream: a caller chooses its token, so anything the server
// says about one token must not stop the introspection of everyone else's.
type failure uint8

const (
	failedUpstream   failure = iota // no answer, a timeout, 5xx, 429, 408, an unreadable answer: 503, counts
	rejectedToken                   // this token's answer (400, 413, 414, 422, 431, 401/403 invalid_token): 401, cached
	failedConfigured                // authgate's credentials or endpoint (invalid_client, 401/403, 404, ...): 503, does not count
)

// classify reads a failed introspection. A 400 is about the token unless
// the server names a client error: authgate's request is the same for every
// token but the token itself. 401 and 403 are about authgate's credentials
// (RFC 6749 5.2) unless the server says invalid_token; any other 4xx
// (404, 405, 415, ...) cannot depend on the token and is the endpoint or
// request authgate was configured with.
func classify(ie *introspect.Error) failure {
	switch s := ie.StatusCode; {
	case s < 400, s >= 500, s == http.StatusTooManyRequests, s == http.StatusRequestTimeout:
		return failedUpstream
	case ie.Code == "invalid_client", ie.Code == "unauthorized_client":
		return failedConfigured
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		if ie.Code == "invalid_token" {
			return rejectedToken
		}
		return failedConfigured
	case s == http.StatusBadRequest, s == http.StatusRequestEntityTooLarge, s == http.StatusRequestURITooLong,
		s == http.StatusUnprocessableEntity, s == http.StatusRequestHeaderFieldsTooLarge:
		return rejectedToken
	}
	return failedConfigured
}

// maxServerText bounds the server's error text in a debug line.
const maxServerText = 200

// scrubbed is ie without the server's description, and with its error code
// only when it has the shape of one and is not the token: that text is the
// server's and may echo it. (A token short enough to hide inside a real
// code, "invalid", is not looked for there.) What the server said goes to the debug log, redacted
// (logServerText). The copy keeps the status, Retry-After and rate limit
// that callers read.
func scrubbed(ie *introspect.Error, token string) *introspect.Error {
	c := *ie
	c.Description = ""
	if !isErrorCode(c.Code) || c.Code == token || len(token) >= 8 && strings.Contains(c.Code, token) {
		c.Code = ""
	}
	return &c
}

// isErrorCode reports whether s looks like an RFC 6749 error code
// (invalid_request) or one of Okta's (E0000011).
func isErrorCode(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	if s[0] == 'E' && len(s) >= 2 {
		for i := 1; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// logServerText writes what the server said about a failed call at debug
// level: its code and description, with the token and anything shaped like
// one removed, bounded to maxServerText bytes.
func (in *Introspection) logServerText(ctx context.Context, ie *introspect.Error, token string) {
	if in.Log == nil || ie.Code == "" && ie.Description == "" || !in.Log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	in.Log.DebugContext(ctx, "authorization server error", "status", ie.StatusCode,
		"error", bounded(redact(ie.Code, token)), "description", bounded(redact(ie.Description, token)))
}

func bounded(s string) string {
	if len(s) > maxServerText {
		return s[:maxServerText]
	}
	return s
}

const redacted = "[redacted]"

// redact removes token from s, then every run of b64token characters
// (RFC 6750) that is long enough to be a token (20 or more) or that is a
// piece of this one (8 or more): a server may echo a token cut short or
// inside other text.
func redact(s, token string) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, redacted)
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isB64TokenChar(s[j]) {
			j++
		}
		if j == i {
			b.WriteByte(s[i])
			i++
			continue
		}
		run := s[i:j]
		if len(run) >= 20 || len(run) >= 8 && strings.Contains(token, run) {
			b.WriteString(redacted)
		} else {
			b.WriteString(run)
		}
		i = j
	}
	return b.String()
}

func isB64TokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '='
}
