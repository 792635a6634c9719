package gateway

import (
	"net/http"
	"net/url"
	"sync"
	"unicode/utf8"

	"github.com/authgate/authgate/internal/authn"
)

// The OPA input document is a contract that policies depend on (README,
// "OPA input"). It is written by hand into a pooled buffer: the token's
// claims are already JSON and are copied as is, so a request costs no
// reflection and no intermediate maps.

// request facts, as OPA sees them.
type facts struct {
	method string
	path   string
	query  url.Values
	header http.Header
	// Where the request came from (TRUSTED_PROXIES decide whether the
	// X-Forwarded-* headers count) and how authgate met it.
	host, scheme, remoteAddr string
	mode                     string // modeServe, modeProxy or modeVerify
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// hiddenHeaders never reach the policy: they carry credentials.
var hiddenHeaders = map[string]bool{"Authorization": true, "Proxy-Authorization": true, "Cookie": true}

// appendInput appends {"input":{...}} for the request and token to b.
// rawToken is included as jwt.tokenValue only when sendToken is set.
func appendInput(b []byte, f *facts, t *authn.Token, rawToken string, sendToken bool) []byte {
	b = append(b, `{"input":{"method":`...)
	b = appendString(b, f.method)
	b = append(b, `,"path":`...)
	b = appendString(b, f.path)
	b = append(b, `,"api":`...)
	b = appendString(b, f.path)
	b = append(b, `,"host":`...)
	b = appendString(b, f.host)
	b = append(b, `,"scheme":`...)
	b = appendString(b, f.scheme)
	b = append(b, `,"remote_addr":`...)
	b = appendString(b, f.remoteAddr)
	b = append(b, `,"mode":`...)
	b = appendString(b, f.mode)
	b = append(b, `,"query":{`...)
	first := true
	for k, vs := range f.query {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ":["...)
		for i, v := range vs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v)
		}
		b = append(b, ']')
	}
	b = append(b, `},"headers":{`...)
	first = true
	for k, vs := range f.header {
		if hiddenHeaders[k] {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendLowerString(b, k)
		b = append(b, ':', '"')
		for i, v := range vs {
			if i > 0 {
				b = append(b, ',', ' ')
			}
			b = appendEscaped(b, v)
		}
		b = append(b, '"')
	}
	b = append(b, `},"token":`...)
	b = append(b, t.Claims...)
	b = append(b, `,"scopes":[`...)
	for i, s := range t.Scopes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	b = append(b, `],"subject":`...)
	b = appendString(b, t.Subject)
	b = append(b, `,"validation":`...)
	b = appendString(b, t.Validation)
	if sendToken {
		b = append(b, `,"jwt":{"tokenValue":`...)
		b = appendString(b, rawToken)
		b = append(b, '}')
	}
	return append(b, '}', '}')
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

// appendLowerString appends s, lower-cased, as a JSON string. Header names
// are tokens (RFC 9110), so ASCII lower-casing is enough.
func appendLowerString(b []byte, s string) []byte {
	b = append(b, '"')
	start := len(b)
	b = appendEscaped(b, s)
	for i := start; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return append(b, '"')
}

const hex = "0123456789abcdef"

// appendEscaped appends s escaped for the inside of a JSON string; invalid
// UTF-8 becomes U+FFFD, as encoding/json does.
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
