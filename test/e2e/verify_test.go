package e2e

import (
	"strings"
	"testing"
)

// TestVerify calls the forward-auth endpoint as Traefik, nginx and Envoy
// do, with a policy that echoes what it saw back into the 200's headers.
func TestVerify(t *testing.T) {
	o := startModesOPA(t)
	i := startIDP(t, 0)
	env := stackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + echoDecision
	env["TRUSTED_PROXIES"] = "127.0.0.1/32"
	env["PUBLIC_PATHS"] = "GET /health"
	gw := startGateway(t, env)
	tok := i.token(t, "api_read")
	adminHost := strings.TrimPrefix(gw.admin, "http://")

	cases := []struct {
		name, method, path string
		header             map[string]string
		want               map[string]string // response headers
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
			r := do(t, tc.method, gw.admin+tc.path, tc.header, nil)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			want := with(tc.want, "X-Auth-Subject", "demo", "X-Auth-Client-Id", "demo", "X-Auth-Scopes", "api_read")
			for k, v := range want {
				if got := r.header.Get(k); got != v {
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
			r := do(t, "GET", gw.admin+tc.path, tc.header, nil)
			if r.status != tc.status || tc.code != "" && r.errorCode(t) != tc.code {
				t.Errorf("%d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if got := r.header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if r.header.Get("X-Auth-Subject") != "" {
				t.Errorf("identity on a failure")
			}
		})
	}

	t.Run("the same header twice", func(t *testing.T) {
		r := raw(t, gw.admin, "GET", "/verify", with(bearer(tok), "X-Forwarded-Uri", "/admin", "X-Forwarded-uri", "/public"))
		if r.status != 400 || !strings.Contains(r.body, "given twice") {
			t.Errorf("%d %s", r.status, r.body)
		}
	})

	t.Run("same values agree", func(t *testing.T) {
		r := do(t, "GET", gw.admin+"/verify", with(bearer(tok), "X-Forwarded-Uri", "/a", "X-Original-URI", "/a"), nil)
		if r.status != 200 || r.header.Get("X-Seen-Path") != "/a" {
			t.Errorf("%d %s", r.status, r.body)
		}
	})

	t.Run("method taken as is", func(t *testing.T) {
		r := do(t, "GET", gw.admin+"/verify", with(bearer(tok), "X-Forwarded-Uri", "/a", "X-Forwarded-Method", "get"), nil)
		if r.status != 200 || r.header.Get("X-Seen-Method") != "get" {
			t.Errorf("%d %s %v", r.status, r.body, r.header)
		}
	})

	t.Run("public path", func(t *testing.T) {
		r := do(t, "GET", gw.admin+"/verify", map[string]string{"X-Forwarded-Uri": "/health", "X-Forwarded-Method": "GET"}, nil)
		if r.status != 200 || r.header.Get("X-Auth-Subject") != "" {
			t.Errorf("%d %v", r.status, r.header)
		}
		if r := do(t, "GET", gw.admin+"/verify", map[string]string{"X-Forwarded-Uri": "/health", "X-Forwarded-Method": "POST"}, nil); r.status != 401 {
			t.Errorf("POST /health: %d", r.status)
		}
	})

	t.Run("untrusted caller: its X-Forwarded-Host/For/Proto are ignored", func(t *testing.T) {
		env := stackEnv(i, o)
		env["OPA_AUTHZ_URL"] = o.URL + echoDecision
		gw2 := startGateway(t, env)
		r := do(t, "GET", gw2.admin+"/verify", with(bearer(tok), "X-Forwarded-Uri", "/a", "X-Forwarded-Host", "app.example",
			"X-Forwarded-Proto", "https", "X-Forwarded-For", "198.51.100.7"), nil)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		for k, v := range map[string]string{"X-Seen-Host": strings.TrimPrefix(gw2.admin, "http://"), "X-Seen-Scheme": "http", "X-Seen-Remote": "127.0.0.1", "X-Seen-Path": "/a"} {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s: %q, want %q", k, got, v)
			}
		}
	})
}

// TestVerifyObjectDecisions runs the README's example policy through /verify.
func TestVerifyObjectDecisions(t *testing.T) {
	o := startModesOPA(t)
	i := startIDP(t, 0)
	env := stackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
	gw := startGateway(t, env)
	reader := i.token(t, "api_read")

	r := do(t, "GET", gw.admin+"/verify", with(bearer(reader), "X-Forwarded-Method", "GET", "X-Forwarded-Uri", "/api/items"), nil)
	if r.status != 200 || r.header.Get("X-Authz-Scope") != "api_read" || r.header.Get("X-Auth-Subject") != "demo" {
		t.Errorf("allow: %d %v", r.status, r.header)
	}
	r = do(t, "GET", gw.admin+"/verify", with(bearer(reader), "X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/api/items"), nil)
	if r.status != 403 || r.errorCode(t) != "insufficient_scope" ||
		r.header.Get("WWW-Authenticate") != `Bearer realm="authgate", error="insufficient_scope", scope="api_write"` {
		t.Errorf("missing scope: %d %v %s", r.status, r.header, r.body)
	}
	r = do(t, "GET", gw.admin+"/verify", with(bearer(reader), "X-Forwarded-Uri", "/api/internal/x"), nil)
	if r.status != 404 || r.body != `{"error":"not_found"}` || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("hidden: %d %v %s", r.status, r.header, r.body)
	}
}

func TestVerifyOPADown(t *testing.T) {
	o := startModesOPA(t)
	i := startIDP(t, 0)
	env := stackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
	gw := startGateway(t, env)
	tok := i.token(t, "api_read")
	o.Stop()
	r := do(t, "GET", gw.admin+"/verify", with(bearer(tok), "X-Forwarded-Uri", "/api/items"), nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" || r.errorCode(t) != "temporarily_unavailable" {
		t.Errorf("%d %v %s", r.status, r.header, r.body)
	}
}
