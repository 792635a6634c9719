package e2e

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/stacktest"
)

// startJWTStack runs OPA, devidp and authgate with TOKEN_VALIDATION=mode;
// extra are more variables, name then value.
func startJWTStack(t *testing.T, mode string, extra ...string) (*stacktest.IDP, *stacktest.Gateway) {
	t.Helper()
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	env := stacktest.StackEnv(i, o)
	env["TOKEN_VALIDATION"] = mode
	env["OKTA_AUDIENCE"] = "api://default"
	for k := 0; k+1 < len(extra); k += 2 {
		env[extra[k]] = extra[k+1]
	}
	gw := stacktest.StartGateway(t, env)
	return i, gw
}

func b64JSON(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// foreignKeyToken is a well-formed JWT of the issuer signed by a key the
// issuer never published, under a kid of its own.
func foreignKeyToken(t *testing.T, claims map[string]any, kid string) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jws.CompactSerialize()
	return raw
}

// TestJWTMode: TOKEN_VALIDATION=jwt with devidp's JWTs and the real OPA.
// A valid token is allowed with no introspection; every forgery and every
// bad claim is 401.
func TestJWTMode(t *testing.T) {
	i, gw := startJWTStack(t, "jwt")
	sign := func(edit func(map[string]any)) string {
		c := i.Claims(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
		if edit != nil {
			edit(c)
		}
		raw, err := i.SignClaims(c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	valid := sign(nil)
	claims := i.Claims(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
	kid := i.KID()

	der, _ := x509.MarshalPKIXPublicKey(i.PublicKey())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hsInput := b64JSON(map[string]any{"alg": "HS256", "kid": kid}) + "." + b64JSON(claims)
	mac := hmac.New(sha256.New, pubPEM)
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	parts, other := strings.Split(valid, "."), strings.Split(sign(func(c map[string]any) { c["scp"] = []string{"admin"} }), ".")
	badSig := parts[0] + "." + other[1] + "." + parts[2]

	tests := []struct {
		name, token string
		status      int
		desc        string
	}{
		{"valid", valid, 200, ""},
		{"bad signature", badSig, 401, "token signature is invalid"},
		{"alg none", b64JSON(map[string]any{"alg": "none", "kid": kid}) + "." + b64JSON(claims) + ".", 401, "token is not a JWT signed with an accepted algorithm"},
		{"HS256 keyed with the public key", hs256, 401, "token is not a JWT signed with an accepted algorithm"},
		{"wrong iss", sign(func(c map[string]any) { c["iss"] = "https://evil.example/oauth2/default" }), 401, "token issuer not accepted"},
		{"wrong aud", sign(func(c map[string]any) { c["aud"] = "api://other" }), 401, "token audience not accepted"},
		{"expired", sign(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), 401, "token expired"},
		{"not yet valid", sign(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), 401, "token not yet valid"},
		{"opaque token", i.Token(t, "read_sayhello"), 401, "token is not a JWT signed with an accepted algorithm"},
		{"policy still decides", sign(func(c map[string]any) { c["scp"] = []string{"read_saysecret"} }), 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := stacktest.Get(t, gw.Traffic+"/sayhello", tc.token)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.Status, tc.status, r.Body)
			}
			if tc.desc != "" && !strings.Contains(r.Header.Get("WWW-Authenticate"), `error_description="`+tc.desc+`"`) {
				t.Errorf("WWW-Authenticate %q, want description %q", r.Header.Get("WWW-Authenticate"), tc.desc)
			}
		})
	}
	// Cached: the same token again costs nothing either.
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", valid); r.Status != 200 {
		t.Fatalf("valid token again: %d", r.Status)
	}
	if n := i.IntrospectCalls(); n != 0 {
		t.Errorf("%d introspections in jwt mode, want 0", n)
	}
	gw.AssertNoLeaks(t, valid, stacktest.GatewaySecret)
}

