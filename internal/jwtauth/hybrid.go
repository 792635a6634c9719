package jwtauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/tokenid"
)

// Hybrid is the authn.Verifier of TOKEN_VALIDATION=hybrid: a token that is
// a JWT of Issuer goes to JWT, and its verdict is final (a bad signature is
// an invalid token, never a reason to spend the introspection budget);
// anything else (an opaque token, a JWT of another issuer such as Okta's
// org authorization server, whose tokens Okta says to treat as opaque)
// goes to Introspect.
type Hybrid struct {
	JWT        authn.Verifier
	Introspect authn.Verifier
	Issuer     string
}

var _ authn.Verifier = (*Hybrid)(nil)

// Verify implements authn.Verifier.
func (h *Hybrid) Verify(ctx context.Context, token string) (*authn.Token, error) {
	if h.Local(token) {
		return h.JWT.Verify(ctx, token)
	}
	return h.Introspect.Verify(ctx, token)
}

// Local reports whether Verify checks token here (a JWT of Issuer) rather
// than introspecting it.
func (h *Hybrid) Local(token string) bool {
	iss, ok := PeekIssuer(token)
	return ok && iss == h.Issuer
}

// SharedIntrospections is the shared cache level (authn.Shared: the
// replicas' Redis, package fleet) of a Cache over Hybrid: the tokens Hybrid
// introspects go to Shared, so that the fleet introspects each once; a JWT
// it verifies locally does not, and stays in the replica's own cache. Its
// signature check costs less than a Redis round trip and spends no budget,
// so a shared answer would save nothing (docs/fleet.md).
type SharedIntrospections struct {
	Shared authn.Shared
	Hybrid *Hybrid
}

var _ authn.Shared = SharedIntrospections{}

// Fetch implements authn.Shared.
func (s SharedIntrospections) Fetch(ctx context.Context, token string, id tokenid.ID,
	verify func(context.Context) authn.Answer) (authn.Answer, authn.Lookup) {
	if s.Hybrid.Local(token) {
		return verify(ctx), authn.Miss
	}
	return s.Shared.Fetch(ctx, token, id, verify)
}

// PeekIssuer returns the iss claim of a token shaped like a compact JWS
// (three base64url parts, the second a JSON object), without verifying
// anything: it only routes the token, and the JWT path then verifies it.
//
// It decodes as leniently as go-jose does (unused bits ignored), on
// purpose: every spelling of a JWT of the issuer then goes to the
// Verifier, which accepts the canonical one only (tokenid), and reads iss
// from the same bytes. A second spelling of a revoked JWT is refused
// there, never sent to introspection to be judged on its own.
func PeekIssuer(token string) (string, bool) {
	head, rest, ok := strings.Cut(token, ".")
	if !ok || head == "" {
		return "", false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", false
	}
	var c map[string]json.RawMessage
	if json.Unmarshal(b, &c) != nil {
		return "", false
	}
	return str(c["iss"])
}
