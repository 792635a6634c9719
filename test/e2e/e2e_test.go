// Package e2e runs authgate end to end: the real OPA binary with
// opa-policies/, the development authorization server on a loopback port,
// and authgate itself through app.Run.
package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/opatest"
)

func startOPA(t *testing.T) *opatest.Server {
	return opatest.Start(t, opatest.RepoRoot(t)+"/opa-policies")
}

func TestRequestPath(t *testing.T) {
	o := startOPA(t)
	i := startIDP(t, 0)
	gw := startGateway(t, stackEnv(i, o))
	hello := i.token(t, "read_sayhello")
	secretOnly := i.token(t, "read_saysecret")

	cases := []struct {
		name, path, token string
		status            int
		body, code        string
		challenge         string
	}{
		{name: "allow", path: "/sayhello", token: hello, status: 200, body: `{"message":"Hello there!!"}`},
		{name: "deny by policy", path: "/saysecret", token: hello, status: 403, code: "access_denied"},
		{name: "missing scope", path: "/sayhello", token: secretOnly, status: 403, code: "access_denied"},
		{name: "no token", path: "/sayhello", status: 401, code: "unauthorized", challenge: `Bearer realm="authgate"`},
		{name: "unknown token", path: "/sayhello", token: "bm90LWEtcmVhbC10b2tlbg", status: 401, code: "invalid_token",
			challenge: `Bearer realm="authgate", error="invalid_token", error_description="token is not active"`},
		{name: "malformed token", path: "/sayhello", token: "a,b", status: 401, code: "invalid_token",
			challenge: `Bearer realm="authgate", error="invalid_token", error_description="malformed token"`},
		{name: "unknown route", path: "/nope", token: hello, status: 404, code: "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, gw.traffic+tc.path, tc.token)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (body %s)", r.status, tc.status, r.body)
			}
			if tc.body != "" && r.body != tc.body {
				t.Errorf("body %s, want %s", r.body, tc.body)
			}
			if tc.code != "" {
				if got := r.errorCode(t); got != tc.code {
					t.Errorf("error %q, want %q", got, tc.code)
				}
			}
			if got := r.header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
		})
	}

	t.Run("health", func(t *testing.T) {
		if r := get(t, gw.admin+"/healthz", ""); r.status != 200 {
			t.Errorf("/healthz: %d", r.status)
		}
		r := get(t, gw.admin+"/readyz", "")
		if r.status != 200 || strings.TrimSpace(r.body) != `{"idp":"ok","opa":"ok"}` {
			t.Errorf("/readyz: %d %s", r.status, r.body)
		}
	})

	t.Run("admin paths are not on the traffic listener", func(t *testing.T) {
		if r := get(t, gw.traffic+"/healthz", ""); r.status != 404 {
			t.Errorf("traffic /healthz: %d", r.status)
		}
	})

	if err := gw.stop(); err != nil {
		t.Fatal(err)
	}
	gw.assertNoLeaks(t, hello, secretOnly, gatewaySecret, demoSecret)
}

func TestClientSecretPost(t *testing.T) {
	o := startOPA(t)
	i := startIDP(t, 0)
	env := stackEnv(i, o)
	env["OKTA_AUTH_METHOD"] = "client_secret_post"
	gw := startGateway(t, env)
	if r := get(t, gw.traffic+"/sayhello", i.token(t, "read_sayhello")); r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
}

func TestCoalescing(t *testing.T) {
	o := startOPA(t)
	i := startIDP(t, 200*time.Millisecond) // an Okta-like round trip keeps the misses overlapping
	gw := startGateway(t, stackEnv(i, o))
	tok := i.token(t, "read_sayhello")
	before := i.IntrospectCalls()

	const n = 100
	var wg sync.WaitGroup
	statuses := make([]int, n)
	start := make(chan struct{})
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[k] = get(t, gw.traffic+"/sayhello", tok).status
		}()
	}
	close(start)
	wg.Wait()
	for k, s := range statuses {
		if s != 200 {
			t.Fatalf("request %d: status %d", k, s)
		}
	}
	if got := i.IntrospectCalls() - before; got != 1 {
		t.Errorf("%d concurrent first requests made %d introspections, want 1", n, got)
	}
}

func TestRevokedTokenRejectedAfterCacheTTL(t *testing.T) {
	o := startOPA(t)
	i := startIDP(t, 0)
	env := stackEnv(i, o)
	env["CACHE_TTL"] = "300ms"
	gw := startGateway(t, env)
	tok := i.token(t, "read_sayhello")
	if r := get(t, gw.traffic+"/sayhello", tok); r.status != 200 {
		t.Fatalf("before revocation: %d", r.status)
	}
	i.Revoke(tok)
	eventually(t, 10*time.Second, "revoked token rejected once its entry ends", func() bool {
		return get(t, gw.traffic+"/sayhello", tok).status == 401
	})
}

