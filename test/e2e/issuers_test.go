package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/devidp"
	"github.com/authgate/authgate/internal/opatest"
	"github.com/authgate/authgate/internal/stacktest"
)

// issuersDecision is issuersPolicy's decision.
const issuersDecision = "/v1/data/e2e/issuers/decision"

// issuersPolicy allows a request only when the client says which issuer
// its token is of (X-Want-Issuer) and the policy's input.issuer is that
// exact URL: a request passes only if the policy saw the right issuer.
const issuersPolicy = `package e2e.issuers

default decision := {"allowed": false}

decision := {"allowed": true} if input.headers["x-want-issuer"] == input.issuer
`

// issuersStack is three development authorization servers at once, the
// real OPA with issuersPolicy, and what authgate is configured with:
//   - primary (OKTA_ISSUER, /oauth2/default): introspected;
//   - orders (/oauth2/orders): JWTs validated locally only;
//   - org (/oauth2/org): introspected, and takes the opaque tokens of
//     GET /saysecret (ISSUER_ORG_OPAQUE_PATHS); its breaker opens at the
//     first failure.
type issuersStack struct {
	primary, orders, org *stacktest.IDP
	env                  map[string]string
}

func startIssuersStack(t *testing.T, orgEdit ...func(*devidp.Config)) *issuersStack {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "issuers.rego"), []byte(issuersPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	o := opatest.Start(t, dir)
	s := &issuersStack{
		primary: stacktest.StartIDPAt(t, 0, "/oauth2/default"),
		orders:  stacktest.StartIDPAt(t, 0, "/oauth2/orders"),
		org:     stacktest.StartIDPAt(t, 0, "/oauth2/org", orgEdit...),
	}
	s.env = stacktest.StackEnv(s.primary, o)
	for k, v := range map[string]string{
		"OPA_AUTHZ_URL":                  o.URL + issuersDecision,
		"TRUSTED_PROXIES":                "127.0.0.1/32",
		"ISSUERS":                        "orders,org",
		"ISSUER_ORDERS_URL":              s.orders.Issuer,
		"ISSUER_ORDERS_TOKEN_VALIDATION": "jwt",
		"ISSUER_ORDERS_AUDIENCE":         "api://default",
		"ISSUER_ORG_URL":                 s.org.Issuer,
		"ISSUER_ORG_CLIENT_ID":           stacktest.GatewayClient,
		"ISSUER_ORG_CLIENT_SECRET":       stacktest.GatewaySecret,
		"ISSUER_ORG_OPAQUE_PATHS":        "GET /saysecret",
		"ISSUER_ORG_BREAKER_FAILURES":    "1",
	} {
		s.env[k] = v
	}
	return s
}

// calls are the introspections each authorization server answered.
func (s *issuersStack) calls() [3]int64 {
	return [3]int64{s.primary.IntrospectCalls(), s.orders.IntrospectCalls(), s.org.IntrospectCalls()}
}

