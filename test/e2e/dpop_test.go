package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/opatest"
	"github.com/authgate/authgate/internal/stacktest"
	"github.com/authgate/authgate/test/dpopidp"
)

// dpopPolicy allows every request and shows what the policy saw of the
// sender constraint in the answer's headers (serve and proxy modes) and in
// /verify's (forward-auth).
const dpopPolicy = `package e2e.dpop

seen := {"X-Seen-Token-Type": input.token_type, "X-Seen-Jkt": object.get(input, ["dpop", "jkt"], ""),
	"X-Seen-Cert": object.get(input, ["client_cert", "x5t_s256"], ""),
	"X-Seen-Cert-Subject": object.get(input, ["client_cert", "subject"], "")}

decision := {"allowed": true, "headers": seen, "response_headers_to_add": seen}
`

// dpopStack is authgate with TOKEN_VALIDATION=jwt in front of the real
// authorization server of test/dpopidp (DPoP-bound JWT access tokens) and
// the real OPA, reached through front: the client's view of the service.
type dpopStack struct {
	idp   *dpopidp.IdP
	gw    *stacktest.Gateway
	front *front
	env   map[string]string
}

// startDPoPStack starts the stack in mode ("serve", "proxy" or "verify"),
// with extra variables (name, value, ...).
func startDPoPStack(t *testing.T, mode string, extra ...string) *dpopStack {
	t.Helper()
	idp := dpopidp.Start(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dpop.rego"), []byte(dpopPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	o := opatest.Start(t, dir)
	env := map[string]string{
		"OKTA_ISSUER":         idp.Issuer,
		"OKTA_JWKS_URL":       idp.JWKSURI,
		"OKTA_AUDIENCE":       dpopidp.Resource,
		"TOKEN_VALIDATION":    "jwt",
		"ALLOW_INSECURE_HTTP": "true",
		"OPA_AUTHZ_URL":       o.URL + "/v1/data/e2e/dpop/decision",
	}
	if mode == "proxy" {
		env["UPSTREAM_URL"] = startUpstream(t).srv.URL
	}
	if mode == "verify" {
		env["TRUSTED_PROXIES"] = "127.0.0.1"
	}
	for k := 0; k+1 < len(extra); k += 2 {
		env[extra[k]] = extra[k+1]
	}
	gw := stacktest.StartGateway(t, env)
	return &dpopStack{idp: idp, gw: gw, front: startFront(t, mode, gw), env: env}
}

// front is what the client talks to. In serve and proxy modes it passes
// each request on to authgate's traffic listener as it came (the Host
// header included: the client signed its own URL); in verify mode it is a
// forward-auth proxy, Traefik-style: it asks /verify about each request
// with X-Forwarded-Proto, -Host, -Method and -Uri, passes the client's
// Authorization and DPoP headers, and answers with /verify's status and
// challenges. It records the credentials of every request it saw.
type front struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []sent
}

// sent is a request's credentials as the client sent them.
type sent struct {
	method, uri, authorization, proof string
}

