package tokens

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/certbind"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/dpop"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/forwarded"
)

// fixedTokens answers every lookup with its token and counts the lookups.
type fixedTokens struct {
	tok   *authn.Token
	calls int
}

func (f *fixedTokens) Lookup(context.Context, *authn.Request, string) (*authn.Token, authn.Lookup, error) {
	f.calls++
	return f.tok, 0, nil
}

// proofOf signs a DPoP proof with key for method and htu, bound to token.
func proofOf(t *testing.T, key *ecdsa.PrivateKey, method, htu, token, jti string, iat time.Time) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	ath := sha256.Sum256([]byte(token))
	claims, _ := json.Marshal(map[string]any{"jti": jti, "htm": method, "htu": htu, "iat": iat.Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(ath[:])})
	jws, err := s.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jktOf(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// clientCert is a self-signed certificate in RFC 9440 form, and its
// x5t#S256.
func clientCert(t *testing.T) (header, x5t string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return ":" + base64.StdEncoding.EncodeToString(der) + ":", certbind.Thumbprint(der)
}

// TestBound: the sender constraint above the token lookup, case by case
// (docs/sender-constrained.md): the scheme and the token's cnf, the proof
// against the request as the client sent it (on /verify the original
// request the proxy describes), the forwarded certificate; refusals are
// 401s with the RFC's codes and leave the token lookup's caches alone; a
// DPoP header that cannot hold a proof costs no token lookup.
func TestBound(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jkt := jktOf(t, key)
	certHeader, x5t := clientCert(t)
	otherCert, _ := clientCert(t)
	now := time.Now()
	const token = "tok.en.x"
	const uri = "https://api.example/a/b"
	serve := func(proofs ...string) *authn.Request {
		h := http.Header{}
		for _, p := range proofs {
			h.Add("DPoP", p)
		}
		return &authn.Request{Method: "GET", Path: "/a/b", Scheme: "https", Host: "api.example", Target: "/a/%62?q=1", Header: h, AuthScheme: "DPoP"}
	}
	bearer := func(h http.Header) *authn.Request {
		if h == nil {
			h = http.Header{}
		}
		return &authn.Request{Method: "GET", Path: "/a/b", Scheme: "https", Host: "api.example", Target: "/a/b", Header: h, AuthScheme: "Bearer"}
	}
	keyBound := json.RawMessage(`{"sub":"a","cnf":{"jkt":"` + jkt + `"}}`)
	certBound := json.RawMessage(`{"sub":"a","cnf":{"x5t#S256":"` + x5t + `"}}`)
	unbound := json.RawMessage(`{"sub":"a"}`)
	for _, tc := range []struct {
		name     string
		claims   json.RawMessage
		mode     dpop.Mode
		req      func() *authn.Request
		code     string // "" when it passes
		wantJKT  bool
		wantCert bool
		noLookup bool // refused before the token is looked up
	}{
		{name: "DPoP proof passes", claims: keyBound, req: func() *authn.Request { return serve(proofOf(t, key, "GET", uri, token, "1", now)) }, wantJKT: true},
		{name: "forward-auth: the original request's method and URI", claims: keyBound, req: func() *authn.Request {
			r := serve(proofOf(t, key, "PUT", "https://api.example/orig/x", token, "2", now))
			r.Method, r.Target, r.Original = "PUT", "/verify", forwarded.Request{Method: "PUT", RawPath: "/orig/x", RawQuery: "y=1"}
			return r
		}, wantJKT: true},
		{name: "forward-auth: a proof for /verify is refused", claims: keyBound, req: func() *authn.Request {
			r := serve(proofOf(t, key, "GET", "https://api.example/verify", token, "3", now))
			r.Target, r.Original = "/verify", forwarded.Request{Method: "GET", RawPath: "/orig/x"}
			return r
		}, code: dpop.CodeInvalidProof},
		{name: "proof for another URL", claims: keyBound, req: func() *authn.Request { return serve(proofOf(t, key, "GET", "https://api.example/c", token, "4", now)) }, code: dpop.CodeInvalidProof},
		{name: "proof by another key", claims: keyBound, req: func() *authn.Request { return serve(proofOf(t, other, "GET", uri, token, "5", now)) }, code: dpop.CodeInvalidProof},
		{name: "no proof", claims: keyBound, req: func() *authn.Request { return serve() }, code: dpop.CodeInvalidProof, noLookup: true},
		{name: "a proof that is no JWS", claims: keyBound, req: func() *authn.Request { return serve("garbage") }, code: dpop.CodeInvalidProof, noLookup: true},
		{name: "two proofs", claims: keyBound, req: func() *authn.Request {
			p := proofOf(t, key, "GET", uri, token, "7", now)
			return serve(p, p)
		}, code: dpop.CodeInvalidProof, noLookup: true},
		{name: "bound token as Bearer", claims: keyBound, req: func() *authn.Request { return bearer(nil) }, code: "invalid_token"},
		{name: "unbound token as DPoP", claims: unbound, req: func() *authn.Request { return serve(proofOf(t, key, "GET", uri, token, "6", now)) }, code: "invalid_token"},
		{name: "unbound Bearer, allowed", claims: unbound, req: func() *authn.Request { return bearer(nil) }},
		{name: "unbound Bearer, required", claims: unbound, mode: dpop.Required, req: func() *authn.Request { return bearer(nil) }, code: "invalid_token"},
		{name: "malformed cnf", claims: json.RawMessage(`{"cnf":"x"}`), req: func() *authn.Request { return bearer(nil) }, code: "invalid_token"},
		{name: "escaped cnf name is still cnf", claims: json.RawMessage(`{"\u0063nf":{"jkt":"` + jkt + `"}}`), req: func() *authn.Request { return bearer(nil) }, code: "invalid_token"},
		{name: "certificate-bound with its certificate", claims: certBound, mode: dpop.Required, req: func() *authn.Request {
			return bearer(http.Header{"Client-Cert": {certHeader}})
		}, wantCert: true},
		{name: "certificate-bound without a certificate", claims: certBound, req: func() *authn.Request { return bearer(nil) }, code: "invalid_token"},
		{name: "certificate-bound with another certificate", claims: certBound, req: func() *authn.Request {
			return bearer(http.Header{"Client-Cert": {otherCert}})
		}, code: "invalid_token"},
		{name: "certificate-bound with a malformed header", claims: certBound, req: func() *authn.Request {
			return bearer(http.Header{"Client-Cert": {"not-rfc9440"}})
		}, code: "invalid_token"},
		{name: "unbound token: a certificate is shown", claims: unbound, req: func() *authn.Request {
			return bearer(http.Header{"Client-Cert": {certHeader}})
		}, wantCert: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := dpop.NewVerifier(dpop.Config{Replay: dpop.NewLocalReplay(0, nil), Leeway: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			next := &fixedTokens{tok: &authn.Token{Subject: "a", Claims: tc.claims}}
			b := &Bound{Next: next, Mode: tc.mode, Proofs: v, CertHeader: "Client-Cert"}
			r := tc.req()
			tok, _, err := b.Lookup(context.Background(), r, token)
			var fe *fault.Error
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.code != "" && (!errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != tc.code || tok != nil):
				t.Fatalf("tok, err = %v, %v; want 401 %s", tok, err, tc.code)
			}
			if got := r.Bound.JKT != ""; got != tc.wantJKT || tc.wantJKT && r.Bound.JKT != jkt {
				t.Errorf("Bound.JKT = %q", r.Bound.JKT)
			}
			if got := r.Bound.CertX5tS256 != ""; got != tc.wantCert || tc.wantCert && (r.Bound.CertX5tS256 != x5t || r.Bound.CertSubject != "CN=client-1") {
				t.Errorf("Bound cert = %q %q", r.Bound.CertX5tS256, r.Bound.CertSubject)
			}
			if want := map[bool]int{false: 1, true: 0}[tc.noLookup]; next.calls != want {
				t.Errorf("%d lookups below, want %d", next.calls, want)
			}
		})
	}
}

// TestBoundReplayAndRecheck: a proof passes once; an open stream's
// re-check (Recheck) asks for no proof.
func TestBoundReplayAndRecheck(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	v, _ := dpop.NewVerifier(dpop.Config{Replay: dpop.NewLocalReplay(0, nil)})
	b := &Bound{Next: &fixedTokens{tok: &authn.Token{Claims: json.RawMessage(`{"cnf":{"jkt":"` + jktOf(t, key) + `"}}`)}}, Proofs: v}
	p := proofOf(t, key, "GET", "http://h/x", "t", "j", time.Now())
	req := func() *authn.Request {
		return &authn.Request{Method: "GET", Scheme: "http", Host: "h", Target: "/x", Header: http.Header{"Dpop": {p}}, AuthScheme: "DPoP"}
	}
	if _, _, err := b.Lookup(context.Background(), req(), "t"); err != nil {
		t.Fatalf("first use: %v", err)
	}
	var fe *fault.Error
	if _, _, err := b.Lookup(context.Background(), req(), "t"); !errors.As(err, &fe) || fe.Code != dpop.CodeInvalidProof {
		t.Fatalf("replay: %v, want invalid_dpop_proof", err)
	}
	if _, _, err := b.Lookup(context.Background(), &authn.Request{Method: "GET", Recheck: true}, "t"); err != nil {
		t.Fatalf("re-check: %v", err)
	}
}

// TestBoundNonceKey: with DPOP_NONCE=true, replicas sharing FLEET_KEY ask
// for the same nonce; without one, each process has its own.
func TestBoundNonceKey(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nonceOf := func(fleetKey string) string {
		t.Helper()
		cfg := &config.Config{DPoPMode: "allowed", DPoPAlgorithms: []string{"ES256"}, DPoPProofMaxAge: time.Minute,
			DPoPNonce: true, FleetKey: fleetKey, ClientCertHeader: "Client-Cert"}
		s := &Settings{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		b, err := s.bound(&fixedTokens{tok: &authn.Token{Claims: json.RawMessage(`{"cnf":{"jkt":"` + jktOf(t, key) + `"}}`)}})
		if err != nil {
			t.Fatal(err)
		}
		r := &authn.Request{Method: "GET", Scheme: "http", Host: "h", Target: "/x", AuthScheme: "DPoP",
			Header: http.Header{"Dpop": {proofOf(t, key, "GET", "http://h/x", "t", "j", time.Now())}}}
		_, _, err = b.Lookup(context.Background(), r, "t")
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Code != dpop.CodeUseNonce || fe.Answer == nil || fe.Answer.Header.Get(dpop.NonceHeader) == "" {
			t.Fatalf("proof without a nonce: %v, want use_dpop_nonce with a nonce", err)
		}
		return fe.Answer.Header.Get(dpop.NonceHeader)
	}
	const fleetKey = "fleet-key-0123456789abcdefghijklmnopqrstuvwxyz"
	if a, b := nonceOf(fleetKey), nonceOf(fleetKey); a != b {
		t.Errorf("two replicas with one FLEET_KEY ask for %q and %q", a, b)
	}
	if a, b := nonceOf(""), nonceOf(""); a == b {
		t.Errorf("two processes without FLEET_KEY share the nonce %q", a)
	}
}
