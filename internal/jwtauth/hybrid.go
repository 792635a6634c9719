package jwtauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/authgate/authgate/internal/authn"
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
	if iss, ok := PeekIssuer(token); ok && iss == h.Issuer {
		return h.JWT.Verify(ctx, token)
	}
	return h.Introspect.Verify(ctx, token)
}

// PeekIssuer returns the iss claim of a token shaped like a compact JWS
// (three base64url parts, the second a JSON object), without verifying
// anything: it only routes the token, and the JWT path then verifies it.
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
