// Package dpop checks DPoP proofs (RFC 9449): the proof a client sends in
// the DPoP header with a token presented as `Authorization: DPoP <token>`,
// against the request it came with and the token's key binding (cnf.jkt).
//
// The Verifier runs every check of RFC 9449 section 4.3 in one pass, the
// cheap ones first and one signature verification, then the nonce (when
// the resource server demands one) and the replay store. Presentation
// decides, from the scheme a token came with, its binding and DPOP_MODE,
// whether a token may be used at all. NormalizeHTU is the URI comparison,
// Nonces the stateless resource-server nonces, LocalReplay and
// LayeredReplay the stores that make a proof usable once.
//
// Every refusal is a *fault.Error of kind Unauthenticated whose Code is the
// RFC's error code (invalid_dpop_proof, use_dpop_nonce, invalid_token); a
// replay store that cannot answer is Unavailable. Nothing here reads the
// environment, logs or keeps a token.
package dpop

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/tokenid"
)

// DefaultAlgorithms is DPOP_ALGORITHMS's default.
var DefaultAlgorithms = []string{"ES256", "RS256", "PS256", "EdDSA"}

// DefaultMaxAge is DPOP_PROOF_MAX_AGE's default.
const DefaultMaxAge = 60 * time.Second

// asymmetric are the JWS algorithms a proof may use: RFC 9449 section 4.2
// requires an asymmetric one ("none" and the HMACs are never accepted).
var asymmetric = map[string]jose.SignatureAlgorithm{
	"RS256": jose.RS256, "RS384": jose.RS384, "RS512": jose.RS512,
	"PS256": jose.PS256, "PS384": jose.PS384, "PS512": jose.PS512,
	"ES256": jose.ES256, "ES384": jose.ES384, "ES512": jose.ES512,
	"EdDSA": jose.EdDSA, "Ed25519": algEd25519,
}

// algEd25519 is RFC 9864's fully-specified name for EdDSA with Ed25519,
// the alg current clients (oauth4webapi among them) write for an Ed25519
// key; "EdDSA" is its deprecated polymorphic name. Either name in
// DPOP_ALGORITHMS accepts proofs written with either: for a proof both
// mean an Ed25519 signature (go-jose's EdDSA is Ed25519 only). go-jose
// parses the name but verifies only "EdDSA", so such a proof's signature
// is checked with crypto/ed25519 over its signing input (verifySignature).
const algEd25519 = jose.SignatureAlgorithm("Ed25519")

// Limits on what a proof may be: far above any real one (an RSA-4096
// proof is about 1.5 KiB), low enough that parsing garbage is cheap.
const (
	maxProofLen = 8 << 10
	maxJTILen   = 256
	minRSABits  = 2048
	// replayMargin is how much longer than its proof's validity a jti is
	// remembered.
	replayMargin = time.Second
)

// Config configures a Verifier.
type Config struct {
	// Algorithms are the accepted proof algorithms (DPOP_ALGORITHMS);
	// DefaultAlgorithms when empty. Each must be asymmetric.
	Algorithms []string
	// MaxAge is how old a proof may be (DPOP_PROOF_MAX_AGE); DefaultMaxAge
	// when 0. Leeway is the clock skew allowed both ways (JWT_LEEWAY).
	MaxAge, Leeway time.Duration
	// Replay remembers used proofs. Required: a proof must be usable once.
	Replay ReplayStore
	// Nonces, when set, makes every proof carry a current nonce
	// (DPOP_NONCE=true).
	Nonces *Nonces
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Verifier checks DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	algs           []jose.SignatureAlgorithm
	names          []string
	maxAge, leeway time.Duration
	replay         ReplayStore
	nonces         *Nonces
	now            func() time.Time
}

