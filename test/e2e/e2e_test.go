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

	"github.com/authgate/authgate/internal/stacktest"
)

func TestRequestPath(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	gw := stacktest.StartGateway(t, stacktest.StackEnv(i, o))
	hello := i.Token(t, "read_sayhello")
	secretOnly := i.Token(t, "read_saysecret")

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
			r := stacktest.Get(t, gw.Traffic+tc.path, tc.token)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d (body %s)", r.Status, tc.status, r.Body)
			}
			if tc.body != "" && r.Body != tc.body {
				t.Errorf("body %s, want %s", r.Body, tc.body)
			}
			if tc.code != "" {
				if got := r.ErrorCode(t); got != tc.code {
					t.Errorf("error %q, want %q", got, tc.code)
				}
			}
			if got := r.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
		})
	}

	t.Run("health", func(t *testing.T) {
		if r := stacktest.Get(t, gw.Admin+"/healthz", ""); r.Status != 200 {
			t.Errorf("/healthz: %d", r.Status)
		}
		r := stacktest.Get(t, gw.Admin+"/readyz", "")
		if r.Status != 200 || strings.TrimSpace(r.Body) != `{"idp":"ok","opa":"ok"}` {
			t.Errorf("/readyz: %d %s", r.Status, r.Body)
		}
	})

	t.Run("admin paths are not on the traffic listener", func(t *testing.T) {
		if r := stacktest.Get(t, gw.Traffic+"/healthz", ""); r.Status != 404 {
			t.Errorf("traffic /healthz: %d", r.Status)
		}
	})

	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	gw.AssertNoLeaks(t, hello, secretOnly, stacktest.GatewaySecret, stacktest.DemoSecret)
}

func TestClientSecretPost(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	env := stacktest.StackEnv(i, o)
	env["OKTA_AUTH_METHOD"] = "client_secret_post"
	gw := stacktest.StartGateway(t, env)
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", i.Token(t, "read_sayhello")); r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
}

func TestCoalescing(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 200*time.Millisecond) // an Okta-like round trip keeps the misses overlapping
	gw := stacktest.StartGateway(t, stacktest.StackEnv(i, o))
	tok := i.Token(t, "read_sayhello")
	before := i.IntrospectCalls()

	const n = 100
	allAtOnce(t, n, gw.Traffic+"/sayhello", tok)
	if got := i.IntrospectCalls() - before; got != 1 {
		t.Errorf("%d concurrent first requests made %d introspections, want 1", n, got)
	}
}

func TestRevokedTokenRejectedAfterCacheTTL(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	env := stacktest.StackEnv(i, o)
	env["CACHE_TTL"] = "300ms"
	gw := stacktest.StartGateway(t, env)
	tok := i.Token(t, "read_sayhello")
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", tok); r.Status != 200 {
		t.Fatalf("before revocation: %d", r.Status)
	}
	i.Revoke(tok)
	stacktest.Eventually(t, 10*time.Second, "revoked token rejected once its entry ends", func() bool {
		return stacktest.Get(t, gw.Traffic+"/sayhello", tok).Status == 401
	})
}

func TestEntryLifetimeBoundedByExp(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	gw := stacktest.StartGateway(t, stacktest.StackEnv(i, o)) // CACHE_TTL stays 5m
	tok, err := i.Issue(stacktest.DemoClient, []string{"read_sayhello"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", tok); r.Status != 200 {
		t.Fatalf("fresh token: %d", r.Status)
	}
	calls := i.IntrospectCalls()
	stacktest.Eventually(t, 10*time.Second, "expired token rejected although CACHE_TTL is 5m", func() bool {
		return stacktest.Get(t, gw.Traffic+"/sayhello", tok).Status == 401
	})
	if i.IntrospectCalls() <= calls {
		t.Errorf("token past exp was not introspected again")
	}
}

func TestIdPDown(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	env := stacktest.StackEnv(i, o)
	env["OKTA_BREAKER_FAILURES"] = "2"
	env["OKTA_BREAKER_OPEN_TIMEOUT"] = "1m"
	gw := stacktest.StartGateway(t, env)
	cached := i.Token(t, "read_sayhello")
	fresh := i.Token(t, "read_sayhello")
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", cached); r.Status != 200 {
		t.Fatalf("before: %d", r.Status)
	}
	i.Srv.Close()

	for range 3 { // enough failures to open the breaker
		r := stacktest.Get(t, gw.Traffic+"/sayhello", fresh)
		if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.ErrorCode(t) != "temporarily_unavailable" {
			t.Fatalf("IdP down: %d Retry-After=%q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
		}
	}
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", cached); r.Status != 200 {
		t.Errorf("cached token while the IdP is down: %d", r.Status)
	}
	r := stacktest.Get(t, gw.Admin+"/readyz", "")
	if r.Status != 200 || !strings.Contains(r.Body, `"idp":"breaker open"`) {
		t.Errorf("/readyz with the IdP breaker open: %d %s", r.Status, r.Body)
	}
	gw.AssertNoLeaks(t, cached, fresh, stacktest.GatewaySecret)
}

