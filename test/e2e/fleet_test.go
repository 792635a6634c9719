package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/opatest"
	"github.com/authgate/authgate/internal/stacktest"
)

// adminToken is ADMIN_API_TOKEN in the fleet tests.
const adminToken = "admin-api-token-e2e-0123456789abcdef"

// startFleet runs n authgate replicas sharing r, in front of i and o.
func startFleet(t *testing.T, n int, r *stacktest.Redis, i *stacktest.IDP, o *opatest.Server, extra ...string) []*stacktest.Gateway {
	t.Helper()
	var gws []*stacktest.Gateway
	for range n {
		env := stacktest.StackEnv(i, o)
		env["REDIS_URL"], env["FLEET_KEY"] = r.URL, stacktest.FleetKey
		env["ADMIN_API_TOKEN"] = adminToken
		for k := 0; k+1 < len(extra); k += 2 {
			env[extra[k]] = extra[k+1]
		}
		gws = append(gws, stacktest.StartGateway(t, env))
	}
	return gws
}

// revoke posts token to gw's POST /revoke with the admin token auth.
func revoke(t *testing.T, gw *stacktest.Gateway, auth, token string) stacktest.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, gw.Admin+"/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return stacktest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b.String()}
}

// TestFleetSharedHit: a token introspected by one replica is a shared hit
// on another; the Redis calls are counted; /readyz reports Redis and stays
// 200 without it.
func TestFleetSharedHit(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	r := stacktest.StartRedis(t)
	gws := startFleet(t, 2, r, i, o)
	tok := i.Token(t, "read_sayhello")
	for k, gw := range gws {
		if got := stacktest.Get(t, gw.Traffic+"/sayhello", tok); got.Status != 200 {
			t.Fatalf("replica %d: %d %s", k, got.Status, got.Body)
		}
	}
	if n := i.IntrospectCalls(); n != 1 {
		t.Errorf("%d introspections for one token on two replicas, want 1", n)
	}
	m := scrape(t, gws[1])
	if v := m.value("authgate_cache_requests_total", "result=shared_hit"); v != 1 {
		t.Errorf("shared_hit %v on the second replica, want 1", v)
	}
	if v := m.value("authgate_cache_requests_total", "result=shared_coalesced"); v != 0 {
		t.Errorf("shared_coalesced %v, want 0 (present from the start)", v)
	}
	if v := m.value("authgate_redis_requests_total", "op=claim", "result=ok"); v < 1 {
		t.Errorf("authgate_redis_requests_total{op=claim,result=ok} %v", v)
	}
	if v := m.value("authgate_redis_duration_seconds", "op=claim"); v < 1 {
		t.Errorf("authgate_redis_duration_seconds{op=claim} count %v", v)
	}
	if got := stacktest.Get(t, gws[0].Admin+"/readyz", ""); got.Status != 200 || !strings.Contains(got.Body, `"redis":"ok"`) {
		t.Errorf("/readyz %d %s", got.Status, got.Body)
	}
	r.Stop()
	if got := stacktest.Get(t, gws[0].Admin+"/readyz", ""); got.Status != 200 || strings.Contains(got.Body, `"redis":"ok"`) || !strings.Contains(got.Body, `"redis":`) {
		t.Errorf("/readyz with Redis down: %d %s, want 200 naming redis not ok", got.Status, got.Body)
	}
	// Still answered, from L1 and from the IdP.
	if got := stacktest.Get(t, gws[1].Traffic+"/sayhello", tok); got.Status != 200 {
		t.Errorf("cached token with Redis down: %d", got.Status)
	}
	if got := stacktest.Get(t, gws[1].Traffic+"/sayhello", i.Token(t, "read_sayhello")); got.Status != 200 {
		t.Errorf("new token with Redis down: %d", got.Status)
	}
	for _, gw := range gws {
		gw.Stop()
		gw.AssertNoLeaks(t, tok, stacktest.GatewaySecret, adminToken, stacktest.FleetKey)
	}
}