// NewVerifier checks c and makes a Verifier of it.
func NewVerifier(c Config) (*Verifier, error) {
	names := c.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms
	}
	v := &Verifier{maxAge: c.MaxAge, leeway: c.Leeway, replay: c.Replay, nonces: c.Nonces, now: c.Now}
	for _, n := range names {
		a, ok := asymmetric[n]
		if !ok {
			return nil, fmt.Errorf("dpop: algorithm %q is not an asymmetric JWS algorithm", n)
		}
		v.algs = append(v.algs, a)
		v.names = append(v.names, n)
		switch a {
		case jose.EdDSA:
			v.algs = append(v.algs, algEd25519)
		case algEd25519:
			v.algs = append(v.algs, jose.EdDSA)
		}
	}
	if v.maxAge == 0 {
		v.maxAge = DefaultMaxAge
	}
	if v.maxAge < 0 || v.leeway < 0 {
		return nil, errors.New("dpop: proof age and leeway must not be negative")
	}
	if v.replay == nil {
		return nil, errors.New("dpop: a replay store is required")
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Algorithms are the accepted algorithms, for the challenge's algs.
func (v *Verifier) Algorithms() []string { return v.names }

// Request is what a proof is checked against.
type Request struct {
	// Proofs are the values of the request's DPoP header fields
	// (http.Header.Values("DPoP")): exactly one is accepted.
	Proofs []string
	// Method is the request's method; in forward-auth mode the original
	// request's, as the proxy describes it.
	Method string
	// URI is the URI the client sent the request to: its scheme and host
	// as the client addressed them (behind a trusted proxy, the forwarded
	// ones) and the request target as it wrote it (RequestURI, or the
	// proxy's original URI), never a cleaned path. A query is ignored.
	URI string
	// Token is the access token presented with the proof.
	Token string
	// JKT is the token's cnf.jkt (from introspection or the JWT's claims).
	JKT string
}

// Proof is a proof that passed.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key, the
	// token's cnf.jkt (input.dpop.jkt).
	JKT string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// NextNonce, when not empty, is a fresh nonce to send in a DPoP-Nonce
	// header with the answer: the proof's nonce is of the previous window.
	NextNonce string
}

// claims are the proof's claims.
type claims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   string          `json:"ath"`
	Nonce *string         `json:"nonce"`
}

// Verify checks r's proof as RFC 9449 section 4.3 says, cheap checks
// first: one DPoP header; a canonical compact JWS; typ dpop+jwt; an
// accepted asymmetric alg; a public jwk header; jti, htm, htu, iat
// present; htm the method; htu the request's URI (both normalised by
// NormalizeHTU); iat within [now - MaxAge - Leeway, now + Leeway]; ath the
// base64url SHA-256 of the token; the key's thumbprint the token's
// cnf.jkt; then the signature, by the jwk; then the nonce, when Nonces are
// on; last the replay store, so that only proofs that passed everything
// are remembered.
//
// It returns a *fault.Error: Unauthenticated with Code invalid_dpop_proof
// for a proof that fails a check, use_dpop_nonce (and the nonce in the
// Answer's DPoP-Nonce header) for a missing or stale nonce, invalid_token
// for a token not bound to a key; Unavailable when the replay store cannot
// answer.
func (v *Verifier) Verify(ctx context.Context, r Request) (Proof, error) {
	if err := CheckShape(r.Proofs); err != nil {
		return Proof{}, err
	}
	if r.JKT == "" {
		return Proof{}, invalidToken("token is not bound to a DPoP key")
	}
	raw := r.Proofs[0]
	// A compact JWS in canonical base64url: one spelling per proof.
	if id, err := tokenid.Of(raw); err != nil || !id.JWS {
		return Proof{}, invalidProof("DPoP proof is not a compact JWS")
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		// Also a JWS whose alg is not accepted, "none" and HMACs included.
		return Proof{}, invalidProof("DPoP proof is not a JWS with an accepted algorithm")
	}
	if len(jws.Signatures) != 1 {
		return Proof{}, invalidProof("DPoP proof is not a JWS with one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "dpop+jwt") {
		return Proof{}, invalidProof("DPoP proof typ is not dpop+jwt")
	}
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		// go-jose refuses a jwk header with private members when parsing.
		return Proof{}, invalidProof("DPoP proof has no public jwk header")
	}
	if k, ok := jwk.Key.(*rsa.PublicKey); ok && k.N.BitLen() < minRSABits {
		return Proof{}, invalidProof("DPoP proof key too small")
	}
	// The claims are read before the signature is verified, so that a
	// proof of another request, a stale one or one for another key costs
	// no signature verification. Only refusals are decided on them before
	// the signature holds.
	var c claims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return Proof{}, invalidProof("DPoP proof claims are malformed")
	}
	switch {
	case c.JTI == "" || c.HTM == "" || c.HTU == "" || c.IAT == nil:
		return Proof{}, invalidProof("DPoP proof lacks jti, htm, htu or iat")
	case len(c.JTI) > maxJTILen:
		return Proof{}, invalidProof("DPoP proof jti too long")
	case c.HTM != r.Method:
		return Proof{}, invalidProof("DPoP proof htm does not match the request method")
	}
	want, err := NormalizeHTU(r.URI)
	if err != nil {
		return Proof{}, invalidProof("request URI cannot be compared")
	}
	if got, err := NormalizeHTU(c.HTU); err != nil || got != want {
		return Proof{}, invalidProof("DPoP proof htu does not match the request URI")
	}
	iat, ok := numericDate(c.IAT)
	if !ok {
		return Proof{}, invalidProof("DPoP proof iat is not a date")
	}
	now := v.now()
	if iat.Before(now.Add(-v.maxAge - v.leeway)) {
		return Proof{}, invalidProof("DPoP proof is too old")
	}
	if iat.After(now.Add(v.leeway)) {
		return Proof{}, invalidProof("DPoP proof is issued in the future")
	}
	ath := sha256.Sum256([]byte(r.Token))
	if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(base64.RawURLEncoding.EncodeToString(ath[:]))) != 1 {
		return Proof{}, invalidProof("DPoP proof ath does not match the access token")
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return Proof{}, invalidProof("DPoP proof key has no thumbprint")
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	if subtle.ConstantTimeCompare([]byte(jkt), []byte(r.JKT)) != 1 {
		return Proof{}, invalidProof("DPoP proof key is not the key the token is bound to")
	}
	if !verifySignature(raw, jws, jwk) {
		return Proof{}, invalidProof("DPoP proof signature does not verify")
	}
	p := Proof{JKT: jkt, IssuedAt: iat}
	if v.nonces != nil {
		if c.Nonce == nil {
			return Proof{}, useNonce(v.nonces.Current())
		}
		valid, current := v.nonces.Check(*c.Nonce)
		if !valid {
			return Proof{}, useNonce(v.nonces.Current())
		}
		if !current {
			p.NextNonce = v.nonces.Current()
		}
	}
	// Remembered until the proof could no longer pass the iat check, and a
	// second more: a proof accepted at the very edge of its window is still
	// refused at the same instant, and a replica whose clock is a little
	// behind this one's still finds it in the fleet store.
	ttl := iat.Add(v.maxAge+v.leeway).Sub(now) + replayMargin
	fresh, err := v.replay.Use(ctx, replayKeyOf(jkt, c.JTI), ttl)
	if err != nil {
		return Proof{}, &fault.Error{Kind: fault.Unavailable, Description: "DPoP replay check unavailable", Err: err}
	}
	if !fresh {
		return Proof{}, invalidProof("DPoP proof was used before")
	}
	return p, nil
}

