package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/fault"
)

// The test keys are made once: RSA key generation is slow.
var (
	keysOnce                sync.Once
	ecKey, ecKey2, ecKey384 *ecdsa.PrivateKey
	rsaKey, rsaKey1024      *rsa.PrivateKey
	edKey, edKey2           ed25519.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ecKey2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ecKey384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		_, edKey, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		_, edKey2, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		// A 1024-bit key made by hand: Go refuses to generate one.
		rsaKey1024 = weakRSAKey()
	})
}

// weakRSAKey is an RSA key of 1024 bits with a fixed, well-known modulus
// form: only its public half is used (the proof is refused before any
// signature check), so it needs no valid private exponent.
func weakRSAKey() *rsa.PrivateKey {
	n := new(big.Int).Lsh(big.NewInt(1), 1023)
	n.Add(n, big.NewInt(1155)) // odd, 1024 bits
	return &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 65537}}
}

func thumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

func athOf(token string) string {
	s := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(s[:])
}

// signProof signs claims as a DPoP proof with go-jose, the jwk header
// embedded, typ as given.
func signProof(t testing.TB, alg jose.SignatureAlgorithm, key crypto.Signer, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawES256 signs header and claims exactly as given, with key: for
// headers go-jose would not write.
func rawES256(t testing.TB, key *ecdsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// rawEd25519 signs a proof with alg "Ed25519" (RFC 9864), the name
// oauth4webapi writes for an Ed25519 key and go-jose cannot sign with;
// jwk is the key the header names.
func rawEd25519(t testing.TB, key ed25519.PrivateKey, jwk crypto.PublicKey, claims map[string]any) string {
	t.Helper()
	input := b64json(map[string]any{"alg": "Ed25519", "typ": "dpop+jwt", "jwk": publicJWK(t, jwk)}) + "." + b64json(claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(input)))
}

func publicJWK(t testing.TB, pub crypto.PublicKey) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// A fixed "now" and the facts of the request under test.
var (
	t0    = time.Unix(1_800_000_000, 0)
	token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
	uri   = "https://api.example.com/orders/42?limit=5"
)

func goodClaims() map[string]any {
	return map[string]any{
		"jti": "e1j3V_bKic8-LAEB",
		"htm": "GET",
		"htu": "https://api.example.com/orders/42",
		"iat": t0.Unix(),
		"ath": athOf(token),
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func newTestVerifier(t testing.TB, now *time.Time, nonces *Nonces, algs ...string) *Verifier {
	t.Helper()
	clock := func() time.Time { return *now }
	v, err := NewVerifier(Config{
		Algorithms: algs,
		MaxAge:     60 * time.Second,
		Leeway:     5 * time.Second,
		Replay:     NewLocalReplay(0, clock),
		Nonces:     nonces,
		Now:        clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantCode checks that err is a *fault.Error of kind, with code.
func wantCode(t *testing.T, err error, kind fault.Kind, code string) {
	t.Helper()
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v (%T), want a *fault.Error", err, err)
	}
	if fe.Kind != kind || fe.Code != code {
		t.Fatalf("err = %v, want kind %v code %q", err, kind, code)
	}
	if strings.Contains(fe.Error(), token) || strings.Contains(fe.Description, token) {
		t.Fatalf("error %q quotes the token", fe.Error())
	}
}

func TestVerify(t *testing.T) {
	keys(t)
	jkt := thumbprint(t, ecKey.Public())
	good := signProof(t, jose.ES256, ecKey, "dpop+jwt", goodClaims())
	// The signature's last character with an unused bit set: it decodes
	// to the same bytes under a lenient decoder.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	nonCanonical := good[:len(good)-1] + string(alphabet[strings.IndexByte(alphabet, good[len(good)-1])^1])
	if a, b := lenient(t, good), lenient(t, nonCanonical); a != b {
		t.Fatal("the non-canonical spelling does not decode alike")
	}

	tests := []struct {
		name   string
		proofs []string
		method string
		uri    string
		token  string
		jkt    string
		at     time.Time
		algs   []string
		code   string // "" = accepted
	}{
		{name: "ES256", proofs: []string{good}},
		{name: "RS256", proofs: []string{signProof(t, jose.RS256, rsaKey, "dpop+jwt", goodClaims())}, jkt: thumbprint(t, rsaKey.Public())},
		{name: "PS256", proofs: []string{signProof(t, jose.PS256, rsaKey, "dpop+jwt", goodClaims())}, jkt: thumbprint(t, rsaKey.Public())},
		{name: "EdDSA", proofs: []string{signProof(t, jose.EdDSA, edKey, "dpop+jwt", goodClaims())}, jkt: thumbprint(t, edKey.Public())},
		{name: "Ed25519 (RFC 9864) under the default EdDSA", proofs: []string{rawEd25519(t, edKey, edKey.Public(), goodClaims())}, jkt: thumbprint(t, edKey.Public())},
		{name: "Ed25519 configured, proof alg Ed25519", proofs: []string{rawEd25519(t, edKey, edKey.Public(), goodClaims())}, jkt: thumbprint(t, edKey.Public()), algs: []string{"Ed25519"}},
		{name: "Ed25519 configured, proof alg EdDSA", proofs: []string{signProof(t, jose.EdDSA, edKey, "dpop+jwt", goodClaims())}, jkt: thumbprint(t, edKey.Public()), algs: []string{"Ed25519"}},
		{name: "Ed25519 signed by another key", proofs: []string{rawEd25519(t, edKey2, edKey.Public(), goodClaims())}, jkt: thumbprint(t, edKey.Public()), code: CodeInvalidProof},
		{name: "Ed25519 alg with an EC key", proofs: []string{rawEd25519(t, edKey, ecKey.Public(), goodClaims())}, code: CodeInvalidProof},
		{name: "Ed25519 not configured", proofs: []string{rawEd25519(t, edKey, edKey.Public(), goodClaims())}, jkt: thumbprint(t, edKey.Public()), algs: []string{"ES256"}, code: CodeInvalidProof},
		{name: "typ in other case", proofs: []string{signProof(t, jose.ES256, ecKey, "DPoP+JWT", goodClaims())}},
		{name: "htu normalised on both sides", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "htu", "HTTPS://API.example.com:443/orders/%34%32#frag"))}, uri: "https://api.Example.com/x/../orders/42"},
		{name: "iat at the oldest edge", at: t0.Add(65 * time.Second)},
		{name: "iat in the future within leeway", at: t0.Add(-5 * time.Second)},

		{name: "no proof", proofs: []string{}, code: CodeInvalidProof},
		{name: "two proofs", proofs: []string{good, good}, code: CodeInvalidProof},
		{name: "unbound token", jkt: "-", code: CodeInvalidToken},
		{name: "too large", proofs: []string{good + strings.Repeat("A", maxProofLen)}, code: CodeInvalidProof},
		{name: "not a JWS", proofs: []string{"not-a-jwt"}, code: CodeInvalidProof},
		{name: "empty", proofs: []string{""}, code: CodeInvalidProof},
		{name: "non-canonical base64url", proofs: []string{nonCanonical}, code: CodeInvalidProof},
		{name: "JSON serialization", proofs: []string{`{"payload":"e30","protected":"e30","signature":"AA"}`}, code: CodeInvalidProof},
		{name: "typ JWT", proofs: []string{signProof(t, jose.ES256, ecKey, "JWT", goodClaims())}, code: CodeInvalidProof},
		{name: "typ missing", proofs: []string{rawES256(t, ecKey, map[string]any{"alg": "ES256", "jwk": publicJWK(t, ecKey.Public())}, goodClaims())}, code: CodeInvalidProof},
		{name: "alg none", proofs: []string{b64json(map[string]any{"alg": "none", "typ": "dpop+jwt", "jwk": publicJWK(t, ecKey.Public())}) + "." + b64json(goodClaims()) + "."}, code: CodeInvalidProof},
		{name: "alg HS256", proofs: []string{hs256(t)}, code: CodeInvalidProof},
		{name: "alg not configured", proofs: []string{signProof(t, jose.ES384, ecKey384, "dpop+jwt", goodClaims())}, jkt: thumbprint(t, ecKey384.Public()), algs: []string{"ES256"}, code: CodeInvalidProof},
		{name: "no jwk", proofs: []string{rawES256(t, ecKey, map[string]any{"alg": "ES256", "typ": "dpop+jwt"}, goodClaims())}, code: CodeInvalidProof},
		{name: "private jwk", proofs: []string{rawES256(t, ecKey, map[string]any{"alg": "ES256", "typ": "dpop+jwt", "jwk": with(publicJWK(t, ecKey.Public()), "d", base64.RawURLEncoding.EncodeToString(ecKey.D.Bytes()))}, goodClaims())}, code: CodeInvalidProof},
		{name: "jwk of another key", proofs: []string{rawES256(t, ecKey2, map[string]any{"alg": "ES256", "typ": "dpop+jwt", "jwk": publicJWK(t, ecKey.Public())}, goodClaims())}, code: CodeInvalidProof},
		{name: "jwk type not the alg's", proofs: []string{rawES256(t, ecKey, map[string]any{"alg": "ES256", "typ": "dpop+jwt", "jwk": publicJWK(t, rsaKey.Public())}, goodClaims())}, jkt: thumbprint(t, rsaKey.Public()), code: CodeInvalidProof},
		{name: "RSA key under 2048 bits", proofs: []string{rs256Weak(t)}, jkt: thumbprint(t, rsaKey1024.Public()), code: CodeInvalidProof},
		{name: "claims not an object", proofs: []string{rawES256Payload(t, ecKey, `["jti"]`)}, code: CodeInvalidProof},
		{name: "no jti", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "jti", nil))}, code: CodeInvalidProof},
		{name: "jti too long", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "jti", strings.Repeat("j", 257)))}, code: CodeInvalidProof},
		{name: "no htm", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "htm", nil))}, code: CodeInvalidProof},
		{name: "no htu", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "htu", nil))}, code: CodeInvalidProof},
		{name: "no iat", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "iat", nil))}, code: CodeInvalidProof},
		{name: "iat a string", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "iat", "1800000000"))}, code: CodeInvalidProof},
		{name: "iat negative", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "iat", -1))}, code: CodeInvalidProof},
		{name: "iat huge", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "iat", 1e300))}, code: CodeInvalidProof},
		{name: "other method", method: "POST", code: CodeInvalidProof},
		{name: "method in lower case", method: "get", code: CodeInvalidProof},
		{name: "other path", uri: "https://api.example.com/orders/43", code: CodeInvalidProof},
		{name: "other host", uri: "https://evil.example.com/orders/42", code: CodeInvalidProof},
		{name: "other scheme", uri: "http://api.example.com/orders/42", code: CodeInvalidProof},
		{name: "other port", uri: "https://api.example.com:8443/orders/42", code: CodeInvalidProof},
		{name: "request URI unreadable", uri: "/orders/42", code: CodeInvalidProof},
		{name: "htu unreadable", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "htu", "https://api.example.com/orders/%4"))}, code: CodeInvalidProof},
		{name: "stale", at: t0.Add(65*time.Second + time.Millisecond), code: CodeInvalidProof},
		{name: "future", at: t0.Add(-5*time.Second - time.Millisecond), code: CodeInvalidProof},
		{name: "no ath", proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "ath", nil))}, code: CodeInvalidProof},
		{name: "ath of another token", token: token + "x", code: CodeInvalidProof},
		{name: "token bound to another key", jkt: thumbprint(t, ecKey2.Public()), code: CodeInvalidProof},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			if !tc.at.IsZero() {
				now = tc.at
			}
			v := newTestVerifier(t, &now, nil, tc.algs...)
			r := Request{Proofs: tc.proofs, Method: tc.method, URI: tc.uri, Token: tc.token, JKT: tc.jkt}
			if r.Proofs == nil {
				r.Proofs = []string{good}
			}
			if r.Method == "" {
				r.Method = http.MethodGet
			}
			if r.URI == "" {
				r.URI = uri
			}
			if r.Token == "" {
				r.Token = token
			}
			switch r.JKT {
			case "":
				r.JKT = jkt
			case "-":
				r.JKT = ""
			}
			p, err := v.Verify(context.Background(), r)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.JKT != r.JKT || p.IssuedAt.Unix() != t0.Unix() || p.NextNonce != "" {
					t.Fatalf("Verify = %+v, want JKT %s, iat %v", p, r.JKT, t0)
				}
				return
			}
			wantCode(t, err, fault.Unauthenticated, tc.code)
		})
	}
}