// TestJWTRotation: a token under a key published after start-up passes
// after one refetch; a flood of unknown kids then costs at most one fetch
// (per 10 s), and each is 401 (a refetch it waited for lacked the kid) or
// 503 with Retry-After (undecidable until the next refetch), never 200.
func TestJWTRotation(t *testing.T) {
	i, gw := startJWTStack(t, "jwt")
	stacktest.Eventually(t, 10*time.Second, "start-up JWKS fetch", func() bool { return i.KeysCalls() >= 1 })
	before := i.KeysCalls()
	old, _ := i.IssueJWT(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", old); r.Status != 200 {
		t.Fatalf("token under the start-up key: %d %s", r.Status, r.Body)
	}
	if _, err := i.RotateKey(); err != nil {
		t.Fatal(err)
	}
	rotated, _ := i.IssueJWT(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", rotated); r.Status != 200 {
		t.Fatalf("token under the rotated key: %d %s", r.Status, r.Body)
	}
	if got := i.KeysCalls() - before; got != 1 {
		t.Errorf("JWKS fetches for the rotated key: %d, want 1", got)
	}
	before = i.KeysCalls()
	claims := i.Claims(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
	for n := range 20 {
		c := maps.Clone(claims)
		c["jti"] = "AT.flood" + string(rune('a'+n))
		r := stacktest.Get(t, gw.Traffic+"/sayhello", foreignKeyToken(t, c, "flood-"+string(rune('a'+n))))
		if r.Status != 401 && (r.Status != 503 || r.Header.Get("Retry-After") == "") {
			t.Fatalf("unknown kid %d: %d Retry-After %q %s", n, r.Status, r.Header.Get("Retry-After"), r.Body)
		}
	}
	if got := i.KeysCalls() - before; got > 1 {
		t.Errorf("a flood of unknown kids caused %d JWKS fetches, want at most 1", got)
	}
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", old); r.Status != 200 {
		t.Errorf("token under the previous key after rotation: %d", r.Status)
	}
}

// jwksRelay is a JWKS endpoint of its own that relays the IdP's key set
// while up is true and answers 502 otherwise; fetches counts its requests.
type jwksRelay struct {
	srv     *httptest.Server
	up      atomic.Bool
	fetches atomic.Int64
}

func startJWKSRelay(t *testing.T, i *stacktest.IDP, up bool) *jwksRelay {
	t.Helper()
	k := &jwksRelay{}
	k.up.Store(up)
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.fetches.Add(1)
		if !k.up.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		resp, err := http.Get(i.Issuer + "/v1/keys")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

// TestJWKSDown: while the JWKS endpoint fails, tokens under known keys keep
// working, and a token with an unknown kid is 503 with Retry-After, not 401.
func TestJWKSDown(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	keys := startJWKSRelay(t, i, true)
	env := stacktest.StackEnv(i, o)
	env["TOKEN_VALIDATION"], env["OKTA_AUDIENCE"], env["OKTA_JWKS_URL"] = "jwt", "api://default", keys.srv.URL
	gw := stacktest.StartGateway(t, env)
	// Ready once the start-up fetch brought the keys (signing_keys).
	stacktest.Eventually(t, 10*time.Second, "start-up JWKS fetch", func() bool {
		return stacktest.Get(t, gw.Admin+"/readyz", "").Status == 200
	})
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); r.Status != 200 || !strings.Contains(r.Body, `"jwks":"ok"`) {
		t.Errorf("/readyz in jwt mode: %d %s, want 200 reporting jwks", r.Status, r.Body)
	}

	keys.up.Store(false)
	known, _ := i.IssueJWT(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", known); r.Status != 200 {
		t.Fatalf("known key while the JWKS endpoint is down: %d %s", r.Status, r.Body)
	}
	unknown := foreignKeyToken(t, i.Claims(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour), "next-key")
	r := stacktest.Get(t, gw.Traffic+"/sayhello", unknown)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("unknown kid while the JWKS endpoint is down: %d Retry-After %q, want 503 with Retry-After (%s)",
			r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if n := i.IntrospectCalls(); n != 0 {
		t.Errorf("%d introspections, want 0", n)
	}
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); r.Status != 200 {
		t.Errorf("/readyz with the JWKS endpoint down: %d %s, want 200 (the keys held still validate)", r.Status, r.Body)
	}
	m := stacktest.Get(t, gw.Metrics+"/metrics", "").Body
	for _, want := range []string{
		`authgate_jwt_validations_total{result="valid"} 1`,
		`authgate_jwt_validations_total{result="unknown_key"} 1`,
		`authgate_jwks_fetches_total{result="ok"} 1`,
		`authgate_jwks_fetches_total{result="error"} 1`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestJWKSNeverFetched: in jwt mode no token can be valid before a key set
// was fetched once, so /readyz is 503 until then ("signing_keys"); it is
// 200 from the first fetch that succeeds, and stays so when the endpoint
// fails again (the keys held keep validating).
func TestJWKSNeverFetched(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	keys := startJWKSRelay(t, i, false)
	env := stacktest.StackEnv(i, o)
	env["TOKEN_VALIDATION"], env["OKTA_AUDIENCE"], env["OKTA_JWKS_URL"] = "jwt", "api://default", keys.srv.URL
	gw := stacktest.StartGateway(t, env)
	stacktest.Eventually(t, 10*time.Second, "start-up JWKS fetch", func() bool { return keys.fetches.Load() >= 1 })
	r := stacktest.Get(t, gw.Admin+"/readyz", "")
	if r.Status != 503 || !strings.Contains(r.Body, `"signing_keys":"none fetched yet"`) {
		t.Fatalf("/readyz before any key was fetched: %d %s, want 503 with signing_keys not ok", r.Status, r.Body)
	}
	if !strings.Contains(gw.Logs.String(), keys.srv.URL) {
		t.Errorf("the start-up log does not name the JWKS URL %s", keys.srv.URL)
	}

	keys.up.Store(true)
	valid, _ := i.IssueJWT(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", valid); r.Status != 200 {
		t.Fatalf("valid token once the JWKS endpoint answers: %d %s", r.Status, r.Body)
	}
	keys.up.Store(false)
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); r.Status != 200 || !strings.Contains(r.Body, `"signing_keys":"ok"`) {
		t.Errorf("/readyz once keys were fetched: %d %s, want 200", r.Status, r.Body)
	}
}

// TestJWKSNeverFetchedHybrid: in hybrid mode introspection answers while no
// key was fetched: /readyz reports signing_keys but stays 200.
func TestJWKSNeverFetchedHybrid(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	keys := startJWKSRelay(t, i, false) // never up
	env := stacktest.StackEnv(i, o)
	env["TOKEN_VALIDATION"], env["OKTA_AUDIENCE"], env["OKTA_JWKS_URL"] = "hybrid", "api://default", keys.srv.URL
	gw := stacktest.StartGateway(t, env)
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); r.Status != 200 || !strings.Contains(r.Body, `"signing_keys":"none fetched yet"`) {
		t.Errorf("/readyz in hybrid mode without keys: %d %s, want 200 reporting signing_keys", r.Status, r.Body)
	}
}