func TestOPADown(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	gw := stacktest.StartGateway(t, stacktest.StackEnv(i, o))
	tok := i.Token(t, "read_sayhello")
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", tok); r.Status != 200 {
		t.Fatalf("before: %d", r.Status)
	}
	o.Stop()
	r := stacktest.Get(t, gw.Traffic+"/sayhello", tok)
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("OPA down: %d Retry-After=%q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); r.Status != 503 {
		t.Errorf("/readyz with OPA down: %d %s", r.Status, r.Body)
	}
	o.Restart(t)
	stacktest.Eventually(t, 10*time.Second, "allowed again after OPA restarts", func() bool {
		return stacktest.Get(t, gw.Traffic+"/sayhello", tok).Status == 200
	})
}

// TestOtherRFC7662Server puts authgate in front of an introspection
// endpoint shaped unlike Okta's: another path, aud as an array, extra members.
func TestOtherRFC7662Server(t *testing.T) {
	o := stacktest.StartOPA(t)
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
		answer := map[string]any{
			"active": true, "scope": "openid read_sayhello", "client_id": "svc", "sub": "user-42",
			"aud": []string{"https://api.example", "authgate"}, "exp": time.Now().Add(time.Hour).Unix(),
			"acr": "2", "ext": map[string]string{"x": "abc"}, "groups": []string{"ops"},
		}
		switch r.PostForm.Get("token") {
		case "good-token":
		case "cert-bound-token":
			// RFC 8705: usable only with its certificate, which no trusted
			// proxy forwards here.
			answer["cnf"] = map[string]string{"x5t#S256": "BimEMugGayniIjvMI6qVBLVq5Qj6vzQ1UIhpucMZDiI"}
		default:
			w.Write([]byte(`{"active":false}`))
			return
		}
		json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(as.Close)
	env := map[string]string{
		"OKTA_ISSUER":         as.URL + "/as",
		"OKTA_INTROSPECT_URL": as.URL + "/as/token/introspection",
		"OKTA_CLIENT_ID":      "gw",
		"OKTA_CLIENT_SECRET":  "s3cret",
		"OKTA_AUDIENCE":       "authgate",
		"OPA_AUTHZ_URL":       o.URL + stacktest.DecisionPath,
	}
	gw := stacktest.StartGateway(t, env)
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", "good-token"); r.Status != 200 {
		t.Errorf("good token: %d %s", r.Status, r.Body)
	}
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", "other-token"); r.Status != 401 {
		t.Errorf("inactive token: %d %s", r.Status, r.Body)
	}
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", "cert-bound-token"); r.Status != 401 || !strings.Contains(r.Body, "certificate") {
		t.Errorf("certificate-bound token without its certificate: %d %s", r.Status, r.Body)
	}

	env["OKTA_AUDIENCE"] = "someone-else"
	gw2 := stacktest.StartGateway(t, env)
	if r := stacktest.Get(t, gw2.Traffic+"/sayhello", "good-token"); r.Status != 401 || !strings.Contains(r.Body, "audience") {
		t.Errorf("wrong audience: %d %s", r.Status, r.Body)
	}
}

// allAtOnce sends n GETs with token at the same moment and fails unless
// every one is allowed.
func allAtOnce(t *testing.T, n int, url, token string) {
	t.Helper()
	var wg sync.WaitGroup
	statuses := make([]int, n)
	start := make(chan struct{})
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[k] = stacktest.Get(t, url, token).Status
		}()
	}
	close(start)
	wg.Wait()
	for k, s := range statuses {
		if s != 200 {
			t.Fatalf("request %d of %d sent at once: status %d", k, n, s)
		}
	}
}
