package dpopidp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authgate/authgate/internal/certbind"
	"github.com/authgate/authgate/internal/dpop"
	"github.com/authgate/authgate/internal/fault"
)

// The tests below drive the real authorization server (oidc-provider) and
// the real client library (oauth4webapi) against a small resource server
// made of package dpop and package certbind, standing in for the gateway
// until they are wired into it. It does what the gateway will do: verify
// the JWT access token (go-jose, the fixture's JWKS), read its cnf,
// decide on the presentation, verify the proof, and answer 200, or 401
// with the DPoP (and Bearer) challenges and DPoP-Nonce.

const (
	maxAge = 60 * time.Second
	leeway = 5 * time.Second
)

// seen is one request the resource server checked: what a test replays
// or alters.
type seen struct {
	token, proof, method, uri string
}

type resourceServer struct {
	t        *testing.T
	idp      *IdP
	keys     *jose.JSONWebKeySet
	verifier *dpop.Verifier
	mode     dpop.Mode

	mu   sync.Mutex
	seen []seen
}

func newResourceServer(t *testing.T, idp *IdP, keys *jose.JSONWebKeySet, replay dpop.ReplayStore, nonces *dpop.Nonces) (*resourceServer, *httptest.Server) {
	t.Helper()
	v, err := dpop.NewVerifier(dpop.Config{MaxAge: maxAge, Leeway: leeway, Replay: replay, Nonces: nonces})
	if err != nil {
		t.Fatal(err)
	}
	rs := &resourceServer{t: t, idp: idp, keys: keys, verifier: v}
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	return rs, srv
}

// accessClaims are the access token's claims the resource server reads.
type accessClaims struct {
	jwt.Claims
	Cnf json.RawMessage `json:"cnf"`
}

// token verifies a JWT access token from the fixture.
func (rs *resourceServer) token(raw string) (accessClaims, error) {
	var c accessClaims
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return c, err
	}
	if err := tok.Claims(rs.keys, &c); err != nil {
		return c, err
	}
	return c, c.ValidateWithLeeway(jwt.Expected{Issuer: rs.idp.Issuer, AnyAudience: jwt.Audience{Resource}, Time: time.Now()}, leeway)
}

func (rs *resourceServer) check(r *http.Request) (dpop.Proof, error) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	var s dpop.Scheme
	switch strings.ToLower(scheme) {
	case "bearer":
		s = dpop.Bearer
	case "dpop":
		s = dpop.DPoP
	default:
		return dpop.Proof{}, &fault.Error{Kind: fault.NoToken}
	}
	claims, err := rs.token(tok)
	if err != nil {
		return dpop.Proof{}, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token not valid", Err: err}
	}
	b, err := dpop.BindingOf(claims.Cnf)
	if err != nil {
		return dpop.Proof{}, err
	}
	if err := dpop.Presentation(s, b, rs.mode); err != nil {
		return dpop.Proof{}, err
	}
	if s != dpop.DPoP {
		return dpop.Proof{}, nil
	}
	// The URI as the client sent it: loopback plain http, the raw target.
	uri := "http://" + r.Host + r.RequestURI
	rs.mu.Lock()
	rs.seen = append(rs.seen, seen{token: tok, proof: r.Header.Get("DPoP"), method: r.Method, uri: uri})
	rs.mu.Unlock()
	return rs.verifier.Verify(r.Context(), dpop.Request{Proofs: r.Header.Values("DPoP"), Method: r.Method, URI: uri, Token: tok, JKT: b.JKT})
}

func (rs *resourceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := rs.check(r)
	if err == nil {
		if p.NextNonce != "" {
			w.Header().Set(dpop.NonceHeader, p.NextNonce)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	var fe *fault.Error
	if !errors.As(err, &fe) {
		fe = &fault.Error{Kind: fault.Internal}
	}
	if fe.Answer != nil {
		for k, vs := range fe.Answer.Header {
			w.Header()[k] = vs
		}
	}
	w.Header().Add("WWW-Authenticate", dpop.Challenge(rs.verifier.Algorithms(), fe))
	w.Header().Add("WWW-Authenticate", `Bearer realm="test"`)
	w.Header().Set("X-Error", fe.ErrorCode())
	w.WriteHeader(fe.Kind.Status())
}

func (rs *resourceServer) requests() []seen {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]seen(nil), rs.seen...)
}

