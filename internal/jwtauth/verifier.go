// Package jwtauth validates JWT access tokens locally (RFC 7519, RFC 8725,
// RFC 9068): the signature against a key of the issuer's JWKS, then the
// claims. Signatures and JWKs are go-jose's (github.com/go-jose/go-jose/v4);
// this package holds the policy around them: which algorithms, which
// claims, and when to refetch the keys.
package jwtauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/tokenid"
)

// Results of a verification, as authgate_jwt_validations_total labels them.
const (
	ResultValid      = "valid"
	ResultInvalid    = "invalid"
	ResultUnknownKey = "unknown_key" // the kid is not in the issuer's keys, or they could not be fetched
)

// Verifier is the authn.Verifier that checks a JWT access token locally.
// Anything but a compact JWS signed by a key of Keys with an allowed
// algorithm, and carrying acceptable claims, is an invalid token.
type Verifier struct {
	Keys KeySource
	// Issuer must equal the iss claim exactly.
	Issuer string
	// Audience, when set, must be the aud claim or one of its values.
	Audience string
	// Algorithms are the accepted JWS algorithms. Never none (go-jose
	// cannot even express it) nor an HMAC: the caller must not list one.
	Algorithms []jose.SignatureAlgorithm
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration
	// Typ, when set, must be the header's typ (e.g. "at+jwt", RFC 9068;
	// "application/at+jwt" matches too).
	Typ string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnResult, when set, is told of each verification: ResultValid,
	// ResultInvalid or ResultUnknownKey.
	OnResult func(result string)
}

var _ authn.Verifier = (*Verifier)(nil)

// Verify implements authn.Verifier. Errors are *fault.Error:
// Unauthenticated for a token that is not a valid JWT of the issuer (or
// not spelled canonically: tokenid),
// Unavailable when its key is unknown and the keys cannot be fetched, or
// not yet (KeySource).
func (v *Verifier) Verify(ctx context.Context, token string) (*authn.Token, error) {
	t, err := v.verify(ctx, token)
	if v.OnResult != nil {
		res := ResultValid
		switch {
		case errors.Is(err, ErrUnknownKey) || fault.Is(err, fault.Unavailable):
			res = ResultUnknownKey
		case err != nil:
			res = ResultInvalid
		}
		v.OnResult(res)
	}
	return t, err
}

