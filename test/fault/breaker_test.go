package fault_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
)

// TestBreakerCycle runs the IdP breaker through its whole cycle with short
// timings: closed → open after N failures → immediate 503 with no upstream
// call → half-open probe that fails → open again → probe that succeeds →
// closed. The only waiting is polling for the configured open time.
func TestBreakerCycle(t *testing.T) {
	// Long enough that the checks made while open finish within it even on
	// a loaded machine; the test waits for it twice.
	const openTimeout = time.Second
	o := startOPA(t)
	idp := newStandIn(t, status(500, `{}`))
	gw := stacktest.StartGateway(t, env(idp.srv.URL, o.URL,
		"OKTA_BREAKER_FAILURES", "3", "OKTA_BREAKER_OPEN_TIMEOUT", openTimeout.String()))
	unavailable := want{status: 503, code: "temporarily_unavailable", retryAfter: "*"}
	readyz := func() string { return stacktest.Get(t, gw.Admin+"/readyz", "").Body }

	// Closed: each failure reaches the server.
	for k := range 3 {
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), unavailable)
		if got := idp.calls.Load(); got != int64(k+1) {
			t.Fatalf("failure %d: %d upstream calls", k+1, got)
		}
	}
	// Open: answered at once, nothing reaches the server.
	openedAt := time.Now()
	if !strings.Contains(readyz(), `"idp":"breaker open"`) {
		t.Errorf("/readyz: %s", readyz())
	}
	for range 10 {
		start := time.Now()
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), want{status: 503, code: "temporarily_unavailable", retryAfter: "1-1"})
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("open breaker took %s to answer", d)
		}
	}
	if got := idp.calls.Load(); got != 3 {
		t.Fatalf("%d upstream calls while open, want none", got-3)
	}
	// Half-open: one probe goes through; it fails, the breaker opens again.
	stacktest.Eventually(t, openTimeout+2*time.Second, "half-open probe reaches the server", func() bool {
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), unavailable)
		return idp.calls.Load() == 4
	})
	if d := time.Since(openedAt); d < openTimeout-50*time.Millisecond {
		t.Errorf("probe after %s, before the open time %s", d, openTimeout)
	}
	for range 5 {
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), unavailable)
	}
	if got := idp.calls.Load(); got != 4 {
		t.Fatalf("%d upstream calls after a failed probe, want none", got-4)
	}
	// The server recovers; the next probe succeeds and closes the breaker.
	idp.set(introspection)
	var allowed string
	stacktest.Eventually(t, openTimeout+2*time.Second, "a successful probe closes the breaker", func() bool {
		allowed = freshToken(true)
		r := stacktest.Get(t, gw.Traffic+"/sayhello", allowed)
		if r.Status != http.StatusOK {
			check(t, r, unavailable)
		}
		return r.Status == http.StatusOK
	})
	if got := idp.calls.Load(); got != 5 {
		t.Errorf("%d upstream calls to close the breaker, want exactly one probe", got-4)
	}
	// Closed again: new tokens are introspected, invalid ones are told so.
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), want{status: 200})
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(false)), want{status: 401, code: "invalid_token"})
	if got := idp.calls.Load(); got != 7 {
		t.Errorf("%d upstream calls after closing, want 2", got-5)
	}
	if r := readyz(); !strings.Contains(r, `"idp":"ok"`) {
		t.Errorf("/readyz after recovery: %s", r)
	}
	if n := len(gw.Logs.Lines("circuit breaker state changed")); n != 5 {
		t.Errorf("%d breaker transitions logged, want 5 (open, half-open, open, half-open, closed)", n)
	}
}

// TestOPABreakerCycle: the OPA breaker opens after N failures and answers at
// once without asking OPA, then closes when OPA answers again.
func TestOPABreakerCycle(t *testing.T) {
	const openTimeout = time.Second
	idp := newStandIn(t, introspection)
	opa := newStandIn(t, status(500, `{"code":"internal_error"}`))
	gw := stacktest.StartGateway(t, env(idp.srv.URL, opa.srv.URL,
		"OPA_BREAKER_FAILURES", "2", "OPA_BREAKER_OPEN_TIMEOUT", openTimeout.String()))
	tok := freshToken(true)
	unavailable := want{status: 503, code: "temporarily_unavailable", retryAfter: "*"}
	for range 6 {
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), unavailable)
	}
	if got := opa.calls.Load(); got != 2 {
		t.Fatalf("%d decisions asked, want 2 (then open)", got)
	}
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); r.Status != 503 {
		t.Errorf("/readyz with the OPA breaker open: %d %s", r.Status, r.Body)
	}
	opa.set(status(200, `{"result":true}`))
	stacktest.Eventually(t, openTimeout+2*time.Second, "OPA breaker closes", func() bool {
		r := stacktest.Get(t, gw.Traffic+"/sayhello", tok)
		if r.Status != 200 {
			check(t, r, unavailable)
		}
		return r.Status == 200
	})
	if got := opa.calls.Load(); got != 3 {
		t.Errorf("%d decisions, want exactly one probe after opening", got-2)
	}
}

