package authz

import (
	"encoding/json"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

// Document is what authgate POSTs to OPA's Data API: {"input": ...}.
type Document struct {
	Input *Input `json:"input"`
}

// Input is the OPA input document: the contract policies rely on
// (docs/opa-input.md). Its json tags are the member names; a field added here is
// a field every policy may come to depend on.
//
// A nil Query or Scopes is written {} and [], where encoding/json would
// write null: a policy never sees null there.
//
// It is encoded on the hot path by AppendJSON, which writes what
// encoding/json would write for Document{in} (TestAppendJSONAgrees proves
// it) at a tenth of the cost: the token's claims are already JSON and are
// copied as they are, and no map is built for the headers.
type Input struct {
	// Method and Path are the request's (in verify mode, the request the
	// proxy asks about). Path is the cleaned path: the path routed, matched
	// by PUBLIC_PATHS and sent upstream.
	Method string `json:"method"`
	Path   string `json:"path"`
	// API is Path again, under the name the service authgate replaces gave
	// it; its policies read input.api. Legacy: new policies read path.
	API string `json:"api"`
	// Host, Scheme and RemoteAddr say where the request came from, from the
	// forwarding headers only when a trusted proxy sent them (package
	// forwarded).
	Host       string `json:"host"`
	Scheme     string `json:"scheme"`
	RemoteAddr string `json:"remote_addr"`
	// Mode is how authgate met the request: serve, proxy or verify.
	Mode  string     `json:"mode"`
	Query url.Values `json:"query"`
	// Headers are the request headers the policy may see.
	Headers Headers `json:"headers"`
	// Token is the token's claims as the authorization server sent them.
	Token json.RawMessage `json:"token"`
	// Scopes is the token's scope split on spaces; Subject its sub (else
	// client_id).
	Scopes  []string `json:"scopes"`
	Subject string   `json:"subject"`
	// Validation is how the token was validated: "jwt" (its signature and
	// claims checked locally) or "introspection" (TOKEN_VALIDATION).
	Validation string `json:"validation"`
	// Issuer is the URL of the issuer that answered for the token (the
	// exact iss of its tokens: OKTA_ISSUER, or an ISSUER_N_URL); the
	// gateway sets it from authn.Request's Issuer (docs/issuers.md).
	Issuer string `json:"issuer"`
	// JWT carries the raw token, only when OPA_SEND_TOKEN=true.
	JWT *JWT `json:"jwt,omitempty"`

	// Sender constraint (docs/sender-constrained.md). TokenType is the
	// scheme the token came with: "Bearer" or "DPoP". DPoP is there when a
	// DPoP proof was verified; ClientCert when a trusted proxy forwarded a
	// client certificate (CLIENT_CERT_HEADER) that could be read.
	TokenType  string      `json:"token_type"`
	DPoP       *DPoPProof  `json:"dpop,omitempty"`
	ClientCert *ClientCert `json:"client_cert,omitempty"`

	// Source is the token cache entry the input was made from. It is not
	// part of the document: the decision cache keys on it, so that no
	// decision outlives the entry (nor, through it, the token).
	Source *authn.Token `json:"-"`
}

// DPoPProof is the input's dpop member: JKT is the RFC 7638 thumbprint
// of the proof's key, the token's cnf.jkt.
type DPoPProof struct {
	JKT string `json:"jkt"`
}

// ClientCert is the input's client_cert member: the forwarded
// certificate's SHA-256 thumbprint (base64url, a bound token's
// cnf["x5t#S256"]) and its subject in RFC 2253 form.
type ClientCert struct {
	X5tS256 string `json:"x5t_s256"`
	Subject string `json:"subject"`
}

// JWT is the input's jwt member.
type JWT struct {
	TokenValue string `json:"tokenValue"`
}

// Headers are request headers as a policy sees them: lower-case names,
// repeated values joined by ", ", never Authorization, Proxy-Authorization
// or Cookie (they carry credentials; OPA_SEND_TOKEN sends the token), and
// only the names in Only when it is set. A view over the request's own
// header map: nothing is copied.
type Headers struct {
	Header http.Header
	// Only is OPA_INPUT_HEADERS as canonical names; nil means every header.
	Only map[string]bool
	// Also, when set, names headers shown whatever Only says: in verify
	// mode, the method-override headers, which authgate cannot remove from
	// what the proxy forwards, so the policy must always see them.
	Also func(name string) bool
}

// shows reports whether the header named k (canonical) is in the view.
func (h Headers) shows(k string) bool {
	return !hiddenHeaders[k] && (h.Only == nil || h.Only[k] || h.Also != nil && h.Also(k))
}

// hiddenHeaders never reach the policy: they carry credentials.
var hiddenHeaders = map[string]bool{"Authorization": true, "Proxy-Authorization": true, "Cookie": true}

// Bounds on the input's headers: past either, the request is answered 431
// without asking OPA. Go's server reads up to 1 MiB of headers, and 2,000
// small ones made every decision 14 times slower; no client needs more than
// Envoy's default max_headers_count of 100 for the policy to decide.
const (
	MaxHeaderFields = 100
	MaxHeaderBytes  = 64 << 10 // of the input's "headers" JSON
)

// ErrHeadersTooLarge is the error past those bounds.
var ErrHeadersTooLarge = &fault.Error{Kind: fault.HeadersTooLarge, Code: "request_header_fields_too_large",
	Description: "request headers too large for the policy: over 100 fields or 64 KiB"}

// Modes, as Input.Mode names them.
const (
	ModeServe  = "serve"  // authgate's own demo routes
	ModeProxy  = "proxy"  // reverse proxy to UPSTREAM_URL
	ModeVerify = "verify" // forward-auth: a proxy asks about a request
)

// SetToken fills in, which describes a request, with the members of the
// active token t: its claims, scopes, subject and validation, and the raw
// token when sendToken is set (OPA_SEND_TOKEN). It also sets API to Path.
func (in *Input) SetToken(t *authn.Token, raw string, sendToken bool) {
	in.Token, in.Scopes, in.Subject, in.Source = t.Claims, t.Scopes, t.Subject, t
	in.Validation = t.Validation
	in.API = in.Path
	in.JWT = nil
	if sendToken {
		in.JWT = &JWT{TokenValue: raw}
	}
}

// AppendJSON appends Document{in} as JSON to b. Past MaxHeaderFields or
// MaxHeaderBytes of headers the error is ErrHeadersTooLarge (and b is of no
// use).
func (in *Input) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"input":{"method":`...)
	b = appendString(b, in.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, in.Path)
	b = append(b, `,"api":`...)
	b = appendString(b, in.API)
	b = append(b, `,"host":`...)
	b = appendString(b, in.Host)
	b = append(b, `,"scheme":`...)
	b = appendString(b, in.Scheme)
	b = append(b, `,"remote_addr":`...)
	b = appendString(b, in.RemoteAddr)
	b = append(b, `,"mode":`...)
	b = appendString(b, in.Mode)
	b = append(b, `,"query":{`...)
	first := true
	for k, vs := range in.Query {
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
	b = append(b, `},"headers":`...)
	b, err := in.Headers.appendJSON(b)
	if err != nil {
		return b, err
	}
	b = append(b, `,"token":`...)
	if len(in.Token) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, in.Token...)
	}
	b = append(b, `,"scopes":[`...)
	for i, s := range in.Scopes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	b = append(b, `],"subject":`...)
	b = appendString(b, in.Subject)
	b = append(b, `,"validation":`...)
	b = appendString(b, in.Validation)
	b = append(b, `,"issuer":`...)
	b = appendString(b, in.Issuer)
	if in.JWT != nil {
		b = append(b, `,"jwt":{"tokenValue":`...)
		b = appendString(b, in.JWT.TokenValue)
		b = append(b, '}')
	}
	b = append(b, `,"token_type":`...)
	b = appendString(b, in.TokenType)
	if in.DPoP != nil {
		b = append(b, `,"dpop":{"jkt":`...)
		b = appendString(b, in.DPoP.JKT)
		b = append(b, '}')
	}
	if in.ClientCert != nil {
		b = append(b, `,"client_cert":{"x5t_s256":`...)
		b = appendString(b, in.ClientCert.X5tS256)
		b = append(b, `,"subject":`...)
		b = appendString(b, in.ClientCert.Subject)
		b = append(b, '}')
	}
	return append(b, '}', '}'), nil
}

// Check reports ErrHeadersTooLarge when h is past MaxHeaderFields or
// MaxHeaderBytes, as AppendJSON would, without encoding anything: the
// gateway checks before it asks a Decider, so that such a request is a 431
// whatever the decider chain (an open breaker, a cached decision) would do.
func (h Headers) Check() error {
	fields, n := 0, 0
	for k, vs := range h.Header {
		if !h.shows(k) {
			continue
		}
		if fields++; fields > MaxHeaderFields {
			return ErrHeadersTooLarge
		}
		// ,"name":"v1, v2"
		n += 1 + 2 + escapedLen(k) + 1 + 2 + 2*max(len(vs)-1, 0)
		for _, v := range vs {
			n += escapedLen(v)
		}
	}
	if fields > 0 {
		n-- // no comma before the first
	}
	if n > MaxHeaderBytes {
		return ErrHeadersTooLarge
	}
	return nil
}

// MarshalJSON implements json.Marshaler.
func (h Headers) MarshalJSON() ([]byte, error) { return h.appendJSON(nil) }

func (h Headers) appendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	first := true
	start, fields := len(b), 0
	for k, vs := range h.Header {
		if !h.shows(k) {
			continue
		}
		if fields++; fields > MaxHeaderFields || len(b)-start > MaxHeaderBytes {
			return b, ErrHeadersTooLarge
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
	if len(b)-start > MaxHeaderBytes {
		return b, ErrHeadersTooLarge
	}
	return append(b, '}'), nil
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

// escapedLen is len(appendEscaped(nil, s)).
func escapedLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 0x20 && c != '"' && c != '\\':
				n++
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			default:
				n += 6
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += 6
			i++
			continue
		}
		n += size
		i += size
	}
	return n
}

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