func (s *issuersStack) opaque(t *testing.T, i *stacktest.IDP) string {
	t.Helper()
	tok, err := i.Issue(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *issuersStack) jwt(t *testing.T, i *stacktest.IDP) string {
	t.Helper()
	tok, err := i.IssueJWT(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signedAs is a JWT whose iss is iss, properly signed by i's key.
func signedAs(t *testing.T, i *stacktest.IDP, iss string) string {
	t.Helper()
	c := i.Claims(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour)
	c["iss"] = iss
	tok, err := i.SignClaims(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// issuerCase is one request and what must come of it.
type issuerCase struct {
	name   string
	path   string // /sayhello or /saysecret: served in every mode
	token  string
	want   string // X-Want-Issuer
	status int
	calls  [3]int64 // introspections at primary, orders, org
}

// TestIssuers: with ISSUERS, in serve, proxy and forward-auth modes, each
// issuer's token passes by its own rules and is introspected at its own
// issuer only (counted at each devidp): an opaque token at the primary,
// or at org on org's OPAQUE_PATHS (the original request's path on
// /verify), never at a second issuer; orders' JWTs by orders' keys, with
// no introspection anywhere; org's JWT at org, by its iss, whatever the
// path. A JWT of an unknown issuer, and one naming orders but signed by
// org's key, are 401 with no introspection anywhere. The real OPA sees
// input.issuer: a request whose X-Want-Issuer is not its token's issuer
// is 403.
func TestIssuers(t *testing.T) {
	s := startIssuersStack(t)
	up := startUpstream(t)
	for _, mode := range []string{"serve", "proxy", "verify"} {
		t.Run(mode, func(t *testing.T) {
			env := maps.Clone(s.env)
			if mode == "proxy" {
				env["UPSTREAM_URL"] = up.srv.URL
			}
			gw := stacktest.StartGateway(t, env)
			url := func(path string) string {
				if mode == "verify" {
					return gw.Admin + "/verify" + path // Envoy style: the original path after /verify
				}
				return gw.Traffic + path
			}
			primaryTok, orgTok := s.opaque(t, s.primary), s.opaque(t, s.org)
			cases := []issuerCase{
				{"primary's opaque token", "/sayhello", primaryTok, s.primary.Issuer, 200, [3]int64{1, 0, 0}},
				{"the policy sees the primary, not org", "/sayhello", primaryTok, s.org.Issuer, 403, [3]int64{0, 0, 0}},
				{"org's opaque token on org's OPAQUE_PATHS", "/saysecret", orgTok, s.org.Issuer, 200, [3]int64{0, 0, 1}},
				{"org's opaque token elsewhere: the primary's, which does not know it", "/sayhello", s.opaque(t, s.org), s.org.Issuer, 401, [3]int64{1, 0, 0}},
				{"the primary's opaque token on org's paths: org's, which does not know it", "/saysecret", s.opaque(t, s.primary), s.primary.Issuer, 401, [3]int64{0, 0, 1}},
				{"orders' JWT: its keys, no introspection", "/sayhello", s.jwt(t, s.orders), s.orders.Issuer, 200, [3]int64{0, 0, 0}},
				{"org's JWT, by its iss, off org's paths", "/sayhello", s.jwt(t, s.org), s.org.Issuer, 200, [3]int64{0, 0, 1}},
				{"a JWT of an unknown issuer", "/sayhello", signedAs(t, s.orders, "https://unknown.example/oauth2/x"), "", 401, [3]int64{0, 0, 0}},
				{"a JWT naming orders, signed by org's key", "/sayhello", signedAs(t, s.org, s.orders.Issuer), s.orders.Issuer, 401, [3]int64{0, 0, 0}},
			}
			for _, tc := range cases {
				before := s.calls()
				r := do(t, "GET", url(tc.path), with(bearer(tc.token), "X-Want-Issuer", tc.want), nil)
				after := s.calls()
				got := [3]int64{after[0] - before[0], after[1] - before[1], after[2] - before[2]}
				if r.Status != tc.status {
					t.Errorf("%s: status %d, want %d (%s)", tc.name, r.Status, tc.status, r.Body)
				}
				if got != tc.calls {
					t.Errorf("%s: introspections at primary, orders, org = %v, want %v", tc.name, got, tc.calls)
				}
			}
			if mode == "serve" {
				issuerMetricsAndLog(t, gw)
			}
		})
	}
}

// issuerMetricsAndLog checks, after TestIssuers' cases, the issuer label
// of the metrics and the access log: each introspection, lookup, JWT
// validation and JWKS fetch counted under the issuer the token went to,
// the totals unchanged, and the
// access line naming the issuer (none for the unknown issuer's JWT).
func issuerMetricsAndLog(t *testing.T, gw *stacktest.Gateway) {
	t.Helper()
	m := scrape(t, gw)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"authgate_issuer_introspection_requests_total", []string{"issuer=primary", "result=active"}, 1},
		{"authgate_issuer_introspection_requests_total", []string{"issuer=primary", "result=inactive"}, 1},
		{"authgate_issuer_introspection_requests_total", []string{"issuer=org", "result=active"}, 2},
		{"authgate_issuer_introspection_requests_total", []string{"issuer=org", "result=inactive"}, 1},
		{"authgate_issuer_introspection_requests_total", []string{"issuer=orders", "result=active"}, 0},
		{"authgate_introspection_requests_total", []string{"result=active"}, 3},
		{"authgate_issuer_cache_requests_total", []string{"issuer=primary", "result=hit"}, 1},
		{"authgate_issuer_cache_requests_total", []string{"issuer=orders", "result=miss"}, 2},
		{"authgate_issuer_cache_requests_total", []string{"issuer=org", "result=miss"}, 3},
		{"authgate_issuer_jwt_validations_total", []string{"issuer=orders", "result=valid"}, 1},
		// The JWT naming orders but signed by org's key: a kid orders lacks.
		{"authgate_issuer_jwt_validations_total", []string{"issuer=orders", "result=unknown_key"}, 1},
		{"authgate_issuer_jwt_validations_total", []string{"issuer=primary", "result=valid"}, 0},
		{"authgate_jwt_validations_total", []string{"result=valid"}, 1},
		// At start, and again for that unknown kid.
		{"authgate_issuer_jwks_fetches_total", []string{"issuer=orders", "result=ok"}, 2},
		{"authgate_issuer_jwks_fetches_total", []string{"issuer=primary", "result=ok"}, 0},
	} {
		if v := m.value(c.name, c.labels...); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	byIssuer := map[string]int{}
	for _, l := range accessLines(t, gw) {
		iss, _ := l["issuer"].(string)
		byIssuer[iss]++
	}
	if want := map[string]int{"primary": 3, "org": 3, "orders": 2, "": 1}; !equalCounts(byIssuer, want) {
		t.Errorf("access lines by issuer = %v, want %v", byIssuer, want)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestIssuerDown: one issuer down leaves the others' tokens working. org's
// authorization server stops; its token gets 503 and its breaker opens
// (/readyz says so under "idp_org", the primary's "idp" stays ok), while
// new tokens of the primary (introspected) and of orders (JWT) still pass.
func TestIssuerDown(t *testing.T) {
	s := startIssuersStack(t)
	up := startUpstream(t)
	env := maps.Clone(s.env)
	env["UPSTREAM_URL"] = up.srv.URL
	gw := stacktest.StartGateway(t, env)

	orgTok := s.opaque(t, s.org)
	s.org.Srv.Close()
	if r := do(t, "GET", gw.Traffic+"/saysecret", with(bearer(orgTok), "X-Want-Issuer", s.org.Issuer), nil); r.Status != 503 {
		t.Fatalf("org down: status %d, want 503 (%s)", r.Status, r.Body)
	}
	ready := readyz(t, gw)
	if ready["idp_org"] != "breaker open" || ready["idp"] != "ok" {
		t.Errorf("/readyz = %v, want idp_org breaker open, idp ok", ready)
	}
	for _, tc := range []struct {
		name, token, want string
	}{
		{"a new token of the primary", s.opaque(t, s.primary), s.primary.Issuer},
		{"a new JWT of orders", s.jwt(t, s.orders), s.orders.Issuer},
	} {
		if r := do(t, "GET", gw.Traffic+"/sayhello", with(bearer(tc.token), "X-Want-Issuer", tc.want), nil); r.Status != 200 {
			t.Errorf("%s with org down: status %d, want 200 (%s)", tc.name, r.Status, r.Body)
		}
	}
	if r := do(t, "GET", gw.Traffic+"/saysecret", with(bearer(s.opaque(t, s.primary)), "X-Want-Issuer", s.org.Issuer), nil); r.Status != 503 {
		t.Errorf("an opaque token on org's paths with org down: status %d, want 503: never tried at the primary (%s)", r.Status, r.Body)
	}
	// orders' keys are reported under its own names; org, which validates
	// no JWT, has none.
	ready = readyz(t, gw)
	if ready["jwks_orders"] != "ok" || ready["signing_keys_orders"] != "ok" || ready["idp_orders"] != "" || ready["jwks_org"] != "" {
		t.Errorf("/readyz = %v, want jwks_orders and signing_keys_orders ok, no idp_orders (orders never introspects), no jwks_org", ready)
	}
}

// TestIssuerHeld: org's authorization server answers 429 (devidp's rate
// limit: one call a minute); org's tokens are then held (503, org not
// asked again), while the primary's new tokens are introspected at the
// primary as usual.
func TestIssuerHeld(t *testing.T) {
	s := startIssuersStack(t, func(c *devidp.Config) { c.RateLimit = 1 })
	gw := stacktest.StartGateway(t, s.env)
	get := func(path, token, want string) int {
		return do(t, "GET", gw.Traffic+path, with(bearer(token), "X-Want-Issuer", want), nil).Status
	}
	if st := get("/saysecret", s.opaque(t, s.org), s.org.Issuer); st != 200 {
		t.Fatalf("org's first token: %d, want 200", st)
	}
	if st := get("/saysecret", s.opaque(t, s.org), s.org.Issuer); st != 503 {
		t.Fatalf("org's second token, past its rate limit: %d, want 503", st)
	}
	held := s.org.IntrospectCalls()
	if st := get("/saysecret", s.opaque(t, s.org), s.org.Issuer); st != 503 {
		t.Errorf("org's third token while held: %d, want 503", st)
	}
	if n := s.org.IntrospectCalls() - held; n != 0 {
		t.Errorf("org asked %d times while held", n)
	}
	before := s.primary.IntrospectCalls()
	if st := get("/sayhello", s.opaque(t, s.primary), s.primary.Issuer); st != 200 {
		t.Errorf("the primary's new token while org is held: %d, want 200", st)
	}
	if n := s.primary.IntrospectCalls() - before; n != 1 {
		t.Errorf("the primary asked %d times, want 1", n)
	}
}

// readyz is /readyz's report.
func readyz(t *testing.T, gw *stacktest.Gateway) map[string]string {
	t.Helper()
	r := stacktest.Get(t, gw.Admin+"/readyz", "")
	var m map[string]string
	if err := json.NewDecoder(strings.NewReader(r.Body)).Decode(&m); err != nil {
		t.Fatalf("/readyz: %v: %s", err, r.Body)
	}
	return m
}

// TestIssuersFleet: with REDIS_URL each issuer has its own shared tier.
// org's token introspected on one replica is a shared hit of org on
// another (one call at org); /readyz reports each issuer's tier. POST
// /revoke of org's opaque token (which the admin call cannot route: no
// OPAQUE_PATHS request) tombstones it in every issuer's tier: the other
// replica, and a replica started afterwards, refuse it without asking org;
// with REVOKE_UPSTREAM it is revoked at org, the issuer whose cache held
// its answer (the answer says so; the calls per issuer are counted in
// package tokens' TestRevokeRoutes).
func TestIssuersFleet(t *testing.T) {
	s := startIssuersStack(t)
	r := stacktest.StartRedis(t)
	s.env["REDIS_URL"], s.env["FLEET_KEY"], s.env["ADMIN_API_TOKEN"] = r.URL, stacktest.FleetKey, adminToken
	// REVOKE_UPSTREAM needs every issuer's client credentials.
	s.env["REVOKE_UPSTREAM"] = "true"
	s.env["ISSUER_ORDERS_CLIENT_ID"], s.env["ISSUER_ORDERS_CLIENT_SECRET"] = stacktest.GatewayClient, stacktest.GatewaySecret
	gw0, gw1 := stacktest.StartGateway(t, s.env), stacktest.StartGateway(t, s.env)
	tok := s.opaque(t, s.org)
	get := func(gw *stacktest.Gateway) int {
		return do(t, "GET", gw.Traffic+"/saysecret", with(bearer(tok), "X-Want-Issuer", s.org.Issuer), nil).Status
	}
	for k, gw := range []*stacktest.Gateway{gw0, gw1} {
		if st := get(gw); st != 200 {
			t.Fatalf("replica %d: %d, want 200", k, st)
		}
	}
	if n := s.org.IntrospectCalls(); n != 1 {
		t.Errorf("org introspected %d times for one token on two replicas, want 1", n)
	}
	if v := scrape(t, gw1).value("authgate_issuer_cache_requests_total", "issuer=org", "result=shared_hit"); v != 1 {
		t.Errorf("org's shared hits on the second replica = %v, want 1", v)
	}
	ready := readyz(t, gw0)
	for _, k := range []string{"redis", "redis_orders", "redis_org"} {
		if ready[k] != "ok" {
			t.Errorf("/readyz %s = %q, want ok (%v)", k, ready[k], ready)
		}
	}

	if res := revoke(t, gw0, adminToken, tok); res.Status != 200 || strings.TrimSpace(res.Body) != `{"scope":"fleet","upstream":"revoked","issuer":"org"}` {
		t.Fatalf("POST /revoke: %d %s, want revoked at org", res.Status, res.Body)
	}

	stacktest.Eventually(t, 2*time.Second, "the other replica refuses the revoked token", func() bool { return get(gw1) == 401 })
	gw2 := stacktest.StartGateway(t, s.env)
	if st := get(gw2); st != 401 {
		t.Errorf("a replica started after the revocation: %d, want 401 (the tombstone in org's tier)", st)
	}
	if n := s.org.IntrospectCalls(); n != 1 {
		t.Errorf("org introspected %d times, want 1: the revoked token is refused by the tombstone", n)
	}
}