// lenient decodes a JWS's signature ignoring unused bits, as go-jose does.
func lenient(t *testing.T, jws string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(jws[strings.LastIndexByte(jws, '.')+1:])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hs256 is a proof MACed with a symmetric key, the key in the jwk header.
func hs256(t *testing.T) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.Repeat("k", 32))}, (&jose.SignerOptions{}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(goodClaims())
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

// rs256Weak is a proof whose jwk is a 1024-bit RSA key (signature garbage:
// the size is refused first).
func rs256Weak(t *testing.T) string {
	h := map[string]any{"alg": "RS256", "typ": "dpop+jwt", "jwk": publicJWK(t, rsaKey1024.Public())}
	return b64json(h) + "." + b64json(goodClaims()) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 128))
}

func rawES256Payload(t *testing.T, key *ecdsa.PrivateKey, payload string) string {
	t.Helper()
	h := b64json(map[string]any{"alg": "ES256", "typ": "dpop+jwt", "jwk": publicJWK(t, key.Public())})
	input := h + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifyReplay(t *testing.T) {
	keys(t)
	now := t0
	v := newTestVerifier(t, &now, nil)
	r := Request{Method: "GET", URI: uri, Token: token, JKT: thumbprint(t, ecKey.Public())}
	r.Proofs = []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", goodClaims())}
	if _, err := v.Verify(context.Background(), r); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err := v.Verify(context.Background(), r)
	wantCode(t, err, fault.Unauthenticated, CodeInvalidProof)

	// Another proof with the same jti under the same key is the same
	// proof, however it is spelled (another signature).
	r.Proofs = []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", goodClaims())}
	_, err = v.Verify(context.Background(), r)
	wantCode(t, err, fault.Unauthenticated, CodeInvalidProof)

	// The same jti from another key is another proof.
	r.Proofs = []string{signProof(t, jose.ES256, ecKey2, "dpop+jwt", goodClaims())}
	r.JKT = thumbprint(t, ecKey2.Public())
	if _, err := v.Verify(context.Background(), r); err != nil {
		t.Fatalf("same jti, other key: %v", err)
	}

	// A proof accepted at the very end of its window is refused when
	// replayed at the same instant.
	edge := t0.Add(65 * time.Second)
	now = edge
	r.Proofs = []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "jti", "edge"))}
	r.JKT = thumbprint(t, ecKey.Public())
	if _, err := v.Verify(context.Background(), r); err != nil {
		t.Fatalf("at the edge: %v", err)
	}
	_, err = v.Verify(context.Background(), r)
	wantCode(t, err, fault.Unauthenticated, CodeInvalidProof)
	now = t0

	// A proof that fails a check is not remembered: the good one after it
	// still passes.
	r.Proofs = []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "jti", "second"))}
	r.JKT = thumbprint(t, ecKey.Public())
	bad := r
	bad.Method = "POST"
	if _, err := v.Verify(context.Background(), bad); err == nil {
		t.Fatal("wrong method accepted")
	}
	if _, err := v.Verify(context.Background(), r); err != nil {
		t.Fatalf("after a refused use: %v", err)
	}
}