func startFront(t *testing.T, mode string, gw *stacktest.Gateway) *front {
	t.Helper()
	f := &front{}
	traffic, _ := neturl.Parse(gw.Traffic)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(traffic)
		r.Out.Host = r.In.Host
	}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, sent{method: r.Method, uri: "http://" + r.Host + r.RequestURI,
			authorization: r.Header.Get("Authorization"), proof: r.Header.Get("DPoP")})
		f.mu.Unlock()
		if mode != "verify" {
			rp.ServeHTTP(w, r)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", gw.Admin+"/verify", nil)
		req.Header.Set("X-Forwarded-Proto", "http")
		req.Header.Set("X-Forwarded-Host", r.Host)
		req.Header.Set("X-Forwarded-Method", r.Method)
		req.Header.Set("X-Forwarded-Uri", r.RequestURI)
		for _, k := range []string{"Authorization", "Dpop"} {
			for _, v := range r.Header.Values(k) {
				req.Header.Add(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, k := range []string{"Www-Authenticate", "Dpop-Nonce", "X-Seen-Token-Type", "X-Seen-Jkt", "Content-Type"} {
			for _, v := range resp.Header.Values(k) {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// first is the first request the front saw.
func (f *front) first(t *testing.T) sent {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		t.Fatal("the front saw no request")
	}
	return f.seen[0]
}

// dpopAnswer is authgate's answer to a hand-made request.
type dpopAnswer struct {
	status      int
	header      http.Header
	error, desc string
}

// sendDPoP sends method url with the Authorization value auth and, unless
// empty, the DPoP proofs.
func sendDPoP(t *testing.T, method, url, auth string, proofs ...string) dpopAnswer {
	t.Helper()
	return sendDPoPVia(t, "", method, url, auth, proofs...)
}

// sendDPoPVia is sendDPoP sent to the server at base (http://host:port)
// instead of url's, with url's host in the Host header: another replica
// behind the same name.
func sendDPoPVia(t *testing.T, base, method, url, auth string, proofs ...string) dpopAnswer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if base != "" {
		b, _ := neturl.Parse(base)
		req.URL.Host = b.Host
	}
	req.Header.Set("Authorization", auth)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &body)
	return dpopAnswer{status: resp.StatusCode, header: resp.Header, error: body.Error, desc: body.Desc}
}

// signProof signs a DPoP proof with the private JWK key.
func signProof(t *testing.T, key json.RawMessage, method, htu, token string, iat time.Time, jti string) string {
	t.Helper()
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(key); err != nil {
		t.Fatal(err)
	}
	alg := jose.SignatureAlgorithm(jwk.Algorithm)
	if alg == "" {
		alg = jose.ES256 // WebCrypto exports an EC key without alg; the client's keys are P-256
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jwk.Key},
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
	out, _ := jws.CompactSerialize()
	return out
}

// wantStatuses checks the library's requests' statuses.
func wantLibrary(t *testing.T, res dpopidp.Result, want ...int) {
	t.Helper()
	if len(res.Requests) != len(want) {
		t.Fatalf("%d requests, want %d: %+v", len(res.Requests), len(want), res.Requests)
	}
	for i, r := range res.Requests {
		if r.Status != want[i] {
			t.Errorf("request %d (%s, dpop %v): %d %s, want %d", i, r.Method, r.DPoP, r.Status, r.Error, want[i])
		}
	}
}

// TestDPoPEndToEnd: the real RFC 9449 client library (oauth4webapi) gets
// DPoP-bound JWT access tokens from the real authorization server
// (oidc-provider) and uses them through authgate (TOKEN_VALIDATION=jwt,
// the real OPA), in each mode: its own requests pass, and the policy sees
// token_type DPoP and the key's thumbprint; then every alteration of a
// request is 401: a replayed proof, a proof for another URL, another
// method, another token, by another key, a stale one, none, the bound
// token sent as Bearer. The altered proofs are signed with the library's
// own key (exported), and an unaltered one passes, so each refusal is the
// alteration's.
func TestDPoPEndToEnd(t *testing.T) {
	for _, mode := range []string{"serve", "verify", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			s := startDPoPStack(t, mode)
			url := s.front.srv.URL + "/sayhello"
			if mode != "serve" {
				url = s.front.srv.URL + "/api/orders/42?x=1"
			}
			res := s.idp.Client(t, url, "--tokens", "2", "--method", "GET", "--bearer", "--export-key")
			wantLibrary(t, res, 200, 200, 401)
			if e := res.Requests[2].Error; !strings.Contains(e, "invalid_token") {
				t.Errorf("bound token as Bearer: challenges %q, want invalid_token", e)
			}
			tok, other := res.Tokens[0], res.Tokens[1]
			first := s.front.first(t)
			if first.authorization != "DPoP "+tok || first.proof == "" {
				t.Fatalf("first request: %+v", first)
			}
			htu, _, _ := strings.Cut(first.uri, "?")
			now := time.Now()
			sign := func(method, htu, token string, iat time.Time, jti string) string {
				return signProof(t, res.PrivateJWK, method, htu, token, iat, jti)
			}
			otherKey := s.idp.Client(t, s.front.srv.URL+"/sayhello", "--method", "HEAD", "--export-key")

			// The control: a fresh proof by the library's key for this request.
			a := sendDPoP(t, "GET", first.uri, "DPoP "+tok, sign("GET", htu, tok, now, "control"))
			if a.status != 200 || a.header.Get("X-Seen-Token-Type") != "DPoP" || a.header.Get("X-Seen-Jkt") != res.JKT {
				t.Fatalf("a fresh proof by the key: %d %s %q, policy saw token_type %q jkt %q (want %q)",
					a.status, a.error, a.desc, a.header.Get("X-Seen-Token-Type"), a.header.Get("X-Seen-Jkt"), res.JKT)
			}
			for _, tc := range []struct {
				name, method, auth string
				proofs             []string
				code, desc         string
			}{
				{"replayed proof", "GET", "DPoP " + tok, []string{first.proof}, "invalid_dpop_proof", "used before"},
				{"replayed control", "GET", "DPoP " + tok, []string{sign("GET", htu, tok, now, "control")}, "invalid_dpop_proof", "used before"},
				{"proof for another URL", "GET", "DPoP " + tok, []string{sign("GET", htu+"x", tok, now, "u")}, "invalid_dpop_proof", "htu"},
				{"proof for another method", "GET", "DPoP " + tok, []string{sign("POST", htu, tok, now, "m")}, "invalid_dpop_proof", "htm"},
				{"proof for another token", "GET", "DPoP " + tok, []string{sign("GET", htu, other, now, "t")}, "invalid_dpop_proof", "ath"},
				{"proof by another key", "GET", "DPoP " + tok, []string{signProof(t, otherKey.PrivateJWK, "GET", htu, tok, now, "k")}, "invalid_dpop_proof", "key"},
				{"stale iat", "GET", "DPoP " + tok, []string{sign("GET", htu, tok, now.Add(-2*time.Minute), "s")}, "invalid_dpop_proof", "too old"},
				{"no proof", "GET", "DPoP " + tok, nil, "invalid_dpop_proof", "missing"},
				{"two proofs", "GET", "DPoP " + tok, []string{sign("GET", htu, tok, now, "2a"), sign("GET", htu, tok, now, "2b")}, "invalid_dpop_proof", "more than one"},
				{"bound token as Bearer, with a proof", "GET", "Bearer " + tok, []string{sign("GET", htu, tok, now, "b")}, "invalid_token", "bearer"},
			} {
				a := sendDPoP(t, tc.method, first.uri, tc.auth, tc.proofs...)
				ch := strings.Join(a.header.Values("WWW-Authenticate"), " | ")
				if mode == "verify" {
					// /verify's JSON body does not reach the client; its challenges do.
					a.error, a.desc = tc.code, tc.desc
					if !strings.Contains(ch, `error="`+tc.code+`"`) {
						a.error = ch
					}
				}
				if a.status != 401 || a.error != tc.code || !strings.Contains(strings.ToLower(a.desc), tc.desc) {
					t.Errorf("%s: %d %s %q, want 401 %s (%s)", tc.name, a.status, a.error, a.desc, tc.code, tc.desc)
				}
				if tc.code == "invalid_dpop_proof" && !strings.Contains(ch, `DPoP algs="ES256 RS256 PS256 EdDSA", error="invalid_dpop_proof"`) {
					t.Errorf("%s: challenges %q, want the DPoP one with invalid_dpop_proof", tc.name, ch)
				}
				if !strings.Contains(ch, `Bearer realm="authgate"`) {
					t.Errorf("%s: challenges %q, want a Bearer one too (DPOP_MODE=allowed)", tc.name, ch)
				}
			}
		})
	}
}

// TestDPoPNonce: with DPOP_NONCE=true the library's first request is
// answered 401 use_dpop_nonce with a DPoP-Nonce header, it retries with
// the nonce and passes, and its next request uses the nonce at once; a
// proof without a nonce, or with a made-up one, is refused with a fresh
// nonce.
func TestDPoPNonce(t *testing.T) {
	for _, mode := range []string{"serve", "verify"} {
		t.Run(mode, func(t *testing.T) {
			s := startDPoPStack(t, mode, "DPOP_NONCE", "true")
			url := s.front.srv.URL + "/sayhello"
			res := s.idp.Client(t, url, "--method", "GET", "--method", "GET", "--export-key")
			wantLibrary(t, res, 200, 200)
			if !res.Requests[0].NonceRetry || res.Requests[1].NonceRetry {
				t.Errorf("nonce retries %v, %v; want the first request only", res.Requests[0].NonceRetry, res.Requests[1].NonceRetry)
			}
			tok := res.Tokens[0]
			a := sendDPoP(t, "GET", url, "DPoP "+tok, signProof(t, res.PrivateJWK, "GET", url, tok, time.Now(), "no-nonce"))
			ch := strings.Join(a.header.Values("WWW-Authenticate"), " | ")
			if a.status != 401 || !strings.Contains(ch, `error="use_dpop_nonce"`) || a.header.Get("DPoP-Nonce") == "" {
				t.Errorf("proof without a nonce: %d, challenges %q, DPoP-Nonce %q; want 401 use_dpop_nonce with a nonce", a.status, ch, a.header.Get("DPoP-Nonce"))
			}
		})
	}
}

// TestDPoPRequired: DPOP_MODE=required refuses an unbound token, wherever
// it came from, and the DPoP client still passes; the failed proof's
// answer carries no Bearer challenge.
func TestDPoPRequired(t *testing.T) {
	s := startDPoPStack(t, "serve", "DPOP_MODE", "required")
	url := s.front.srv.URL + "/sayhello"
	res := s.idp.Client(t, url, "--method", "GET", "--export-key")
	wantLibrary(t, res, 200)
	tok := res.Tokens[0]
	a := sendDPoP(t, "GET", url, "DPoP "+tok)
	if ch := strings.Join(a.header.Values("WWW-Authenticate"), " | "); a.status != 401 || strings.Contains(ch, "Bearer") || !strings.Contains(ch, "invalid_dpop_proof") {
		t.Errorf("missing proof, DPOP_MODE=required: %d, challenges %q; want 401 with the DPoP challenge alone", a.status, ch)
	}
	// An unbound token: a JWT of the same issuer without cnf cannot be had
	// from this authorization server, so the bound one is presented as
	// Bearer (refused in any mode) and the refusal's kind is checked.
	if a := sendDPoP(t, "GET", url, "Bearer "+tok); a.status != 401 || a.error != "invalid_token" {
		t.Errorf("Bearer: %d %s, want 401 invalid_token", a.status, a.error)
	}
}

// TestDPoPIntrospection: TOKEN_VALIDATION=introspect against the
// authorization server's RFC 7662 endpoint: the binding comes from the
// introspection answer's cnf. The library passes, the bound token as
// Bearer is refused, a proof by another key is refused; the second request
// with the same token is answered from the token cache and its proof is
// checked all the same.
func TestDPoPIntrospection(t *testing.T) {
	s := startDPoPStackIntrospect(t)
	url := s.front.srv.URL + "/sayhello"
	res := s.idp.Client(t, url, "--resource", dpopidp.OpaqueResource, "--method", "GET", "--method", "GET", "--bearer", "--export-key")
	wantLibrary(t, res, 200, 200, 401)
	tok := res.Tokens[0]
	if strings.Count(tok, ".") == 2 {
		t.Fatalf("token %q is a JWT, want an opaque one", tok)
	}
	if t.Failed() {
		a := sendDPoP(t, "GET", url, "DPoP "+tok, signProof(t, res.PrivateJWK, "GET", url, tok, time.Now(), "dbg"))
		t.Fatalf("%d %s %q\n%s", a.status, a.error, a.desc, s.gw.Logs.String())
	}
	other := s.idp.Client(t, url, "--resource", dpopidp.OpaqueResource, "--method", "GET", "--export-key")
	if a := sendDPoP(t, "GET", url, "DPoP "+tok, signProof(t, other.PrivateJWK, "GET", url, tok, time.Now(), "k")); a.status != 401 || a.error != "invalid_dpop_proof" {
		t.Errorf("proof by another key (token cached): %d %s, want 401 invalid_dpop_proof", a.status, a.error)
	}
	if a := sendDPoP(t, "GET", url, "DPoP "+tok, signProof(t, res.PrivateJWK, "GET", url, tok, time.Now(), "ok")); a.status != 200 || a.header.Get("X-Seen-Jkt") != res.JKT {
		t.Errorf("the key's own proof after a refusal: %d %s, jkt %q; a proof's refusal must not be cached", a.status, a.error, a.header.Get("X-Seen-Jkt"))
	}
}

// startDPoPStackIntrospect is startDPoPStack in serve mode with
// TOKEN_VALIDATION=introspect at the authorization server's introspection
// endpoint (its metadata names it), as the DPoP client.
func startDPoPStackIntrospect(t *testing.T, extra ...string) *dpopStack {
	t.Helper()
	idp := dpopidp.Start(t)
	resp, err := http.Get(idp.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Introspection string `json:"introspection_endpoint"`
	}
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if meta.Introspection == "" {
		t.Fatal("the authorization server names no introspection endpoint")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dpop.rego"), []byte(dpopPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	o := opatest.Start(t, dir)
	env := map[string]string{
		"OKTA_ISSUER":         idp.Issuer,
		"OKTA_INTROSPECT_URL": meta.Introspection,
		"OKTA_CLIENT_ID":      dpopidp.DPoPClientID,
		"OKTA_CLIENT_SECRET":  dpopidp.DPoPClientSecret,
		"OKTA_AUDIENCE":       dpopidp.OpaqueResource,
		"TOKEN_VALIDATION":    "introspect",
		"ALLOW_INSECURE_HTTP": "true",
		"OPA_AUTHZ_URL":       o.URL + "/v1/data/e2e/dpop/decision",
	}
	for k := 0; k+1 < len(extra); k += 2 {
		env[extra[k]] = extra[k+1]
	}
	gw := stacktest.StartGateway(t, env)
	return &dpopStack{idp: idp, gw: gw, front: startFront(t, "serve", gw), env: env}
}

// TestDPoPReplayAcrossReplicas: two replicas sharing a real redis-server
// (REDIS_URL, FLEET_KEY): a proof used on one is refused on the other.
// With Redis stopped each replica still refuses the replays it saw itself,
// and a proof replayed on the other replica passes there: the documented
// price of not refusing every DPoP request while Redis is down.
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	r := stacktest.StartRedis(t)
	s := startDPoPStack(t, "serve", "REDIS_URL", r.URL, "FLEET_KEY", stacktest.FleetKey)
	b := stacktest.StartGateway(t, s.env)
	url := s.front.srv.URL + "/sayhello"
	res := s.idp.Client(t, url, "--method", "GET", "--export-key")
	wantLibrary(t, res, 200)
	first := s.front.first(t)
	if a := sendDPoPVia(t, b.Traffic, "GET", url, first.authorization, first.proof); a.status != 401 || !strings.Contains(a.desc, "used before") {
		t.Errorf("the library's proof replayed on the second replica: %d %s %q, want 401 used before", a.status, a.error, a.desc)
	}
	tok := res.Tokens[0]
	fresh := signProof(t, res.PrivateJWK, "GET", url, tok, time.Now(), "on-b")
	if a := sendDPoPVia(t, b.Traffic, "GET", url, "DPoP "+tok, fresh); a.status != 200 {
		t.Fatalf("a fresh proof on the second replica: %d %s %q", a.status, a.error, a.desc)
	}
	if a := sendDPoP(t, "GET", url, "DPoP "+tok, fresh); a.status != 401 || !strings.Contains(a.desc, "used before") {
		t.Errorf("the second replica's proof replayed on the first: %d %s %q, want 401 used before", a.status, a.error, a.desc)
	}

	r.Stop()
	down := signProof(t, res.PrivateJWK, "GET", url, tok, time.Now(), "redis-down")
	if a := sendDPoP(t, "GET", url, "DPoP "+tok, down); a.status != 200 {
		t.Fatalf("Redis down, a fresh proof: %d %s %q, want 200", a.status, a.error, a.desc)
	}
	if a := sendDPoP(t, "GET", url, "DPoP "+tok, down); a.status != 401 || !strings.Contains(a.desc, "used before") {
		t.Errorf("Redis down, replayed on the same replica: %d %s %q, want 401", a.status, a.error, a.desc)
	}
	if a := sendDPoPVia(t, b.Traffic, "GET", url, "DPoP "+tok, down); a.status != 200 {
		t.Errorf("Redis down, replayed on the other replica: %d %s %q; the documented gap says 200", a.status, a.error, a.desc)
	}
	resp, err := http.Get(s.gw.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `authgate_redis_requests_total{op="replay",result="error"}`) {
		t.Errorf("no replay error counted in authgate_redis_requests_total")
	}
	if !strings.Contains(s.gw.Logs.String(), "DPoP replay check without the fleet") {
		t.Errorf("no warning logged for the replay check without Redis")
	}
}

// selfSigned is a client certificate for cn in RFC 9440 form.
func selfSigned(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return ":" + base64.StdEncoding.EncodeToString(der) + ":"
}

// TestCertificateBoundEndToEnd: a certificate-bound token (RFC 8705) from
// the real authorization server, which bound it to the certificate in the
// RFC 9440 Client-Cert header, used through authgate behind a trusted
// TLS-terminating proxy (TRUSTED_PROXIES): with its certificate it passes
// and the policy sees the certificate's thumbprint and subject; without,
// or with another, 401 invalid_token. From a caller that is not a trusted
// proxy the header is removed, so the same request is refused.
func TestCertificateBoundEndToEnd(t *testing.T) {
	s := startDPoPStack(t, "verify") // TRUSTED_PROXIES=127.0.0.1
	cert, other := selfSigned(t, "client-1"), selfSigned(t, "client-2")
	tok, _ := s.idp.CertBoundToken(t, cert)

	traffic := s.gw.Traffic + "/sayhello"
	get := func(base string, certs ...string) dpopAnswer {
		req, _ := http.NewRequest("GET", base, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		for _, c := range certs {
			req.Header.Add("Client-Cert", c)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&b)
		return dpopAnswer{status: resp.StatusCode, header: resp.Header, error: b.Error}
	}
	a := get(traffic, cert)
	if a.status != 200 || a.header.Get("X-Seen-Cert") == "" || a.header.Get("X-Seen-Cert-Subject") != "CN=client-1" || a.header.Get("X-Seen-Token-Type") != "Bearer" {
		t.Fatalf("with its certificate: %d %s, policy saw cert %q subject %q token_type %q", a.status, a.error,
			a.header.Get("X-Seen-Cert"), a.header.Get("X-Seen-Cert-Subject"), a.header.Get("X-Seen-Token-Type"))
	}
	for name, certs := range map[string][]string{"no certificate": nil, "another certificate": {other}, "two headers": {cert, cert}, "malformed": {"MII"}} {
		if a := get(traffic, certs...); a.status != 401 || a.error != "invalid_token" {
			t.Errorf("%s: %d %s, want 401 invalid_token", name, a.status, a.error)
		}
	}
	// Not from a trusted proxy: the header is not believed.
	env := maps.Clone(s.env)
	delete(env, "TRUSTED_PROXIES")
	untrusted := stacktest.StartGateway(t, env)
	if a := get(untrusted.Traffic+"/sayhello", cert); a.status != 401 || a.error != "invalid_token" {
		t.Errorf("from a caller not in TRUSTED_PROXIES: %d %s, want 401 invalid_token", a.status, a.error)
	}
}

// TestDPoPSharedTier: a DPoP-bound token introspected by one replica
// reaches the other through the sealed shared tier (REDIS_URL) with its
// cnf: there it is answered without an introspection (shared_hit), still
// refused as Bearer, and passes with a proof by its key.
func TestDPoPSharedTier(t *testing.T) {
	r := stacktest.StartRedis(t)
	s := startDPoPStackIntrospect(t, "REDIS_URL", r.URL, "FLEET_KEY", stacktest.FleetKey)
	b := stacktest.StartGateway(t, s.env)
	url := s.front.srv.URL + "/sayhello"
	res := s.idp.Client(t, url, "--resource", dpopidp.OpaqueResource, "--method", "GET", "--export-key")
	wantLibrary(t, res, 200)
	tok := res.Tokens[0]
	a := sendDPoPVia(t, b.Traffic, "GET", url, "DPoP "+tok, signProof(t, res.PrivateJWK, "GET", url, tok, time.Now(), "on-b"))
	if a.status != 200 || a.header.Get("X-Seen-Jkt") != res.JKT {
		t.Fatalf("second replica, a proof by the key: %d %s %q, jkt %q", a.status, a.error, a.desc, a.header.Get("X-Seen-Jkt"))
	}
	if a := sendDPoPVia(t, b.Traffic, "GET", url, "Bearer "+tok); a.status != 401 || a.error != "invalid_token" {
		t.Errorf("second replica, as Bearer: %d %s, want 401 invalid_token", a.status, a.error)
	}
	var caches []any
	for _, l := range b.Logs.Lines("request") {
		caches = append(caches, l["cache"])
	}
	if len(caches) == 0 || caches[0] != "shared_hit" {
		t.Errorf("second replica's lookups: %v, want the first from the shared tier (shared_hit)", caches)
	}
}

// TestDPoPThroughNginx: real nginx (auth_request to /verify, the
// configuration of docs/proxies.md with $http_host and DPoP-Nonce passed
// on) in front of authgate with DPOP_NONCE=true: the library's requests
// pass after the nonce dance, and a proof replayed through nginx is 401
// with the DPoP challenge.
func TestDPoPThroughNginx(t *testing.T) {
	nginxBinary(t)
	checkDPoPThrough(t, "nginx", func(authgate, upstream string) string { return startNginx(t, authgate, upstream, true) })
}

// TestDPoPThroughCaddy: real Caddy (forward_auth to /verify, the
// configuration of docs/proxies.md as it stands) in front of authgate with
// DPOP_NONCE=true: Caddy passes the Authorization and DPoP headers and the
// original Host with its port, and gives the client authgate's 401 as it
// is, so the nonce dance passes and a replayed proof is 401.
func TestDPoPThroughCaddy(t *testing.T) {
	caddyBinary(t)
	checkDPoPThrough(t, "Caddy", func(authgate, upstream string) string { return startCaddy(t, authgate, upstream) })
}

// TestDPoPThroughHAProxy: real HAProxy with deploy/haproxy/authgate.lua
// (the configuration of docs/proxies.md as it stands) in front of authgate
// with DPOP_NONCE=true: the nonce dance passes and a replayed proof is 401.
func TestDPoPThroughHAProxy(t *testing.T) {
	haproxyBinary(t)
	checkDPoPThrough(t, "HAProxy", func(authgate, upstream string) string { return startHAProxy(t, authgate, upstream) })
}

// checkDPoPThrough puts the proxy start runs (given authgate's ADMIN_ADDR
// and the upstream, both host:port) in front of authgate in verify mode
// with DPOP_NONCE=true: the library's two requests pass, the first after a
// nonce retry, and the proof the upstream saw, replayed through the proxy,
// is 401 with the DPoP challenge.
func checkDPoPThrough(t *testing.T, name string, start func(authgate, upstream string) string) {
	t.Helper()
	s := startDPoPStack(t, "verify", "DPOP_NONCE", "true")
	up := startUpstream(t)
	url := start(strings.TrimPrefix(s.gw.Admin, "http://"), strings.TrimPrefix(up.srv.URL, "http://")) + "/api/orders/42?x=1"
	res := s.idp.Client(t, url, "--method", "GET", "--method", "GET")
	wantLibrary(t, res, 200, 200)
	if !res.Requests[0].NonceRetry {
		t.Errorf("no nonce retry through %s", name)
	}
	if t.Failed() {
		for _, l := range s.gw.Logs.Lines("request") {
			t.Logf("authgate: %v %v", l["status"], l["reason"])
		}
	}
	last := up.seen()
	if !strings.HasPrefix(last.Header.Get("Authorization"), "DPoP ") || last.Header.Get("DPoP") == "" {
		t.Fatalf("upstream got Authorization %q and no proof", last.Header.Get("Authorization"))
	}
	a := sendDPoP(t, "GET", url, last.Header.Get("Authorization"), last.Header.Get("DPoP"))
	if ch := strings.Join(a.header.Values("WWW-Authenticate"), " | "); a.status != 401 || !strings.Contains(ch, `error="invalid_dpop_proof"`) {
		t.Errorf("replayed through %s: %d, challenges %q; want 401 invalid_dpop_proof", name, a.status, ch)
	}
}

// TestDPoPHybrid: TOKEN_VALIDATION=hybrid, the DPoP-bound JWT of
// OKTA_ISSUER verified locally: the library passes, the bound token as
// Bearer and a proof by another key are refused.
func TestDPoPHybrid(t *testing.T) {
	s := startDPoPStack(t, "serve", "TOKEN_VALIDATION", "hybrid",
		"OKTA_CLIENT_ID", dpopidp.DPoPClientID, "OKTA_CLIENT_SECRET", dpopidp.DPoPClientSecret)
	url := s.front.srv.URL + "/sayhello"
	res := s.idp.Client(t, url, "--method", "GET", "--bearer", "--export-key")
	wantLibrary(t, res, 200, 401)
	other := s.idp.Client(t, url, "--method", "GET", "--export-key")
	tok := res.Tokens[0]
	if a := sendDPoP(t, "GET", url, "DPoP "+tok, signProof(t, other.PrivateJWK, "GET", url, tok, time.Now(), "k")); a.status != 401 || a.error != "invalid_dpop_proof" {
		t.Errorf("proof by another key: %d %s, want 401 invalid_dpop_proof", a.status, a.error)
	}
}
