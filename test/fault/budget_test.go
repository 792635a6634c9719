package fault_test

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
)

// TestIntrospectionBudget (OKTA_MAX_RPS): past the cap, unknown tokens get
// 503 with Retry-After and never reach the server; cached tokens keep
// working; the refusals do not open the breaker.
func TestIntrospectionBudget(t *testing.T) {
	o := startOPA(t)
	idp := newStandIn(t, introspection)
	gw := stacktest.StartGateway(t, env(idp.srv.URL, o.URL, "OKTA_MAX_RPS", "2", "OKTA_BREAKER_FAILURES", "2"))
	cached := freshToken(true)
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", cached), want{status: 200})

	var allowed, refused int
	start := time.Now()
	for range 20 {
		r := stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true))
		switch r.Status {
		case 200:
			allowed++
		default:
			check(t, r, want{status: 503, code: "temporarily_unavailable", retryAfter: "1-1"})
			if !strings.Contains(r.Body, "budget") {
				t.Errorf("body %s does not say the budget is spent", r.Body)
			}
			refused++
		}
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", cached), want{status: 200})
	}
	// At most the burst (2, one spent on the cached token) plus what
	// refilled meanwhile.
	if limit := 1 + int(2*time.Since(start).Seconds()); allowed > limit || refused == 0 {
		t.Errorf("%d refused, %d allowed in %s: the cap of 2/s did not hold", refused, allowed, time.Since(start))
	}
	if got := idp.calls.Load(); got != int64(1+allowed) {
		t.Errorf("%d introspections, want %d: refused tokens must not reach the server", got, 1+allowed)
	}
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); !strings.Contains(r.Body, `"idp":"ok"`) {
		t.Errorf("own budget refusals opened the breaker: %s", r.Body)
	}
	if m, line := stacktest.Get(t, gw.Metrics+"/metrics", "").Body, `authgate_introspection_budget_rejections_total{scope="global"} `+strconv.Itoa(refused); !strings.Contains(m, "\n"+line+"\n") {
		t.Errorf("/metrics lacks %q", line)
	}
	stacktest.Eventually(t, 3*time.Second, "an unknown token is introspected once the budget refills", func() bool {
		return stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)).Status == 200
	})
}

// TestStaleIfError (CACHE_STALE_IF_ERROR): with the IdP failing, a token
// whose entry ended by CACHE_TTL is served for the grace period, and logged;
// an unknown token still gets 503; without the setting the cached token too.
func TestStaleIfError(t *testing.T) {
	o := startOPA(t)
	for _, grace := range []string{"1m", ""} {
		t.Run("CACHE_STALE_IF_ERROR="+grace, func(t *testing.T) {
			idp := newStandIn(t, introspection)
			gw := stacktest.StartGateway(t, env(idp.srv.URL, o.URL, "CACHE_TTL", "200ms", "CACHE_STALE_IF_ERROR", grace))
			tok := freshToken(true)
			check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 200})
			idp.set(status(503, ``))
			// Polls until the entry ends and the token is introspected again.
			var last stacktest.Response
			stacktest.Eventually(t, 3*time.Second, "the entry ends by CACHE_TTL", func() bool {
				last = stacktest.Get(t, gw.Traffic+"/sayhello", tok)
				return idp.calls.Load() > 1
			})
			check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), want{status: 503, code: "temporarily_unavailable", retryAfter: "*"})
			if grace == "" {
				check(t, last, want{status: 503, code: "temporarily_unavailable", retryAfter: "*"})
				if strings.Contains(gw.Logs.String(), "stale") {
					t.Errorf("stale logged with the setting off:\n%s", gw.Logs.String())
				}
				return
			}
			check(t, last, want{status: 200})
			check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 200})
			check(t, stacktest.Get(t, gw.Traffic+"/saysecret", tok), want{status: 403, code: "access_denied"})
			if len(gw.Logs.Lines("served stale introspection answers: the authorization server is unavailable (CACHE_STALE_IF_ERROR)")) == 0 {
				t.Errorf("stale answers not logged:\n%s", gw.Logs.String())
			}
			// A definite "inactive" from the recovered server ends it at once.
			idp.set(status(200, `{"active":false}`))
			check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 401, code: "invalid_token"})
		})
	}
}

// fromAddr is an HTTP client whose connections leave from the loopback
// address ip, so that authgate sees another client.
func fromAddr(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func getFrom(t *testing.T, c *http.Client, url, token string) stacktest.Response {
	t.Helper()
	r, err := stacktest.TryGet(c, url, token)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestIntrospectionBudgetPerClient (OKTA_MAX_RPS_PER_CLIENT): one client
// flooding garbage tokens is refused past its own limit with 503 and
// Retry-After, its cached token still works, and another client's new
// token is introspected and allowed; the refusals are counted by scope and
// do not open the breaker.
func TestIntrospectionBudgetPerClient(t *testing.T) {
	o := startOPA(t)
	idp := newStandIn(t, introspection)
	gw := stacktest.StartGateway(t, env(idp.srv.URL, o.URL, "OKTA_MAX_RPS_PER_CLIENT", "2", "OKTA_MAX_RPS", "100",
		"OKTA_BREAKER_FAILURES", "2"))
	flood, other := fromAddr(t, "127.0.0.2"), fromAddr(t, "127.0.0.1")
	cached := freshToken(true)
	check(t, getFrom(t, flood, gw.Traffic+"/sayhello", cached), want{status: 200})

	var introspected, refused int
	start := time.Now()
	for range 20 {
		r := getFrom(t, flood, gw.Traffic+"/sayhello", freshToken(false))
		switch r.Status {
		case 401:
			introspected++
		default:
			check(t, r, want{status: 503, code: "temporarily_unavailable", retryAfter: "1-1"})
			if !strings.Contains(r.Body, "budget") {
				t.Errorf("body %s does not say the budget is spent", r.Body)
			}
			refused++
		}
		check(t, getFrom(t, flood, gw.Traffic+"/sayhello", cached), want{status: 200})
	}
	// At most the burst (2, one spent on the cached token) plus what
	// refilled meanwhile.
	if limit := 1 + int(2*time.Since(start).Seconds()); introspected > limit || refused == 0 {
		t.Errorf("%d refused, %d introspected in %s: the client's limit of 2/s did not hold", refused, introspected, time.Since(start))
	}
	// The other client is untouched: its new tokens are introspected.
	for range 2 {
		check(t, getFrom(t, other, gw.Traffic+"/sayhello", freshToken(true)), want{status: 200})
	}
	if got, want := idp.calls.Load(), int64(1+introspected+2); got != want {
		t.Errorf("%d introspections, want %d: refused tokens must not reach the server", got, want)
	}
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); !strings.Contains(r.Body, `"idp":"ok"`) {
		t.Errorf("per-client refusals opened the breaker: %s", r.Body)
	}
	m := stacktest.Get(t, gw.Metrics+"/metrics", "").Body
	for _, line := range []string{
		`authgate_introspection_budget_rejections_total{scope="client"} ` + strconv.Itoa(refused),
		`authgate_introspection_budget_rejections_total{scope="global"} 0`,
	} {
		if !strings.Contains(m, "\n"+line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