// TestFleetColdTokens: 200 tokens, each sent 5 times at once spread over
// three replicas, make exactly 200 introspections.
func TestFleetColdTokens(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 30*time.Millisecond)
	r := stacktest.StartRedis(t)
	// REDIS_TIMEOUT well above the default: this test counts coalescing,
	// on a shared machine under the race detector, where a 100ms call can
	// time out (each such call then introspects: TestFleetRedisDown and
	// package fleet's tests cover that).
	gws := startFleet(t, 3, r, i, o, "REDIS_TIMEOUT", "2s")
	const tokens, fanout = 200, 5
	toks := make([]string, tokens)
	for k := range toks {
		var err error
		if toks[k], err = i.Issue(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := map[int]int{}
	sem := make(chan struct{}, 20) // tokens in flight at once
	for k, tok := range toks {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var inner sync.WaitGroup
			for f := range fanout {
				inner.Add(1)
				go func() {
					defer inner.Done()
					res, err := stacktest.TryGet(client, gws[(k+f)%3].Traffic+"/sayhello", tok)
					if err != nil || res.Status != 200 {
						mu.Lock()
						failed[res.Status]++
						mu.Unlock()
					}
				}()
			}
			inner.Wait()
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("failed requests by status: %v", failed)
	}
	if n := i.IntrospectCalls(); n != tokens {
		t.Errorf("%d introspections for %d tokens across 3 replicas, want exactly %d", n, tokens, tokens)
		for k, gw := range gws {
			t.Logf("replica %d: %v", k, gw.Logs.Lines("redis call failed: answered without the shared tier"))
			m := scrape(t, gw)
			for _, op := range []string{"claim", "put"} {
				for _, res := range []string{"error", "breaker_open"} {
					if v := m.value("authgate_redis_requests_total", "op="+op, "result="+res); v > 0 {
						t.Logf("replica %d: %s %s: %v", k, op, res, v)
					}
				}
			}
		}
	}
	var shared float64
	for _, gw := range gws {
		m := scrape(t, gw)
		shared += m.value("authgate_cache_requests_total", "result=shared_hit") + m.value("authgate_cache_requests_total", "result=shared_coalesced")
	}
	if shared == 0 {
		t.Error("no shared_hit nor shared_coalesced across the fleet")
	}
}

// TestFleetRevoke: POST /revoke on one replica makes the token 401 on the
// other two within a second; it needs ADMIN_API_TOKEN and answers 200
// whether or not the token was known; without the setting it is 404;
// REVOKE_UPSTREAM revokes at the IdP too.
func TestFleetRevoke(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	r := stacktest.StartRedis(t)
	gws := startFleet(t, 3, r, i, o)
	tok := i.Token(t, "read_sayhello")
	for _, gw := range gws {
		if got := stacktest.Get(t, gw.Traffic+"/sayhello", tok); got.Status != 200 {
			t.Fatalf("before: %d", got.Status)
		}
	}
	for _, auth := range []string{"", "wrong", adminToken + "x"} {
		if got := revoke(t, gws[0], auth, tok); got.Status != 401 {
			t.Errorf("revoke with auth %q: %d %s", auth, got.Status, got.Body)
		}
	}
	if got := stacktest.Get(t, gws[1].Traffic+"/sayhello", tok); got.Status != 200 {
		t.Fatalf("a refused revocation revoked: %d", got.Status)
	}
	start := time.Now()
	got := revoke(t, gws[0], adminToken, tok)
	if got.Status != 200 || strings.TrimSpace(got.Body) != `{"scope":"fleet","upstream":"off"}` {
		t.Fatalf("revoke: %d %s", got.Status, got.Body)
	}
	for k, gw := range gws {
		stacktest.Eventually(t, time.Second-time.Since(start), "revoked on every replica within 1s", func() bool {
			return stacktest.Get(t, gw.Traffic+"/sayhello", tok).Status == 401
		})
		t.Logf("replica %d: 401 after %s", k, time.Since(start))
	}
	if got := revoke(t, gws[1], adminToken, "never-seen-token-0123456789"); got.Status != 200 {
		t.Errorf("unknown token: %d, want 200 (no oracle)", got.Status)
	}
	if got := revoke(t, gws[1], adminToken, ""); got.Status != 400 {
		t.Errorf("no token: %d, want 400", got.Status)
	}
	m := scrape(t, gws[1])
	if v := m.value("authgate_revocations_total", "source=pubsub"); v != 1 {
		t.Errorf("authgate_revocations_total{source=pubsub} %v on a replica told, want 1", v)
	}
	if v := scrape(t, gws[0]).value("authgate_revocations_total", "source=api"); v != 1 {
		t.Errorf("authgate_revocations_total{source=api} %v, want 1", v)
	}

	t.Run("without ADMIN_API_TOKEN", func(t *testing.T) {
		gw := stacktest.StartGateway(t, stacktest.StackEnv(i, o))
		if got := revoke(t, gw, adminToken, tok); got.Status != 404 {
			t.Errorf("%d, want 404", got.Status)
		}
	})
	t.Run("without Redis", func(t *testing.T) {
		env := stacktest.StackEnv(i, o)
		env["ADMIN_API_TOKEN"] = adminToken
		gw := stacktest.StartGateway(t, env)
		tok := i.Token(t, "read_sayhello")
		stacktest.Get(t, gw.Traffic+"/sayhello", tok)
		if got := revoke(t, gw, adminToken, tok); got.Status != 200 || !strings.Contains(got.Body, `"scope":"local"`) {
			t.Errorf("%d %s, want 200 saying local", got.Status, got.Body)
		}
		if got := stacktest.Get(t, gw.Traffic+"/sayhello", tok); got.Status != 401 {
			t.Errorf("after a local revocation: %d", got.Status)
		}
	})
	t.Run("REVOKE_UPSTREAM", func(t *testing.T) {
		env := stacktest.StackEnv(i, o)
		env["ADMIN_API_TOKEN"], env["REVOKE_UPSTREAM"] = adminToken, "true"
		gw := stacktest.StartGateway(t, env)
		// devidp lets a client revoke only its own tokens (RFC 7009 2.1).
		own, err := i.Issue(stacktest.GatewayClient, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got := revoke(t, gw, adminToken, own); got.Status != 200 || !strings.Contains(got.Body, `"upstream":"revoked"`) {
			t.Fatalf("%d %s", got.Status, got.Body)
		}
		if active(t, i, own) {
			t.Error("the IdP still says active")
		}
		gw.Stop()
		gw.AssertNoLeaks(t, own, adminToken, stacktest.GatewaySecret)
	})
}

// active asks i's introspection endpoint about token.
func active(t *testing.T, i *stacktest.IDP, token string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, i.Issuer+"/v1/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(stacktest.GatewayClient, stacktest.GatewaySecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return strings.Contains(b.String(), `"active":true`)
}

// TestFleetHybrid: in TOKEN_VALIDATION=hybrid the shared tier serves what
// is introspected (an opaque token, a JWT on INTROSPECT_PATHS: one
// introspection for the fleet, its validation kept), while a JWT verified
// locally never asks Redis; a revocation on one replica still reaches the
// other's local JWT path within a second.
func TestFleetHybrid(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	r := stacktest.StartRedis(t)
	gws := startFleet(t, 2, r, i, o, "TOKEN_VALIDATION", "hybrid", "OKTA_AUDIENCE", "api://default", "INTROSPECT_PATHS", "GET /sayhello")
	claims := func() (n float64) {
		for _, gw := range gws {
			n += max(0, scrape(t, gw).value("authgate_redis_requests_total", "op=claim", "result=ok"))
		}
		return n
	}

	opaque := i.Token(t, "read_sayhello")
	for k, gw := range gws {
		if got := stacktest.Get(t, gw.Traffic+"/sayhello", opaque); got.Status != 200 {
			t.Fatalf("opaque on replica %d: %d %s", k, got.Status, got.Body)
		}
	}
	if n := i.IntrospectCalls(); n != 1 {
		t.Errorf("opaque token on two replicas: %d introspections, want 1", n)
	}
	if v := lastAccess(t, gws[1])["validation"]; v != "introspection" {
		t.Errorf("shared answer's access log validation %v, want introspection", v)
	}
	if v := scrape(t, gws[1]).value("authgate_cache_requests_total", "result=shared_hit"); v != 1 {
		t.Errorf("shared_hit %v on the second replica, want 1", v)
	}

	jwt, _ := i.IssueJWT(stacktest.DemoClient, []string{"read_sayhello", "read_saysecret"}, time.Hour)
	before := claims()
	for k, gw := range gws {
		// /saysecret: not an introspect path; the demo policy denies it
		// once the token is accepted.
		if got := stacktest.Get(t, gw.Traffic+"/saysecret", jwt); got.Status != 403 {
			t.Fatalf("JWT on replica %d: %d %s", k, got.Status, got.Body)
		}
	}
	if n := claims(); n != before {
		t.Errorf("a JWT verified locally asked Redis (%v claims, want %v)", n, before)
	}
	// On an introspect path the JWT is introspected: once for the fleet.
	for k, gw := range gws {
		if got := stacktest.Get(t, gw.Traffic+"/sayhello", jwt); got.Status != 200 {
			t.Fatalf("JWT on an introspect path, replica %d: %d %s", k, got.Status, got.Body)
		}
	}
	if n := i.IntrospectCalls(); n != 2 {
		t.Errorf("%d introspections in all, want 2", n)
	}

	start := time.Now()
	if got := revoke(t, gws[0], adminToken, jwt); got.Status != 200 || !strings.Contains(got.Body, `"scope":"fleet"`) {
		t.Fatalf("revoke: %d %s", got.Status, got.Body)
	}
	for k, gw := range gws {
		for _, path := range []string{"/saysecret", "/sayhello"} {
			stacktest.Eventually(t, time.Second-time.Since(start), "a revoked JWT refused on every replica, on every path, within 1s", func() bool {
				return stacktest.Get(t, gw.Traffic+path, jwt).Status == 401
			})
			t.Logf("replica %d %s: 401 after %s", k, path, time.Since(start))
		}
	}
	for _, gw := range gws {
		gw.Stop()
		gw.AssertNoLeaks(t, jwt, opaque, adminToken, stacktest.GatewaySecret, stacktest.FleetKey)
	}
}

// A revocation on one replica ends the token's open event stream and
// WebSocket on another within a second (the fleet's revocation message).
func TestFleetRevokeEndsStreams(t *testing.T) {
	i := stacktest.StartIDP(t, 0)
	r := stacktest.StartRedis(t)
	u := startLiveUpstream(t)
	o := startModesOPA(t)
	gws := startFleet(t, 2, r, i, o, "OPA_AUTHZ_URL", o.URL+gatewayDecision, "UPSTREAM_URL", u.srv.URL)
	tok := i.Token(t, "api_read")
	sseDone, wsDone := openLive(t, gws[1].Traffic, tok, u)
	start := time.Now()
	if got := revoke(t, gws[0], adminToken, tok); got.Status != 200 || !strings.Contains(got.Body, `"scope":"fleet"`) {
		t.Fatalf("revoke: %d %s", got.Status, got.Body)
	}
	within(t, "event stream on the other replica ended", sseDone, start, time.Second)
	within(t, "WebSocket on the other replica closed", wsDone, start, time.Second)
	endedBy(t, gws[1], "revoked")
}