func (v *Verifier) verify(ctx context.Context, token string) (*authn.Token, error) {
	// One spelling per token: a segment with set unused base64url bits is
	// a second spelling of a token (go-jose decodes it alike), which a
	// revocation of the first would miss. Refused before any key lookup,
	// so that it cannot trigger a refetch either.
	id, err := tokenid.Of(token)
	switch {
	case errors.Is(err, tokenid.ErrNonCanonical):
		return nil, invalidToken("token is not canonically encoded")
	case err != nil || !id.JWS:
		return nil, invalidToken("token is not a JWT signed with an accepted algorithm")
	}
	// Compact serialisation only: the JSON one has no place in a header.
	jws, err := jose.ParseSignedCompact(token, v.Algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, invalidToken("token is not a JWT signed with an accepted algorithm")
	}
	h := jws.Signatures[0].Header
	if v.Typ != "" && !typMatches(h.ExtraHeaders[jose.HeaderType], v.Typ) {
		return nil, invalidToken("token type not accepted")
	}
	keys, err := v.Keys.Keys(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	payload, err := verifyWith(jws, h.Algorithm, keys)
	if err != nil {
		// The server may have replaced the key under this kid.
		if fresh := v.Keys.Recheck(ctx, h.KeyID, keys); fresh != nil {
			payload, err = verifyWith(jws, h.Algorithm, fresh)
		}
	}
	if err != nil {
		return nil, err
	}
	return v.claims(payload)
}

// verifyWith checks the signature with each key whose type fits alg (an
// ECDSA signature, high or low S alike, as crypto/ecdsa accepts it).
func verifyWith(jws *jose.JSONWebSignature, alg string, keys []*jose.JSONWebKey) ([]byte, error) {
	fit := false
	for _, key := range keys {
		if !fits(key, alg) {
			continue
		}
		fit = true
		if payload, err := jws.Verify(key.Key); err == nil {
			return payload, nil
		}
	}
	if !fit {
		return nil, invalidToken("token algorithm does not match its key")
	}
	return nil, invalidToken("token signature is invalid")
}

// fits reports whether key can verify a signature of alg: its alg, when
// set, is alg, and its type is the one alg names (RFC 7518 3.1).
func fits(key *jose.JSONWebKey, alg string) bool {
	if key.Algorithm != "" && key.Algorithm != alg {
		return false
	}
	switch pub := key.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch jose.SignatureAlgorithm(alg) {
		case jose.ES256:
			return pub.Curve == elliptic.P256()
		case jose.ES384:
			return pub.Curve == elliptic.P384()
		case jose.ES512:
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return jose.SignatureAlgorithm(alg) == jose.EdDSA
	}
	return false
}

func typMatches(h any, want string) bool {
	s, _ := h.(string)
	s = strings.TrimPrefix(strings.ToLower(s), "application/")
	return s == strings.TrimPrefix(strings.ToLower(want), "application/")
}

// claims checks the verified claim set and makes the token of it.
func (v *Verifier) claims(payload []byte) (*authn.Token, error) {
	// A map, not a struct: encoding/json would match "ISS" to an iss field.
	var c map[string]json.RawMessage
	if err := json.Unmarshal(payload, &c); err != nil || c == nil {
		return nil, invalidToken("token claims are not a JSON object")
	}
	now := v.now()
	// iss by hand: go-jose's check would let any iss through an empty Issuer.
	if iss, ok := str(c["iss"]); !ok || iss != v.Issuer {
		return nil, invalidToken("token issuer not accepted")
	}
	// The audience and time claims are go-jose's jwt.Expected, on claims
	// read from the map (typed, bounded, exact names) rather than by its
	// own decoding.
	cl := jwt.Claims{Audience: audienceOf(c["aud"])}
	var err error
	if cl.NotBefore, err = dateClaim(c, "nbf", "token not yet valid"); err != nil {
		return nil, err
	}
	if cl.IssuedAt, err = dateClaim(c, "iat", "token issued in the future"); err != nil {
		return nil, err
	}
	want := jwt.Expected{Time: now}
	if v.Audience != "" {
		want.AnyAudience = jwt.Audience{v.Audience}
	}
	switch err := cl.ValidateWithLeeway(want, v.Leeway); {
	case err == nil:
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, invalidToken("token audience not accepted")
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, invalidToken("token not yet valid")
	default: // jwt.ErrIssuedInTheFuture
		return nil, invalidToken("token issued in the future")
	}
	// exp by hand: it is required here (go-jose's is optional), and RFC
	// 7519 4.1.4 rejects a token on or after exp (plus leeway), where
	// go-jose accepts it at that instant.
	exp, ok := numericDate(c["exp"])
	switch {
	case !ok:
		return nil, invalidToken("token has no valid exp")
	case !now.Before(exp.Add(v.Leeway)):
		return nil, invalidToken("token expired")
	}
	sub, ok := optStr(c["sub"])
	if !ok {
		return nil, invalidToken("token sub is not a string")
	}
	// Okta names the client cid; RFC 9068 client_id.
	clientID, ok := optStr(c["cid"])
	if clientID == "" && ok {
		clientID, ok = optStr(c["client_id"])
	}
	if !ok {
		return nil, invalidToken("token client id is not a string")
	}
	scope, scopes, ok := scopesOf(c)
	if !ok {
		return nil, invalidToken("token scopes are not strings")
	}
	var raw bytes.Buffer
	if err := json.Compact(&raw, payload); err != nil {
		return nil, invalidToken("token claims are not valid JSON")
	}
	// The rules of an introspected token's identity hold here too: no
	// control character in sub, the client id or a scope (NewToken).
	return authn.NewToken(sub, clientID, scope, scopes, exp.Unix(), raw.Bytes(), authn.ValidationJWT)
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// scopesOf reads scp (Okta: an array; some servers a string) or scope
// (RFC 9068: a space-separated string). An array must hold strings only;
// what those strings may hold, authn.NewToken checks.
func scopesOf(c map[string]json.RawMessage) (scope string, scopes []string, ok bool) {
	raw, present := c["scp"]
	if !present {
		raw = c["scope"]
	}
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, true
	}
	if s, ok := str(raw); ok {
		return s, authn.SplitScope(s), true
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", nil, false
	}
	scopes = make([]string, len(list))
	for i, m := range list {
		// str, not Unmarshal into a []string, which would read null as "".
		if scopes[i], ok = str(m); !ok {
			return "", nil, false
		}
	}
	return "", scopes, true
}

func str(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// optStr reads an optional string claim: absent is "", another type is not ok.
func optStr(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", true
	}
	return str(raw)
}

// numericDate reads an RFC 7519 NumericDate (seconds, maybe fractional).
func numericDate(raw json.RawMessage) (time.Time, bool) {
	var f float64
	if len(raw) == 0 || json.Unmarshal(raw, &f) != nil || f < 0 || f > 1<<40 || math.IsNaN(f) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// dateClaim reads an optional NumericDate claim for jwt.Expected, rounded
// up to whole seconds (go-jose's unit): never earlier than the token says.
// Present but not a valid date is the error of desc.
func dateClaim(c map[string]json.RawMessage, name, desc string) (*jwt.NumericDate, error) {
	raw, present := c[name]
	if !present {
		return nil, nil
	}
	t, ok := numericDate(raw)
	if !ok {
		return nil, invalidToken(desc)
	}
	d := jwt.NumericDate(t.Unix())
	if t.Nanosecond() != 0 {
		d++
	}
	return &d, nil
}

// audienceOf reads aud, a string or an array: the strings it holds, values
// of other types ignored.
func audienceOf(raw json.RawMessage) jwt.Audience {
	if s, ok := str(raw); ok {
		return jwt.Audience{s}
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	var aud jwt.Audience
	for _, a := range list {
		if s, ok := str(a); ok {
			aud = append(aud, s)
		}
	}
	return aud
}

func invalidToken(desc string) error {
	return &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: desc}
}