// failingStore is a ReplayStore whose answer is given.
type failingStore struct{ err error }

func (s failingStore) Use(context.Context, ReplayKey, time.Duration) (bool, error) {
	return false, s.err
}

func TestVerifyReplayStoreFails(t *testing.T) {
	keys(t)
	v, err := NewVerifier(Config{Replay: failingStore{errors.New("down")}, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), Request{
		Proofs: []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", goodClaims())},
		Method: "GET", URI: uri, Token: token, JKT: thumbprint(t, ecKey.Public()),
	})
	if !fault.Is(err, fault.Unavailable) {
		t.Fatalf("err = %v, want Unavailable", err)
	}
}

func TestVerifyNonce(t *testing.T) {
	keys(t)
	now := t0
	clock := func() time.Time { return now }
	nonces, err := NewNonces([]byte(strings.Repeat("n", 32)), time.Minute, clock)
	if err != nil {
		t.Fatal(err)
	}
	v := newTestVerifier(t, &now, nonces)
	r := Request{Method: "GET", URI: uri, Token: token, JKT: thumbprint(t, ecKey.Public())}
	verify := func(jti string, nonce any) (Proof, error) {
		r.Proofs = []string{signProof(t, jose.ES256, ecKey, "dpop+jwt", with(goodClaims(), "jti", jti, "nonce", nonce, "iat", now.Unix()))}
		return v.Verify(context.Background(), r)
	}

	// No nonce: use_dpop_nonce, and the nonce to use in DPoP-Nonce.
	_, err = verify("a", nil)
	wantCode(t, err, fault.Unauthenticated, CodeUseNonce)
	var fe *fault.Error
	errors.As(err, &fe)
	n := fe.Answer.Header.Get(NonceHeader)
	if n != nonces.Current() {
		t.Fatalf("DPoP-Nonce = %q, want the current nonce", n)
	}
	if !errors.Is(err, ErrUseNonce) {
		t.Fatal("use_dpop_nonce error does not wrap ErrUseNonce")
	}
	// The nonce dance: retry with it.
	if p, err := verify("b", n); err != nil || p.NextNonce != "" {
		t.Fatalf("with the nonce: %+v, %v", p, err)
	}
	// A wrong nonce, a nonce that is not a string: use_dpop_nonce again.
	_, err = verify("c", "AAAA")
	wantCode(t, err, fault.Unauthenticated, CodeUseNonce)
	_, err = verify("c2", 42)
	wantCode(t, err, fault.Unauthenticated, CodeInvalidProof)
	// One window later the nonce still passes, and a fresh one is offered.
	now = now.Add(time.Minute)
	p, err := verify("d", n)
	if err != nil || p.NextNonce == "" || p.NextNonce == n {
		t.Fatalf("previous window's nonce: %+v, %v; want accepted with a new nonce", p, err)
	}
	// Two windows later it is refused.
	now = now.Add(time.Minute)
	_, err = verify("e", n)
	wantCode(t, err, fault.Unauthenticated, CodeUseNonce)
}

