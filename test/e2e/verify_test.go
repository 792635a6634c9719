package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/stacktest"
)

// TestVerify calls the forward-auth endpoint as Traefik, nginx and Envoy
// do, with a policy that echoes what it saw back into the 200's headers.
func TestVerify(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + echoDecision
	env["TRUSTED_PROXIES"] = "127.0.0.1/32"
	env["PUBLIC_PATHS"] = "GET /health"
	gw := stacktest.StartGateway(t, env)
	tok := i.Token(t, "api_read")
	adminHost := strings.TrimPrefix(gw.Admin, "http://")

	cases := []struct {
		name, method, path string
		header             map[string]string
		want               map[string]string // stacktest.Response headers
	}{
		{name: "Traefik", method: "GET", path: "/verify",
			header: with(bearer(tok), "X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/a//b?x=1", "X-Forwarded-Host", "app.example",
				"X-Forwarded-Proto", "https", "X-Forwarded-For", "198.51.100.7"),
			want: map[string]string{"X-Seen-Method": "POST", "X-Seen-Path": "/a/b", "X-Seen-Query": `{"x":["1"]}`, "X-Seen-Mode": "verify",
				"X-Seen-Host": "app.example", "X-Seen-Scheme": "https", "X-Seen-Remote": "198.51.100.7"}},
		{name: "nginx", method: "GET", path: "/verify",
			header: with(bearer(tok), "X-Original-Method", "DELETE", "X-Original-URI", "/n/%78?y=2", "X-Forwarded-Host", "app.example"),
			want:   map[string]string{"X-Seen-Method": "DELETE", "X-Seen-Path": "/n/x", "X-Seen-Query": `{"y":["2"]}`, "X-Seen-Host": "app.example", "X-Seen-Scheme": "http"}},
		{name: "Envoy path_prefix", method: "PUT", path: "/verify/e/x?z=3", header: bearer(tok),
			want: map[string]string{"X-Seen-Method": "PUT", "X-Seen-Path": "/e/x", "X-Seen-Query": `{"z":["3"]}`, "X-Seen-Host": adminHost}},
		{name: "Envoy root", method: "GET", path: "/verify/", header: bearer(tok),
			want: map[string]string{"X-Seen-Method": "GET", "X-Seen-Path": "/", "X-Seen-Remote": "127.0.0.1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, gw.Admin+tc.path, tc.header, nil)
			if r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			want := with(tc.want, "X-Auth-Subject", "demo", "X-Auth-Client-Id", "demo", "X-Auth-Scopes", "api_read")
			for k, v := range want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}

	failures := []struct {
		name, path      string
		header          map[string]string
		status          int
		code, challenge string
	}{
		{name: "no token", path: "/verify", header: map[string]string{"X-Forwarded-Uri": "/a"}, status: 401, code: "unauthorized", challenge: `Bearer realm="authgate"`},
		{name: "unknown token", path: "/verify", header: with(bearer("bm9wZQ"), "X-Forwarded-Uri", "/a"), status: 401, code: "invalid_token",
			challenge: `Bearer realm="authgate", error="invalid_token", error_description="token is not active"`},
		{name: "dot segment", path: "/verify", header: with(bearer(tok), "X-Forwarded-Uri", "/health/%2e%2e/a"), status: 400, code: "invalid_request",
			challenge: `Bearer realm="authgate", error="invalid_request", error_description="path not accepted: dot segment"`},
		{name: "encoded slash, Envoy style", path: "/verify/a%2Fb", header: bearer(tok), status: 400, code: "invalid_request",
			challenge: `Bearer realm="authgate", error="invalid_request", error_description="path not accepted: encoded slash"`},
		{name: "absolute URI", path: "/verify", header: with(bearer(tok), "X-Original-URI", "http://evil.example/a"), status: 400, code: "invalid_request",
			challenge: `Bearer realm="authgate", error="invalid_request", error_description="path not accepted: original URI must start with /"`},
		{name: "no original URI", path: "/verify", header: bearer(tok), status: 400, code: "invalid_request",
			challenge: `Bearer realm="authgate", error="invalid_request", error_description="no original URI: send X-Forwarded-Uri or X-Original-URI, or ask /verify/{path}"`},
		// A proxy passes the client's other headers on: a client must not be
		// able to choose the request that gets decided.
		{name: "Traefik and nginx headers disagree", path: "/verify", header: with(bearer(tok), "X-Forwarded-Uri", "/public", "X-Original-URI", "/admin"),
			status: 400, code: "invalid_request",
			challenge: `Bearer realm="authgate", error="invalid_request", error_description="original request ambiguous: X-Forwarded-Uri and X-Original-Uri disagree"`},
		{name: "methods disagree", path: "/verify", header: with(bearer(tok), "X-Forwarded-Uri", "/a", "X-Forwarded-Method", "GET", "X-Original-Method", "DELETE"),
			status: 400, code: "invalid_request",
			challenge: `Bearer realm="authgate", error="invalid_request", error_description="original request ambiguous: X-Forwarded-Method and X-Original-Method disagree"`},
		{name: "headers on an Envoy-style path", path: "/verify/admin", header: with(bearer(tok), "X-Forwarded-Uri", "/public"),
			status: 400, code: "invalid_request",
			challenge: `Bearer realm="authgate", error="invalid_request", error_description="original request ambiguous: X-Forwarded-* or X-Original-* request headers on an Envoy-style /verify/ path"`},
		{name: "deny with a 2xx status becomes 403", path: "/verify", header: with(bearer(tok), "X-Forwarded-Uri", "/odd/ok-status"), status: 403},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "GET", gw.Admin+tc.path, tc.header, nil)
			if r.Status != tc.status || tc.code != "" && r.ErrorCode(t) != tc.code {
				t.Errorf("%d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
			if got := r.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if r.Header.Get("X-Auth-Subject") != "" {
				t.Errorf("identity on a failure")
			}
		})
	}

	// Go's EscapedPath re-encodes a path holding "{" and loses its %2F: the
	// path decided is read from the request target as the proxy wrote it.
	t.Run("encoded slash next to a brace", func(t *testing.T) {
		for _, c := range []struct{ target, uri string }{
			{"/verify/health%2Fx{", ""}, {"/verify/health%2fx`", ""}, {"/verify/a%5Cb|", ""}, {"/verify/a%252Fb^", ""},
			{"/verify", "/health%2Fx{"}, {"/verify", "/health%2fx{?a=1"},
		} {
			h := bearer(tok)
			if c.uri != "" {
				h = with(h, "X-Forwarded-Uri", c.uri)
			}
			if r := raw(t, gw.Admin, "GET", c.target, h); r.Status != 400 || !strings.Contains(r.Body, "path not accepted") {
				t.Errorf("%s %s: %d %s, want 400", c.target, c.uri, r.Status, r.Body)
			}
		}
	})

	// A proxy passes the client's headers on to /verify: the policy must not
	// see a client's identity headers, nor headers named hop-by-hop.
	t.Run("client identity headers hidden from the policy", func(t *testing.T) {
		r := do(t, "GET", gw.Admin+"/verify", with(bearer(tok), "X-Forwarded-Uri", "/a", "X-Auth-Subject", "admin",
			"X_Auth_Scopes", "admin", "x-auth-client-id", "root", "Connection", "X-Hop", "X-Hop", "1"), nil)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		names := "," + r.Header.Get("X-Seen-Header-Names") + ","
		for _, k := range []string{"x-auth-subject", "x_auth_scopes", "x-auth-client-id", "x-hop"} {
			if strings.Contains(names, ","+k+",") {
				t.Errorf("the policy saw %s (%s)", k, names)
			}
		}
		if !strings.Contains(names, ",x-forwarded-uri,") {
			t.Errorf("a trusted proxy's x-forwarded-uri hidden from the policy: %s", names)
		}
	})

	t.Run("the same header twice", func(t *testing.T) {
		r := raw(t, gw.Admin, "GET", "/verify", with(bearer(tok), "X-Forwarded-Uri", "/admin", "X-Forwarded-uri", "/public"))
		if r.Status != 400 || !strings.Contains(r.Body, "given twice") {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("same values agree", func(t *testing.T) {
		r := do(t, "GET", gw.Admin+"/verify", with(bearer(tok), "X-Forwarded-Uri", "/a", "X-Original-URI", "/a"), nil)
		if r.Status != 200 || r.Header.Get("X-Seen-Path") != "/a" {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})

	t.Run("method taken as is", func(t *testing.T) {
		r := do(t, "GET", gw.Admin+"/verify", with(bearer(tok), "X-Forwarded-Uri", "/a", "X-Forwarded-Method", "get"), nil)
		if r.Status != 200 || r.Header.Get("X-Seen-Method") != "get" {
			t.Errorf("%d %s %v", r.Status, r.Body, r.Header)
		}
	})

	t.Run("public path", func(t *testing.T) {
		r := do(t, "GET", gw.Admin+"/verify", map[string]string{"X-Forwarded-Uri": "/health", "X-Forwarded-Method": "GET"}, nil)
		if r.Status != 200 || r.Header.Get("X-Auth-Subject") != "" {
			t.Errorf("%d %v", r.Status, r.Header)
		}
		if r := do(t, "GET", gw.Admin+"/verify", map[string]string{"X-Forwarded-Uri": "/health", "X-Forwarded-Method": "POST"}, nil); r.Status != 401 {
			t.Errorf("POST /health: %d", r.Status)
		}
	})

	t.Run("untrusted caller: its X-Forwarded-Host/For/Proto are ignored", func(t *testing.T) {
		env := stacktest.StackEnv(i, o)
		env["OPA_AUTHZ_URL"] = o.URL + echoDecision
		gw2 := stacktest.StartGateway(t, env)
		r := do(t, "GET", gw2.Admin+"/verify", with(bearer(tok), "X-Forwarded-Uri", "/a", "X-Forwarded-Host", "app.example",
			"X-Forwarded-Proto", "https", "X-Forwarded-For", "198.51.100.7"), nil)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		for k, v := range map[string]string{"X-Seen-Host": strings.TrimPrefix(gw2.Admin, "http://"), "X-Seen-Scheme": "http", "X-Seen-Remote": "127.0.0.1", "X-Seen-Path": "/a"} {
			if got := r.Header.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
	})
}

// TestVerifyObjectDecisions runs the README's example policy through /verify.
func TestVerifyObjectDecisions(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
	gw := stacktest.StartGateway(t, env)
	reader := i.Token(t, "api_read")

	r := do(t, "GET", gw.Admin+"/verify", with(bearer(reader), "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/items"), nil)
	if r.Status != 200 || r.Header.Get("X-Authz-Scope") != "api_read" || r.Header.Get("X-Auth-Subject") != "demo" {
		t.Errorf("allow: %d %v", r.Status, r.Header)
	}
	r = do(t, "GET", gw.Admin+"/verify", with(bearer(reader), "X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/api/items"), nil)
	if r.Status != 403 || r.ErrorCode(t) != "insufficient_scope" ||
		r.Header.Get("WWW-Authenticate") != `Bearer realm="authgate", error="insufficient_scope", scope="api_write"` {
		t.Errorf("missing scope: %d %v %s", r.Status, r.Header, r.Body)
	}
	r = do(t, "GET", gw.Admin+"/verify", with(bearer(reader), "X-Forwarded-Uri", "/api/internal/x"), nil)
	if r.Status != 404 || r.Body != `{"error":"not_found"}` || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("hidden: %d %v %s", r.Status, r.Header, r.Body)
	}
}

func TestVerifyOPADown(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
	gw := stacktest.StartGateway(t, env)
	tok := i.Token(t, "api_read")
	o.Stop()
	r := do(t, "GET", gw.Admin+"/verify", with(bearer(tok), "X-Forwarded-Uri", "/api/items"), nil)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.ErrorCode(t) != "temporarily_unavailable" {
		t.Errorf("%d %v %s", r.Status, r.Header, r.Body)
	}
}

// TestOPAInputHeaders: OPA_INPUT_HEADERS limits the input's headers to the
// listed ones, and a request with more headers than a policy should read
// gets 431 before OPA is asked.
func TestOPAInputHeaders(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	tok := i.Token(t, "api_read")
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + echoDecision
	env["OPA_INPUT_HEADERS"] = "User-Agent,x-tenant"
	gw := stacktest.StartGateway(t, env)
	r := do(t, "GET", gw.Admin+"/verify/a", with(bearer(tok), "User-Agent", "e2e", "X-Tenant", "acme", "X-Other", "1"), nil)
	if r.Status != 200 || r.Header.Get("X-Seen-Header-Names") != "user-agent,x-tenant" {
		t.Errorf("%d %q", r.Status, r.Header.Get("X-Seen-Header-Names"))
	}

	env["OPA_INPUT_HEADERS"] = ""
	gw = stacktest.StartGateway(t, env)
	h := bearer(tok)
	for n := range 2000 {
		h[fmt.Sprintf("X-Pad-%04d", n)] = "aaaaaaaa"
	}
	for _, base := range []string{gw.Admin + "/verify/a", gw.Traffic + "/sayhello"} {
		u, _ := url.Parse(base)
		r := raw(t, u.Scheme+"://"+u.Host, "GET", u.Path, h)
		if r.Status != 431 || r.ErrorCode(t) != "request_header_fields_too_large" {
			t.Errorf("%s: %d %s", base, r.Status, r.Body)
		}
	}
	if r := do(t, "GET", gw.Admin+"/verify/a", bearer(tok), nil); r.Status != 200 {
		t.Errorf("a usual request: %d %s", r.Status, r.Body)
	}
}
