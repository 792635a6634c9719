package jwtauth

import (
	"context"
	"encoding/json"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/methodoverride"
	"github.com/authgate/authgate/internal/pathrule"
)

// IntrospectOnPaths is hybrid mode with INTROSPECT_PATHS: a token is looked
// up by Tokens (a JWT of the issuer verified locally, anything else
// introspected), and a token Tokens validated as a JWT is introspected
// anew by Introspect when the request is on Paths, where a revoked token
// must stop working within CACHE_TTL. Verified locally first, so that a
// forged JWT never spends the introspection budget.
//
// Paths add checking, so they match generously (pathrule.Generous:
// /api/Pay and /api/pay/ for /api/pay); on /verify, where the proxy
// forwards the method-override headers that serve and proxy modes remove,
// a method one of them names matches too.
type IntrospectOnPaths struct {
	Tokens     authn.Tokens
	Introspect authn.Tokens
	Paths      *pathrule.Matcher
}

var _ authn.Tokens = (*IntrospectOnPaths)(nil)

// Lookup implements authn.Tokens.
func (o *IntrospectOnPaths) Lookup(ctx context.Context, r *authn.Request, raw string) (*authn.Token, authn.Lookup, error) {
	tok, lookup, err := o.Tokens.Lookup(ctx, r, raw)
	if err == nil && tok.Validation == authn.ValidationJWT && o.on(r) {
		answer, lookup, err := o.Introspect.Lookup(ctx, r, raw)
		if err != nil {
			return nil, lookup, err
		}
		return keepBinding(answer, tok.Cnf()), lookup, nil
	}
	return tok, lookup, err
}

// keepBinding is the introspection answer with the verified JWT's cnf: the
// binding signed into the token is the token's whatever the answer says
// (RFC 9449 section 6.2 says only that an answer SHOULD carry cnf), so an
// answer without one must not turn a key- or certificate-bound JWT into a
// bearer token. The cached answer is never changed: a copy carries it.
func keepBinding(answer *authn.Token, cnf json.RawMessage) *authn.Token {
	if cnf == nil || answer.Cnf() != nil {
		return answer
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(answer.Claims, &claims); err != nil || claims == nil {
		claims = map[string]json.RawMessage{}
	}
	claims["cnf"] = cnf
	merged, err := json.Marshal(claims)
	if err != nil {
		merged = []byte(`{"cnf":[]}`) // a binding that cannot be met: refused
	}
	c := *answer
	c.Claims = merged
	return &c
}

// on reports whether r is on Paths: by its method and path, or, on
// /verify, by a method one of its override headers names.
func (o *IntrospectOnPaths) on(r *authn.Request) bool {
	if o.Paths.Match(r.Method, r.Path) {
		return true
	}
	if !r.ForwardAuth() {
		return false
	}
	for m := range methodoverride.Methods(r.Header) {
		if o.Paths.Match(m, r.Path) {
			return true
		}
	}
	return false
}