// hostileIntrospection is an RFC 7662 server that answers 400
// invalid_request for tokens starting with "hostile", its
// error_description echoing the token; others as introspection does.
func hostileIntrospection(status int, code string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := r.PostFormValue("token")
		if !strings.HasPrefix(tok, "hostile") {
			introspection(w, r)
			return
		}
		body, _ := json.Marshal(map[string]string{"error": code, "error_description": "the token " + tok + " is not one of ours"})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}
}

// TestCallerCannotOpenIdPBreaker: tokens the server answers 400 for, more
// of them than OKTA_BREAKER_FAILURES, are each 401 invalid_token, cached
// like inactive ones; the breaker stays closed and another user's new token
// is allowed. The server's text, which echoes the token, is in no log line
// at any level.
func TestCallerCannotOpenIdPBreaker(t *testing.T) {
	o := startOPA(t)
	idp := newStandIn(t, hostileIntrospection(http.StatusBadRequest, "invalid_request"))
	gw := stacktest.StartGateway(t, env(idp.srv.URL, o.URL, "OKTA_BREAKER_FAILURES", "3", "LOG_LEVEL", "debug"))
	var hostile []string
	for range 10 {
		tok := "hostile-" + freshToken(false)
		hostile = append(hostile, tok)
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 401, code: "invalid_token"})
	}
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", hostile[0]), want{status: 401, code: "invalid_token"})
	if got := idp.calls.Load(); got != 10 {
		t.Errorf("%d introspections for 10 hostile tokens and one repeat, want 10 (the repeat is cached)", got)
	}
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); !strings.Contains(r.Body, `"idp":"ok"`) {
		t.Errorf("per-token 400s opened the breaker: %s", r.Body)
	}
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), want{status: 200})
	if len(gw.Logs.Lines("authorization server error")) == 0 {
		t.Errorf("the server's error not logged at debug:\n%s", gw.Logs.String())
	}
	gw.AssertNoLeaks(t, hostile...)
	serverTextOnlyAtDebug(t, gw)
}

// serverTextOnlyAtDebug fails if the server's error_description appears in
// a log line above debug.
func serverTextOnlyAtDebug(t *testing.T, gw *stacktest.Gateway) {
	t.Helper()
	for _, l := range strings.Split(gw.Logs.String(), "\n") {
		if strings.Contains(l, "is not one of ours") && !strings.Contains(l, `"level":"DEBUG"`) {
			t.Errorf("the server's text logged above debug: %s", l)
		}
	}
}

// TestInvalidClientLoggedOnce: authgate's credentials refused is a 503 for
// every request, one ERROR line for a burst of them, no open breaker, and
// the server's text nowhere in the logs.
func TestInvalidClientLoggedOnce(t *testing.T) {
	const msg = "authorization server rejected authgate's credentials or request: check OKTA_CLIENT_ID, OKTA_CLIENT_SECRET, OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL"
	o := startOPA(t)
	idp := newStandIn(t, hostileIntrospection(http.StatusUnauthorized, "invalid_client"))
	gw := stacktest.StartGateway(t, env(idp.srv.URL, o.URL, "OKTA_BREAKER_FAILURES", "3", "LOG_LEVEL", "debug"))
	var sent []string
	for range 20 {
		tok := "hostile-" + freshToken(true)
		sent = append(sent, tok)
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 503, code: "temporarily_unavailable", retryAfter: "*"})
	}
	if got := idp.calls.Load(); got != 20 {
		t.Errorf("%d introspections, want 20 (no open breaker, nothing cached)", got)
	}
	if n := len(gw.Logs.Lines(msg)); n != 1 {
		t.Errorf("%d ERROR lines for 20 refusals within 10 s, want 1:\n%s", n, gw.Logs.String())
	}
	if r := stacktest.Get(t, gw.Admin+"/readyz", ""); !strings.Contains(r.Body, `"idp":"ok"`) {
		t.Errorf("invalid_client opened the breaker: %s", r.Body)
	}
	gw.AssertNoLeaks(t, append(sent, stacktest.GatewaySecret)...)
	serverTextOnlyAtDebug(t, gw)
}