func fetchKeys(t *testing.T, idp *IdP) *jose.JSONWebKeySet {
	t.Helper()
	res, err := http.Get(idp.JWKSURI)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var ks jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&ks); err != nil || len(ks.Keys) == 0 {
		t.Fatalf("fixture JWKS: %v (%d keys)", err, len(ks.Keys))
	}
	return &ks
}

// send makes a request as a test writes it: authorization and proof given.
func send(t *testing.T, method, url, authorization, proof string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authorization)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("X-Error")
}

// proofIAT reads a recorded proof's iat, to set a verifier's clock to it.
func proofIAT(t *testing.T, proof string) time.Time {
	t.Helper()
	parts := strings.Split(proof, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		IAT int64 `json:"iat"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return time.Unix(c.IAT, 0)
}

func jktOf(t *testing.T, rs *resourceServer, token string) string {
	t.Helper()
	c, err := rs.token(token)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dpop.BindingOf(c.Cnf)
	if err != nil || b.JKT == "" {
		t.Fatalf("token has no cnf.jkt: %+v, %v", b, err)
	}
	return b.JKT
}

func wantStatuses(t *testing.T, what string, got Result, want ...int) {
	t.Helper()
	if len(got.Requests) != len(want) {
		t.Fatalf("%s: %d requests, want %d: %+v", what, len(got.Requests), len(want), got.Requests)
	}
	for i, r := range got.Requests {
		if r.Status != want[i] {
			t.Errorf("%s: request %d (%s, dpop %v) = %d %s, want %d", what, i, r.Method, r.DPoP, r.Status, r.Error, want[i])
		}
	}
}

func TestRealClient(t *testing.T) {
	took := Install(t)
	idp := Start(t)
	t.Logf("npm ci: %v (0: already installed); oidc-provider listening after %v", took, idp.StartedIn)
	keys := fetchKeys(t, idp)
	rs, srv := newResourceServer(t, idp, keys, dpop.NewLocalReplay(0, nil), nil)

	// The library's own requests: two GETs and a POST with DPoP pass; the
	// same bound token sent as a Bearer token is refused.
	start := time.Now()
	res := idp.Client(t, srv.URL+"/orders/42?x=1", "--tokens", "2", "--method", "GET", "--method", "GET", "--method", "POST", "--bearer")
	t.Logf("client.mjs (2 tokens, 7 requests): %v", time.Since(start))
	wantStatuses(t, "oauth4webapi", res, 200, 200, 200, 200, 200, 200, 401)
	if e := res.Requests[6].Error; !strings.Contains(e, "invalid_token") {
		t.Errorf("bound token as Bearer: challenges %q, want invalid_token", e)
	}
	if got := jktOf(t, rs, res.Tokens[0]); got != res.JKT {
		t.Fatalf("token cnf.jkt %s, library's thumbprint %s", got, res.JKT)
	}

	recorded := rs.requests()
	first := recorded[0]
	if first.method != "GET" || !strings.HasSuffix(first.uri, "/orders/42?x=1") {
		t.Fatalf("first recorded request: %+v", first)
	}

	// Replayed as it was sent: refused by the replay store.
	if code, e := send(t, first.method, first.uri, "DPoP "+first.token, first.proof); code != 401 || e != dpop.CodeInvalidProof {
		t.Errorf("replayed proof: %d %s, want 401 invalid_dpop_proof", code, e)
	}
	// The DPoP scheme without a proof. (Every recorded proof has been used
	// once, so the other alterations go through fresh verifiers below.)
	if code, e := send(t, "GET", first.uri, "DPoP "+first.token, ""); code != 401 || e != dpop.CodeInvalidProof {
		t.Errorf("missing proof: %d %s, want 401 invalid_dpop_proof", code, e)
	}

	// The recorded proofs, each through a verifier that has not seen it,
	// its clock at the proof's iat: unaltered it passes, so each refusal
	// below is the alteration's.
	iat := proofIAT(t, first.proof)
	fresh := func(now time.Time, replay dpop.ReplayStore) *dpop.Verifier {
		if replay == nil {
			replay = dpop.NewLocalReplay(0, func() time.Time { return now })
		}
		v, err := dpop.NewVerifier(dpop.Config{MaxAge: maxAge, Leeway: leeway, Replay: replay, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	base := dpop.Request{Proofs: []string{first.proof}, Method: first.method, URI: first.uri, Token: first.token, JKT: res.JKT}
	second := res.Tokens[1] // bound to the same key
	otherKey := idp.Client(t, srv.URL+"/orders/42", "--method", "GET")
	wantStatuses(t, "second client", otherKey, 200)

	for _, tc := range []struct {
		name   string
		now    time.Time
		change func(*dpop.Request)
		code   string
	}{
		{"the library's proof", iat, func(*dpop.Request) {}, ""},
		{"normalised URI", iat, func(r *dpop.Request) { r.URI = strings.Replace(r.URI, "/orders/42", "/orders/./%34%32", 1) }, ""},
		{"another URL", iat, func(r *dpop.Request) { r.URI = strings.Replace(r.URI, "/orders/42", "/orders/43", 1) }, dpop.CodeInvalidProof},
		{"another host", iat, func(r *dpop.Request) { r.URI = strings.Replace(r.URI, "127.0.0.1", "localhost", 1) }, dpop.CodeInvalidProof},
		{"another method", iat, func(r *dpop.Request) { r.Method = "POST" }, dpop.CodeInvalidProof},
		{"another token, same key", iat, func(r *dpop.Request) { r.Token = second }, dpop.CodeInvalidProof},
		{"a token bound to another key", iat, func(r *dpop.Request) {
			r.Token, r.JKT = otherKey.Tokens[0], otherKey.JKT
		}, dpop.CodeInvalidProof},
		{"stale iat", iat.Add(maxAge + leeway + time.Second), func(*dpop.Request) {}, dpop.CodeInvalidProof},
		{"future iat", iat.Add(-leeway - time.Second), func(*dpop.Request) {}, dpop.CodeInvalidProof},
		{"missing proof", iat, func(r *dpop.Request) { r.Proofs = nil }, dpop.CodeInvalidProof},
		{"two proofs", iat, func(r *dpop.Request) { r.Proofs = []string{first.proof, recorded[1].proof} }, dpop.CodeInvalidProof},
		{"unbound token", iat, func(r *dpop.Request) { r.JKT = "" }, dpop.CodeInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.change(&r)
			_, err := fresh(tc.now, nil).Verify(context.Background(), r)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != tc.code {
				t.Fatalf("Verify: %v, want 401 %s", err, tc.code)
			}
		})
	}

	// The library with a token bound to another key: its own proof (its
	// key) does not match the token's cnf.jkt.
	foreign := idp.Client(t, srv.URL+"/orders/42", "--foreign-token", res.Tokens[0], "--method", "GET")
	wantStatuses(t, "foreign token", foreign, 401)

	// Two replicas sharing a fleet store: a proof used on one is refused
	// on the other; with the fleet store down, only by the first.
	t.Run("second replica", func(t *testing.T) {
		shared := &memFleet{m: map[string]bool{}}
		replica := func() dpop.ReplayStore {
			return &dpop.LayeredReplay{Local: dpop.NewLocalReplay(0, func() time.Time { return iat }), Fleet: shared}
		}
		a, b := fresh(iat, replica()), fresh(iat, replica())
		if _, err := a.Verify(context.Background(), base); err != nil {
			t.Fatalf("replica 1: %v", err)
		}
		if _, err := b.Verify(context.Background(), base); fault.KindOf(err) != fault.Unauthenticated {
			t.Fatalf("replica 2, the same proof: %v, want refused", err)
		}
		shared.down = true
		c := fresh(iat, replica())
		if _, err := c.Verify(context.Background(), base); err != nil {
			t.Fatalf("fleet store down, replica 3 never saw the proof: %v, want accepted (the documented limit)", err)
		}
		if _, err := c.Verify(context.Background(), base); fault.KindOf(err) != fault.Unauthenticated {
			t.Fatalf("fleet store down, replica 3 again: %v, want refused locally", err)
		}
	})

	// Other key types, as the library makes them. For an Ed25519 key
	// (--alg EdDSA) oauth4webapi writes the fully-specified alg "Ed25519"
	// (RFC 9864), which the default DPOP_ALGORITHMS' EdDSA accepts.
	for _, alg := range []string{"RS256", "PS256", "EdDSA"} {
		r := idp.Client(t, srv.URL+"/orders/42", "--alg", alg, "--method", "GET")
		wantStatuses(t, alg, r, 200)
	}
}

// memFleet is a fleet store in memory, shared by the replicas of a test,
// as Redis would be.
type memFleet struct {
	mu   sync.Mutex
	m    map[string]bool
	down bool
}

func (f *memFleet) SetNX(_ context.Context, key string, _ time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false, errors.New("fleet store down")
	}
	if f.m[key] {
		return false, nil
	}
	f.m[key] = true
	return true, nil
}

// TestRealClientNonce: with resource-server nonces, the library's first
// request is answered use_dpop_nonce with a DPoP-Nonce header, it retries
// with the nonce, and its next requests carry it from the start.
func TestRealClientNonce(t *testing.T) {
	idp := Start(t)
	nonces, err := dpop.NewNonces([]byte(strings.Repeat("fleet-key-", 4)), time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, srv := newResourceServer(t, idp, fetchKeys(t, idp), dpop.NewLocalReplay(0, nil), nonces)
	res := idp.Client(t, srv.URL+"/orders", "--method", "GET", "--method", "POST")
	wantStatuses(t, "nonce dance", res, 200, 200)
	if !res.Requests[0].NonceRetry || res.Requests[1].NonceRetry {
		t.Errorf("nonce retries %v, %v: want the first request only", res.Requests[0].NonceRetry, res.Requests[1].NonceRetry)
	}
}

// TestCertificateBoundToken: oidc-provider binds a token to the client
// certificate a TLS-terminating proxy forwards in Client-Cert (RFC 9440);
// certbind computes the same thumbprint from the same header, passes the
// token with that certificate, and refuses it without or with another.
func TestCertificateBoundToken(t *testing.T) {
	idp := Start(t)
	keys := fetchKeys(t, idp)
	rs := &resourceServer{t: t, idp: idp, keys: keys}
	der := clientCert(t, "client-1")
	header := ":" + base64.StdEncoding.EncodeToString(der) + ":"

	tok, tokenType := idp.CertBoundToken(t, header)
	claims, err := rs.token(tok)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dpop.BindingOf(claims.Cnf)
	if err != nil || b.X5tS256 == "" || b.JKT != "" {
		t.Fatalf("token cnf %s: %+v, %v; want x5t#S256 only", claims.Cnf, b, err)
	}
	if !strings.EqualFold(tokenType, "bearer") {
		t.Errorf("token_type %q, want Bearer (RFC 8705 keeps the scheme)", tokenType)
	}
	cert, err := certbind.Parse([]string{header})
	if err != nil {
		t.Fatal(err)
	}
	if cert.X5tS256 != b.X5tS256 {
		t.Fatalf("certbind thumbprint %s, oidc-provider's %s", cert.X5tS256, b.X5tS256)
	}
	if cert.Subject != "CN=client-1" {
		t.Errorf("subject %q", cert.Subject)
	}
	if err := dpop.Presentation(dpop.Bearer, b, dpop.Required); err != nil {
		t.Errorf("certificate-bound token as Bearer under DPOP_MODE=required: %v", err)
	}
	if err := certbind.Check(b.X5tS256, cert); err != nil {
		t.Errorf("its certificate: %v", err)
	}
	other, err := certbind.Parse([]string{":" + base64.StdEncoding.EncodeToString(clientCert(t, "client-2")) + ":"})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*certbind.Cert{"no certificate": nil, "another certificate": other} {
		var fe *fault.Error
		if err := certbind.Check(b.X5tS256, c); !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.ErrorCode() != "invalid_token" {
			t.Errorf("%s: %v, want 401 invalid_token", name, err)
		}
	}
}

func clientCert(t *testing.T, cn string) []byte {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
