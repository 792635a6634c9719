package dpop

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Scheme is the authentication scheme a token came with.
type Scheme uint8

// Schemes of the Authorization header.
const (
	Bearer Scheme = iota + 1 // Authorization: Bearer (RFC 6750)
	DPoP                     // Authorization: DPoP (RFC 9449 section 7.1)
)

// String is the scheme as input.token_type names it.
func (s Scheme) String() string {
	switch s {
	case Bearer:
		return "Bearer"
	case DPoP:
		return "DPoP"
	}
	return "unknown"
}

// Mode is DPOP_MODE.
type Mode uint8

// Modes.
const (
	// Allowed (the default) accepts unbound bearer tokens and DPoP.
	Allowed Mode = iota
	// Required refuses a token that is not sender-constrained.
	Required
)

// ParseMode reads DPOP_MODE: "allowed" or "required".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "allowed":
		return Allowed, nil
	case "required":
		return Required, nil
	}
	return 0, fmt.Errorf("DPOP_MODE must be allowed or required, not %q", s)
}

func (m Mode) String() string {
	if m == Required {
		return "required"
	}
	return "allowed"
}

// Binding is what a token's cnf claim (RFC 7800) binds it to, as the
// introspection answer or the JWT's claims say.
type Binding struct {
	// JKT is cnf.jkt: the RFC 7638 thumbprint of a DPoP key.
	JKT string
	// X5tS256 is cnf["x5t#S256"]: the thumbprint of a client certificate
	// (RFC 8705), checked by package certbind.
	X5tS256 string
}

// Presentation decides whether a token bound as b may be used when it came
// with scheme, under mode. The cases, in order:
//
//   - DPoP, and the token is bound to a key: go on to check the proof.
//   - DPoP, and the token is not bound to a key: invalid_token. A proof
//     cannot make an unbound token sender-constrained after the fact.
//   - Bearer, and the token is bound to a key: invalid_token (RFC 9449
//     section 7.2). The binding is not optional, whatever the mode.
//   - Bearer, unbound, mode Required: invalid_token, unless the token is
//     bound to a client certificate (RFC 8705 uses the Bearer scheme; the
//     certificate check makes it sender-constrained).
//   - Bearer, unbound, mode Allowed: accepted as a bearer token.
//
// A refusal is a *fault.Error, Unauthenticated, Code invalid_token.
func Presentation(scheme Scheme, b Binding, mode Mode) error {
	switch {
	case scheme == DPoP && b.JKT != "":
		return nil
	case scheme == DPoP:
		return invalidToken("token is not bound to a DPoP key")
	case scheme != Bearer:
		return invalidToken("unknown authorization scheme")
	case b.JKT != "":
		return invalidToken("DPoP-bound token presented as a bearer token")
	case mode == Required && b.X5tS256 == "":
		return invalidToken("a sender-constrained (DPoP) token is required")
	}
	return nil
}

// BindingOf reads a token's cnf claim (the raw JSON of its value, nil when
// the token has none). A cnf that is not an object, or a jkt or x5t#S256
// that is not a base64url SHA-256 thumbprint (43 characters), makes the
// token unusable: invalid_token. Other confirmation methods are ignored.
func BindingOf(cnf json.RawMessage) (Binding, error) {
	if len(cnf) == 0 || string(cnf) == "null" {
		return Binding{}, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(cnf, &raw); err != nil || raw == nil {
		return Binding{}, invalidToken("token cnf claim is not an object")
	}
	var b Binding
	// In this order, so that a cnf with both malformed is always refused
	// for the same one.
	for _, m := range [...]struct {
		name string
		dst  *string
	}{{"jkt", &b.JKT}, {"x5t#S256", &b.X5tS256}} {
		v, ok := raw[m.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, m.dst); err != nil || !isThumbprint(*m.dst) {
			return Binding{}, invalidToken("token cnf claim has a malformed " + m.name)
		}
	}
	return b, nil
}

// isThumbprint reports whether s is a SHA-256 digest in unpadded,
// canonical base64url.
func isThumbprint(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil
}