// TestDiscoveredPlainHTTPRefused: endpoints named by the issuer's metadata
// obey the rule of configured ones; a plain-http jwks_uri to a host that is
// not loopback is refused (not fetched, logged), and jwt mode stays not
// ready rather than trust keys that could be swapped on the way.
func TestDiscoveredPlainHTTPRefused(t *testing.T) {
	o := stacktest.StartOPA(t)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-authorization-server" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":"http://keys.invalid/keys","introspection_endpoint":"http://idp.invalid/in"}`, srv.URL)
	}))
	defer srv.Close()
	gw := stacktest.StartGateway(t, map[string]string{
		"OKTA_ISSUER": srv.URL, "OKTA_CLIENT_ID": stacktest.GatewayClient, "OKTA_CLIENT_SECRET": stacktest.GatewaySecret,
		"OPA_AUTHZ_URL": o.URL + stacktest.DecisionPath, "TOKEN_VALIDATION": "jwt", "OKTA_AUDIENCE": "api://default",
	})
	logs := gw.Logs.String()
	for _, want := range []string{
		"jwks_uri http://keys.invalid/keys refused: plain http to a host that is not loopback",
		"introspection_endpoint http://idp.invalid/in refused",
		"names no usable jwks_uri (set OKTA_JWKS_URL)",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); r.Status != 503 {
		t.Errorf("/readyz with the discovered JWKS endpoint refused: %d %s, want 503", r.Status, r.Body)
	}
}

// lastAccess is the access-log line of the last request answered.
func lastAccess(t *testing.T, gw *stacktest.Gateway) map[string]any {
	t.Helper()
	lines := gw.Logs.Lines("request")
	if len(lines) == 0 {
		t.Fatal("no access-log line")
	}
	return lines[len(lines)-1]
}

// TestHybridMode: a JWT of the issuer is validated locally (no
// introspection), an opaque token and a JWT of another issuer are
// introspected, and INTROSPECT_PATHS introspect a JWT too, so that a
// revoked one stops working there. The access log names the validation.
func TestHybridMode(t *testing.T) {
	i, gw := startJWTStack(t, "hybrid", "INTROSPECT_PATHS", "GET /sayhello")
	calls := func() int64 { return i.IntrospectCalls() }

	jwt, _ := i.IssueJWT(stacktest.DemoClient, []string{"read_sayhello", "read_saysecret"}, time.Hour)
	// /saysecret is not an introspect path: validated locally; the demo
	// policy then denies it, which shows the token itself was accepted.
	if r := stacktest.Get(t, gw.Traffic+"/saysecret", jwt); r.Status != 403 {
		t.Fatalf("JWT on /saysecret: %d %s", r.Status, r.Body)
	}
	if n := calls(); n != 0 {
		t.Errorf("JWT validated locally cost %d introspections", n)
	}
	if v := lastAccess(t, gw)["validation"]; v != "jwt" {
		t.Errorf("access log validation %v, want jwt", v)
	}

	opaque := i.Token(t, "read_sayhello")
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", opaque); r.Status != 200 {
		t.Fatalf("opaque token: %d %s", r.Status, r.Body)
	}
	if n := calls(); n != 1 {
		t.Errorf("opaque token: %d introspections, want 1", n)
	}
	if v := lastAccess(t, gw)["validation"]; v != "introspection" {
		t.Errorf("access log validation %v, want introspection", v)
	}

	// A JWT of another issuer (Okta's org server) is opaque to authgate.
	claims := i.Claims(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
	claims["iss"] = strings.TrimSuffix(i.Issuer, "/oauth2/default")
	orgToken, _ := i.SignClaims(claims)
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", orgToken); r.Status != 401 {
		t.Fatalf("org-server JWT unknown to the introspection endpoint: %d %s", r.Status, r.Body)
	}
	if n := calls(); n != 2 {
		t.Errorf("org-server JWT: %d introspections in all, want 2", n)
	}

	// A forged JWT of the issuer is refused without spending the budget.
	forged := foreignKeyToken(t, i.Claims(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour), i.KID())
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", forged); r.Status != 401 {
		t.Fatalf("forged JWT: %d %s", r.Status, r.Body)
	}
	if n := calls(); n != 2 {
		t.Errorf("forged JWT cost an introspection (%d in all, want 2)", n)
	}

	// INTROSPECT_PATHS: the valid JWT is introspected on /sayhello ...
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", jwt); r.Status != 200 {
		t.Fatalf("JWT on an introspect path: %d %s", r.Status, r.Body)
	}
	if n := calls(); n != 3 {
		t.Errorf("JWT on an introspect path: %d introspections in all, want 3", n)
	}
	// ... and a revoked one is refused there, while it still passes
	// elsewhere on its signature alone.
	revoked, _ := i.IssueJWT(stacktest.DemoClient, []string{"read_sayhello", "read_saysecret"}, time.Hour)
	i.Revoke(revoked)
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", revoked); r.Status != 401 {
		t.Fatalf("revoked JWT on an introspect path: %d %s", r.Status, r.Body)
	}
	if r := stacktest.Get(t, gw.Traffic+"/saysecret", revoked); r.Status != 403 {
		t.Fatalf("revoked JWT elsewhere: %d %s", r.Status, r.Body)
	}
	gw.AssertNoLeaks(t, jwt, opaque, revoked, stacktest.GatewaySecret)
}

// TestHybridIntrospectPathSpellings: INTROSPECT_PATHS add checking, so they
// match every spelling an upstream may read as the rule. Hybrid mode in
// front of an upstream with INTROSPECT_PATHS=/api/pay,DELETE /api/items: a
// JWT revoked at the dev IdP is refused on /api/Pay and /api/pay/ (which
// exact matching let through to the upstream), still passes elsewhere on
// its signature; a method-override header never reaches the upstream, and
// in verify mode, where the proxy forwards it, the DELETE it names is
// introspected.
func TestHybridIntrospectPathSpellings(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	up := startUpstream(t)
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + echoDecision
	env["UPSTREAM_URL"] = up.srv.URL
	env["TOKEN_VALIDATION"] = "hybrid"
	env["OKTA_AUDIENCE"] = "api://default"
	env["INTROSPECT_PATHS"] = "/api/pay, DELETE /api/items"
	gw := stacktest.StartGateway(t, env)

	jwt, _ := i.IssueJWT(stacktest.DemoClient, []string{"api_read"}, time.Hour)
	revoked, _ := i.IssueJWT(stacktest.DemoClient, []string{"api_read"}, time.Hour)
	// Both pass on their signature first, so that the cache holds them as
	// valid JWTs: what follows is the introspection INTROSPECT_PATHS add.
	for _, tok := range []string{jwt, revoked} {
		if r := do(t, "GET", gw.Traffic+"/api/other", bearer(tok), nil); r.Status != 200 {
			t.Fatalf("JWT elsewhere: %d %s", r.Status, r.Body)
		}
	}
	if n := i.IntrospectCalls(); n != 0 {
		t.Fatalf("%d introspections for JWTs off INTROSPECT_PATHS", n)
	}
	i.Revoke(revoked)

	for _, path := range []string{"/api/pay", "/api/Pay", "/api/pay/", "/API/PAY"} {
		if r := do(t, "GET", gw.Traffic+path, bearer(jwt), nil); r.Status != 200 {
			t.Errorf("valid JWT on %s: %d %s", path, r.Status, r.Body)
		}
		hits := up.hits.Load()
		if r := do(t, "GET", gw.Traffic+path, bearer(revoked), nil); r.Status != 401 {
			t.Errorf("revoked JWT on %s: %d %s, want 401", path, r.Status, r.Body)
		}
		if up.hits.Load() != hits {
			t.Errorf("revoked JWT on %s reached the upstream", path)
		}
	}
	if r := do(t, "GET", gw.Traffic+"/api/other", bearer(revoked), nil); r.Status != 200 {
		t.Errorf("revoked JWT off INTROSPECT_PATHS: %d, want 200 until its exp (docs/token-validation.md)", r.Status)
	}

	// Proxy mode: the override never reaches the upstream, which sees the
	// POST that was decided.
	override := with(bearer(jwt), "X-HTTP-Method-Override", "DELETE", "X_HTTP_Method", "DELETE", "x-method-override", "DELETE")
	if r := do(t, "POST", gw.Traffic+"/api/items", override, nil); r.Status != 200 {
		t.Fatalf("POST with overrides: %d %s", r.Status, r.Body)
	}
	s := up.seen()
	for k := range s.Header {
		switch strings.ToLower(strings.ReplaceAll(k, "_", "-")) {
		case "x-http-method-override", "x-http-method", "x-method-override":
			t.Errorf("upstream got %s", k)
		}
	}
	if s.Method != "POST" || s.Header.Get("X-Seen-Method") != "POST" {
		t.Errorf("upstream got %s, policy saw %s", s.Method, s.Header.Get("X-Seen-Method"))
	}

	// Verify mode: the proxy forwards the override, so the DELETE it names
	// is introspected, and the revoked JWT refused.
	verify := func(tok string, kv ...string) stacktest.Response {
		return do(t, "GET", gw.Admin+"/verify", with(bearer(tok), append([]string{"X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/api/items"}, kv...)...), nil)
	}
	if r := verify(revoked); r.Status != 200 {
		t.Errorf("verify POST /api/items, revoked JWT, no override: %d, want 200 (not an introspect path)", r.Status)
	}
	if r := verify(revoked, "X-HTTP-Method-Override", "DELETE"); r.Status != 401 {
		t.Errorf("verify POST /api/items overridden to DELETE, revoked JWT: %d, want 401", r.Status)
	}
	if r := verify(jwt, "X-HTTP-Method-Override", "DELETE"); r.Status != 200 {
		t.Errorf("verify POST /api/items overridden to DELETE, valid JWT: %d", r.Status)
	}
	gw.AssertNoLeaks(t, jwt, revoked, stacktest.GatewaySecret)
}

// TestPrivateKeyJWT: authgate introspects with an RFC 7523 client
// assertion instead of a secret; a key the server does not know is 503
// with an ERROR naming the variables.
func TestPrivateKeyJWT(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	env := stacktest.StackEnv(i, o)
	delete(env, "OKTA_CLIENT_SECRET")
	env["OKTA_AUTH_METHOD"] = "private_key_jwt"
	env["OKTA_PRIVATE_KEY_FILE"] = i.GatewayKeyFile
	env["OKTA_PRIVATE_KEY_ID"] = stacktest.GatewayKeyID
	gw := stacktest.StartGateway(t, env)
	tok := i.Token(t, "read_sayhello")
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", tok); r.Status != 200 {
		t.Fatalf("private_key_jwt introspection: %d %s", r.Status, r.Body)
	}

	_, wrongKey := stacktest.WriteECKey(t)
	env["OKTA_PRIVATE_KEY_FILE"] = wrongKey
	wrong := stacktest.StartGateway(t, env)
	if r := stacktest.Get(t, wrong.Traffic+"/sayhello", tok); r.Status != 503 {
		t.Fatalf("unregistered key: %d %s, want 503", r.Status, r.Body)
	}
	const msg = "authorization server rejected authgate's client assertion: check OKTA_CLIENT_ID, OKTA_PRIVATE_KEY_FILE and OKTA_PRIVATE_KEY_ID (the key registered for the client), OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL"
	if lines := wrong.Logs.Lines(msg); len(lines) == 0 || lines[0]["level"] != "ERROR" {
		t.Errorf("no ERROR %q:\n%s", msg, wrong.Logs.String())
	}
	wrong.AssertNoLeaks(t, tok)
}
