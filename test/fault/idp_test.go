package fault_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
)

// TestIdPFaults: whatever the authorization server does wrong, the client
// gets 503 temporarily_unavailable with Retry-After, never a 200 and never a
// 401 blaming its token.
func TestIdPFaults(t *testing.T) {
	o := startOPA(t)
	unavailable := want{status: 503, code: "temporarily_unavailable", retryAfter: "*"}
	big := `{"active":true,"scope":"read_sayhello","pad":"` + strings.Repeat("a", 70<<10) + `"}`
	cases := []struct {
		name    string
		handler http.HandlerFunc // nil: connection refused
		want    want
		// held: a 429 holds every later introspection, so the whole case
		// makes one upstream call.
		held bool
		log  string // a log message the fault must produce
	}{
		{name: "slower than OKTA_TIMEOUT", handler: slow(time.Second, introspection), want: unavailable},
		{name: "500", handler: status(500, `{"errorCode":"E0000009","errorSummary":"Internal Server Error"}`), want: unavailable},
		{name: "502", handler: status(502, `<html>bad gateway</html>`), want: unavailable},
		{name: "503", handler: status(503, ``), want: unavailable},
		{name: "503 with Retry-After", handler: status(503, ``, "Retry-After", "7"),
			want: want{status: 503, code: "temporarily_unavailable", retryAfter: "6-7"}},
		{name: "429 with X-Rate-Limit-Reset", held: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				reset := time.Now().Add(5 * time.Second).Unix()
				status(429, `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}`,
					"X-Rate-Limit-Limit", "600", "X-Rate-Limit-Remaining", "0", "X-Rate-Limit-Reset", strconv.FormatInt(reset, 10))(w, r)
			},
			want: want{status: 503, code: "temporarily_unavailable", retryAfter: "4-5"}},
		{name: "429 with Retry-After", held: true, handler: status(429, ``, "Retry-After", "3"),
			want: want{status: 503, code: "temporarily_unavailable", retryAfter: "2-3"}},
		{name: "garbage JSON", handler: status(200, `<html>hello</html>`), want: unavailable},
		{name: "truncated JSON", handler: status(200, `{"active":tr`), want: unavailable},
		{name: "body over the size limit", handler: status(200, big), want: unavailable},
		{name: "active missing", handler: status(200, `{"scope":"read_sayhello","sub":"demo"}`), want: unavailable},
		{name: "active not a boolean", handler: status(200, `{"active":"true","scope":"read_sayhello"}`), want: unavailable},
		{name: "active null", handler: status(200, `{"active":null,"scope":"read_sayhello"}`), want: unavailable},
		{name: "empty body", handler: status(200, ``), want: unavailable},
		{name: "connection refused", handler: nil, want: unavailable},
		{name: "connection reset mid-body", handler: resetMidBody, want: unavailable},
		{name: "401 invalid_client", handler: status(401, `{"error":"invalid_client","error_description":"Invalid value for 'client_id' parameter."}`),
			want: unavailable, log: "authorization server rejected authgate's credentials or request: check OKTA_CLIENT_ID, OKTA_CLIENT_SECRET, OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL"},
		{name: "404 (wrong OKTA_INTROSPECT_URL)", handler: status(404, `{"errorCode":"E0000022","errorSummary":"The endpoint does not support the provided HTTP method"}`),
			want: unavailable, log: "authorization server rejected authgate's credentials or request: check OKTA_CLIENT_ID, OKTA_CLIENT_SECRET, OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL"},
		// A 400 for one token is that token's answer: TestCallerCannotOpenIdPBreaker.
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var idpURL string
			var idp *standIn
			if tc.handler == nil {
				idpURL = refusedURL(t)
			} else {
				idp = newStandIn(t, tc.handler)
				idpURL = idp.srv.URL
			}
			gw := stacktest.StartGateway(t, env(idpURL, o.URL))
			// A good token (active if the server answered), another good
			// one, and the first again: none may pass, none may be cached.
			good := freshToken(true)
			for k, tok := range []string{good, freshToken(true), good, freshToken(false)} {
				r := stacktest.Get(t, gw.Traffic+"/sayhello", tok)
				if k > 0 && tc.want.retryAfter != "*" {
					// Later answers count down to the same time.
					check(t, r, want{status: tc.want.status, code: tc.want.code, retryAfter: "1-" + strings.Split(tc.want.retryAfter, "-")[1]})
					continue
				}
				check(t, r, tc.want)
			}
			if idp != nil {
				calls := idp.calls.Load()
				switch {
				case tc.held && calls != 1:
					t.Errorf("%d introspections; a 429 must hold all after the first", calls)
				case !tc.held && calls != 4:
					t.Errorf("%d introspections, want 4 (failures are never cached)", calls)
				}
			}
			if tc.log != "" && len(gw.Logs.Lines(tc.log)) == 0 {
				t.Errorf("no %q log line:\n%s", tc.log, gw.Logs.String())
			}
			// The fault ends: the same gateway recovers on its own.
			if idp != nil && !tc.held {
				idp.set(introspection)
				check(t, stacktest.Get(t, gw.Traffic+"/sayhello", good), want{status: 200})
			}
			gw.AssertNoLeaks(t, good, stacktest.GatewaySecret)
		})
	}
}

// TestRateLimitHold: a 429 holds introspection until the reset Okta named,
// with that time in Retry-After; cached tokens keep working meanwhile, and
// introspection resumes by itself at the reset.
func TestRateLimitHold(t *testing.T) {
	o := startOPA(t)
	idp := newStandIn(t, introspection)
	gw := stacktest.StartGateway(t, env(idp.srv.URL, o.URL))
	cached := freshToken(true)
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", cached), want{status: 200})

	reset := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
	idp.set(status(429, ``, "X-Rate-Limit-Limit", "600", "X-Rate-Limit-Remaining", "0",
		"X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10)))
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), want{status: 503, code: "temporarily_unavailable", retryAfter: "1-3"})
	idp.set(introspection) // Okta would answer again only after the reset
	callsAtHold := idp.calls.Load()

	for time.Until(reset) > 300*time.Millisecond {
		wantSecs := int(time.Until(reset).Seconds()) + 1 // before the request: its answer can only be lower
		r := stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true))
		check(t, r, want{status: 503, code: "temporarily_unavailable", retryAfter: strconv.Itoa(max(1, wantSecs-1)) + "-" + strconv.Itoa(wantSecs)})
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", cached), want{status: 200})
		if r := stacktest.Get(t, gw.Admin+"/readyz", ""); r.Status != 200 || !strings.Contains(r.Body, `"idp":"rate limited"`) {
			t.Errorf("/readyz while held: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond) // pacing the polls, not waiting for a state
	}
	if got := idp.calls.Load(); got != callsAtHold {
		t.Fatalf("%d introspections during the hold", got-callsAtHold)
	}
	stacktest.Eventually(t, 3*time.Second, "introspection resumes after the reset", func() bool {
		return stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)).Status == 200
	})
}
