package gateway

import (
	"net/http"
	"strings"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
)

// addHeaders adds every value of from to h.
func addHeaders(h, from http.Header) {
	for k, vs := range from {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
}

// grant is what an allowed request carries to its handler.
type grant struct {
	token    *authn.Token
	decision authz.Decision
}

// IdentityHeaders name the headers that carry the caller's identity to the
// upstream (proxy mode) or back to the proxy (forward-auth).
type IdentityHeaders struct {
	Subject, ClientID, Scopes string
}

// set writes the token's identity into h, replacing any value.
func (ih IdentityHeaders) set(h http.Header, t *authn.Token) {
	setOrDel(h, ih.Subject, t.Subject)
	setOrDel(h, ih.ClientID, t.ClientID)
	setOrDel(h, ih.Scopes, t.Scope)
}

// setAll writes all three identity headers into h, empty ones included:
// some proxies copy only the headers present in the answer (Envoy's
// allowed_upstream_headers), and would otherwise let a client's own copy of
// an absent one through.
func (ih IdentityHeaders) setAll(h http.Header, t *authn.Token) {
	for _, p := range [][2]string{{ih.Subject, t.Subject}, {ih.ClientID, t.ClientID}, {ih.Scopes, t.Scope}} {
		if p[0] != "" {
			h.Set(p[0], p[1])
		}
	}
}

// named reports whether k is one of the identity headers' names, comparing
// case-insensitively and with "_" read as "-" on both sides (a configured
// name may itself have an underscore). ReplaceAll copies only a name that has
// an underscore.
func (ih IdentityHeaders) named(k string) bool {
	k = strings.ReplaceAll(k, "_", "-")
	for _, n := range [...]string{ih.Subject, ih.ClientID, ih.Scopes} {
		if n != "" && strings.EqualFold(k, strings.ReplaceAll(n, "_", "-")) {
			return true
		}
	}
	return false
}

func setOrDel(h http.Header, name, val string) {
	switch {
	case name == "":
	case val == "":
		h.Del(name)
	default:
		h.Set(name, val)
	}
}