// verifySignature checks the one signature of the compact JWS raw with
// jwk: by go-jose, or for the alg "Ed25519" (algEd25519) by crypto/ed25519
// over the signing input, the text before raw's last '.'.
func verifySignature(raw string, jws *jose.JSONWebSignature, jwk *jose.JSONWebKey) bool {
	sig := jws.Signatures[0]
	if sig.Protected.Algorithm != string(algEd25519) {
		_, err := jws.Verify(jwk)
		return err == nil
	}
	pub, ok := jwk.Key.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(pub, []byte(raw[:strings.LastIndexByte(raw, '.')]), sig.Signature)
}

// CheckShape refuses, as invalid_dpop_proof, the DPoP header values
// (http.Header.Values("DPoP")) that cannot hold a proof: none, more than
// one, one over 8 KiB, or one that is not three dot-separated segments.
// It decodes nothing and allocates nothing, so a request can be refused by
// it before its token costs a lookup; Verify starts with it, then checks
// the proof is a compact JWS in canonical base64url.
func CheckShape(proofs []string) error {
	switch {
	case len(proofs) == 0:
		return invalidProof("DPoP proof missing")
	case len(proofs) > 1:
		return invalidProof("more than one DPoP proof")
	case len(proofs[0]) > maxProofLen:
		return invalidProof("DPoP proof too large")
	case strings.Count(proofs[0], ".") != 2:
		return invalidProof("DPoP proof is not a compact JWS")
	}
	return nil
}

// numericDate reads an RFC 7519 NumericDate: a JSON number of seconds
// since the epoch, an integer or not (a string holding one is not).
func numericDate(raw json.RawMessage) (time.Time, bool) {
	var n json.Number
	if len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
		return time.Time{}, false
	}
	if i, err := n.Int64(); err == nil {
		if i < 0 || i > math.MaxInt64/int64(time.Second) {
			return time.Time{}, false
		}
		return time.Unix(i, 0), true
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > float64(math.MaxInt64/int64(time.Second)) || math.IsNaN(f) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
