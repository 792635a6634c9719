// Package bearer reads the bearer token of a request (RFC 6750 section
// 2.1): where it is, how long it may be, what it may hold.
package bearer

import (
	"net/http"
	"strings"

	"github.com/authgate/authgate/internal/fault"
)

// MaxTokenBytes bounds a bearer token. It stays well below the server's
// MaxHeaderBytes, past which Go answers 431 before any handler runs.
const MaxTokenBytes = 8 << 10

// ErrNoToken is a request without bearer credentials: 401 with a bare
// challenge, as RFC 6750 section 3.1 asks.
var ErrNoToken = &fault.Error{Kind: fault.NoToken, Description: "a bearer token is required"}

// Token extracts the token of an "Authorization: Bearer" header
// (RFC 6750 section 2.1). Errors are *fault.Error: ErrNoToken when there is no
// bearer credential, BadRequest invalid_request for a malformed request,
// Unauthenticated invalid_token for a value that cannot be a token.
func Token(h http.Header) (string, error) {
	scheme, tok, err := Credentials(h)
	if err == nil && scheme != SchemeBearer {
		return "", ErrNoToken
	}
	return tok, err
}

// Schemes Credentials reads, as it spells them (input.token_type).
const (
	SchemeBearer = "Bearer" // RFC 6750
	SchemeDPoP   = "DPoP"   // RFC 9449 section 7.1
)

// Credentials extracts the scheme and token of an "Authorization: Bearer"
// or "Authorization: DPoP" header (RFC 6750 section 2.1, RFC 9449 section
// 7.1: the same token68-like b64token syntax). The scheme, matched without
// regard to case, is returned as SchemeBearer or SchemeDPoP. Errors are
// Token's; any other scheme is ErrNoToken.
func Credentials(h http.Header) (scheme, token string, err error) {
	vals := h["Authorization"]
	switch len(vals) {
	case 0:
		return "", "", ErrNoToken
	case 1:
	default:
		return "", "", &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "more than one Authorization header"}
	}
	s, rest, _ := strings.Cut(vals[0], " ")
	switch {
	case strings.EqualFold(s, SchemeBearer):
		scheme = SchemeBearer
	case strings.EqualFold(s, SchemeDPoP):
		scheme = SchemeDPoP
	default:
		return "", "", ErrNoToken
	}
	tok := strings.TrimLeft(rest, " ")
	switch {
	case tok == "":
		desc := "empty bearer token"
		if scheme == SchemeDPoP {
			desc = "empty DPoP token"
		}
		return "", "", &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: desc}
	case len(tok) > MaxTokenBytes:
		return "", "", &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token too long"}
	case !isB64Token(tok):
		return "", "", &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "malformed token"}
	}
	return scheme, tok, nil
}

// isB64Token reports whether s matches RFC 6750's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		if !b64tokenChar[s[i]] {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

var b64tokenChar = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c], t[c+'a'-'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()