func TestNewVerifier(t *testing.T) {
	for name, c := range map[string]Config{
		"no replay store": {},
		"HS256":           {Algorithms: []string{"ES256", "HS256"}, Replay: NewLocalReplay(1, nil)},
		"none":            {Algorithms: []string{"none"}, Replay: NewLocalReplay(1, nil)},
		"negative age":    {MaxAge: -time.Second, Replay: NewLocalReplay(1, nil)},
	} {
		if _, err := NewVerifier(c); err == nil {
			t.Errorf("%s: NewVerifier accepted it", name)
		}
	}
	v, err := NewVerifier(Config{Replay: NewLocalReplay(1, nil)})
	if err != nil || strings.Join(v.Algorithms(), ",") != "ES256,RS256,PS256,EdDSA" {
		t.Fatalf("defaults: %v, %v", v, err)
	}
}

func TestChallenge(t *testing.T) {
	algs := []string{"ES256", "RS256"}
	if got, want := Challenge(algs, nil), `DPoP algs="ES256 RS256"`; got != want {
		t.Errorf("bare: %s, want %s", got, want)
	}
	e := invalidProof(`bad "proof"` + "\n")
	if got, want := Challenge(algs, e), `DPoP algs="ES256 RS256", error="invalid_dpop_proof", error_description="bad proof"`; got != want {
		t.Errorf("error: %s, want %s", got, want)
	}
}