func TestEntryLifetimeBoundedByExp(t *testing.T) {
	o := startOPA(t)
	i := startIDP(t, 0)
	gw := startGateway(t, stackEnv(i, o)) // CACHE_TTL stays 5m
	tok, err := i.Issue(demoClient, []string{"read_sayhello"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := get(t, gw.traffic+"/sayhello", tok); r.status != 200 {
		t.Fatalf("fresh token: %d", r.status)
	}
	calls := i.IntrospectCalls()
	eventually(t, 10*time.Second, "expired token rejected although CACHE_TTL is 5m", func() bool {
		return get(t, gw.traffic+"/sayhello", tok).status == 401
	})
	if i.IntrospectCalls() <= calls {
		t.Errorf("token past exp was not introspected again")
	}
}

func TestIdPDown(t *testing.T) {
	o := startOPA(t)
	i := startIDP(t, 0)
	env := stackEnv(i, o)
	env["OKTA_BREAKER_FAILURES"] = "2"
	env["OKTA_BREAKER_OPEN_TIMEOUT"] = "1m"
	gw := startGateway(t, env)
	cached := i.token(t, "read_sayhello")
	fresh := i.token(t, "read_sayhello")
	if r := get(t, gw.traffic+"/sayhello", cached); r.status != 200 {
		t.Fatalf("before: %d", r.status)
	}
	i.srv.Close()

	for range 3 { // enough failures to open the breaker
		r := get(t, gw.traffic+"/sayhello", fresh)
		if r.status != 503 || r.header.Get("Retry-After") == "" || r.errorCode(t) != "temporarily_unavailable" {
			t.Fatalf("IdP down: %d Retry-After=%q %s", r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	if r := get(t, gw.traffic+"/sayhello", cached); r.status != 200 {
		t.Errorf("cached token while the IdP is down: %d", r.status)
	}
	r := get(t, gw.admin+"/readyz", "")
	if r.status != 200 || !strings.Contains(r.body, `"idp":"breaker open"`) {
		t.Errorf("/readyz with the IdP breaker open: %d %s", r.status, r.body)
	}
	gw.assertNoLeaks(t, cached, fresh, gatewaySecret)
}

func TestOPADown(t *testing.T) {
	o := startOPA(t)
	i := startIDP(t, 0)
	gw := startGateway(t, stackEnv(i, o))
	tok := i.token(t, "read_sayhello")
	if r := get(t, gw.traffic+"/sayhello", tok); r.status != 200 {
		t.Fatalf("before: %d", r.status)
	}
	o.Stop()
	r := get(t, gw.traffic+"/sayhello", tok)
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("OPA down: %d Retry-After=%q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := get(t, gw.admin+"/readyz", ""); r.status != 503 {
		t.Errorf("/readyz with OPA down: %d %s", r.status, r.body)
	}
	o.Restart(t)
	eventually(t, 10*time.Second, "allowed again after OPA restarts", func() bool {
		return get(t, gw.traffic+"/sayhello", tok).status == 200
	})
}

// TestOtherRFC7662Server puts authgate in front of an introspection
// endpoint shaped unlike Okta's: another path, aud as an array, extra members.
func TestOtherRFC7662Server(t *testing.T) {
	o := startOPA(t)
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/as/token/introspection" || r.ParseForm() != nil {
			http.NotFound(w, r)
			return
		}
		if id, secret, ok := r.BasicAuth(); !ok || id != "gw" || secret != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.PostForm.Get("token") != "good-token" {
			w.Write([]byte(`{"active":false}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"active": true, "scope": "openid read_sayhello", "client_id": "svc", "sub": "user-42",
			"aud": []string{"https://api.example", "authgate"}, "exp": time.Now().Add(time.Hour).Unix(),
			"acr": "2", "cnf": map[string]string{"x5t#S256": "abc"}, "groups": []string{"ops"},
		})
	}))
	t.Cleanup(as.Close)
	env := map[string]string{
		"OKTA_ISSUER":         as.URL + "/as",
		"OKTA_INTROSPECT_URL": as.URL + "/as/token/introspection",
		"OKTA_CLIENT_ID":      "gw",
		"OKTA_CLIENT_SECRET":  "s3cret",
		"OKTA_AUDIENCE":       "authgate",
		"OPA_AUTHZ_URL":       o.URL + decisionPath,
	}
	gw := startGateway(t, env)
	if r := get(t, gw.traffic+"/sayhello", "good-token"); r.status != 200 {
		t.Errorf("good token: %d %s", r.status, r.body)
	}
	if r := get(t, gw.traffic+"/sayhello", "other-token"); r.status != 401 {
		t.Errorf("inactive token: %d %s", r.status, r.body)
	}

	env["OKTA_AUDIENCE"] = "someone-else"
	gw2 := startGateway(t, env)
	if r := get(t, gw2.traffic+"/sayhello", "good-token"); r.status != 401 || !strings.Contains(r.body, "audience") {
		t.Errorf("wrong audience: %d %s", r.status, r.body)
	}
}
