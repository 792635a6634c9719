package fault_test

import (
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
