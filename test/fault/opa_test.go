package fault_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
)

// TestOPAFaults: an OPA that cannot answer gives 503; one that answers
// anything but a boolean true gives 403. Never a 200.
func TestOPAFaults(t *testing.T) {
	idp := newStandIn(t, introspection)
	unavailable := want{status: 503, code: "temporarily_unavailable", retryAfter: "*"}
	denied := want{status: 403, code: "access_denied"}
	cases := []struct {
		name    string
		handler http.HandlerFunc // nil: connection refused
		want    want
	}{
		{name: "down", handler: nil, want: unavailable},
		{name: "500 internal_error", handler: status(500, `{"code":"internal_error","message":"eval_conflict_error: functions must not produce multiple outputs for same inputs"}`), want: unavailable},
		{name: "400 invalid_parameter", handler: status(400, `{"code":"invalid_parameter","message":"error(s) occurred while parsing query"}`), want: unavailable},
		{name: "404", handler: status(404, `not found`), want: unavailable},
		{name: "undefined decision", handler: status(200, `{}`), want: denied},
		{name: "undefined with decision_id", handler: status(200, `{"decision_id":"d1"}`), want: denied},
		{name: "null result", handler: status(200, `{"result":null}`), want: denied},
		{name: "string result", handler: status(200, `{"result":"true"}`), want: denied},
		{name: "number result", handler: status(200, `{"result":1}`), want: denied},
		{name: "object result without a boolean allowed", handler: status(200, `{"result":{"allowed":"yes","allow":1}}`), want: denied},
		{name: "array result", handler: status(200, `{"result":[true]}`), want: denied},
		{name: "false", handler: status(200, `{"result":false}`), want: denied},
		{name: "slower than OPA_TIMEOUT", handler: slow(time.Second, status(200, `{"result":true}`)), want: unavailable},
		{name: "garbage", handler: status(200, `<html>oops</html>`), want: unavailable},
		{name: "truncated", handler: status(200, `{"result":tr`), want: unavailable},
		{name: "top-level array", handler: status(200, `[{"result":true}]`), want: unavailable},
		{name: "empty body", handler: status(200, ``), want: unavailable},
		{name: "connection reset mid-body", handler: resetMidBody, want: unavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opaURL string
			var opa *standIn
			if tc.handler == nil {
				opaURL = refusedURL(t)
			} else {
				opa = newStandIn(t, tc.handler)
				opaURL = opa.srv.URL
			}
			gw := stacktest.StartGateway(t, env(idp.srv.URL, opaURL))
			tok := freshToken(true)
			for range 3 {
				check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), tc.want)
			}
			if opa != nil && opa.calls.Load() != 3 {
				t.Errorf("%d decisions, want 3 (decisions are never cached)", opa.calls.Load())
			}
			if opa != nil {
				opa.set(status(200, `{"result":true}`))
				check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 200})
			}
		})
	}
}

// TestRealOPAFaults uses the real OPA binary: a decision path that does not
// exist (undefined: 403, logged), and OPA stopped then restarted.
func TestRealOPAFaults(t *testing.T) {
	o := startOPA(t)
	idp := newStandIn(t, introspection)

	t.Run("undefined decision", func(t *testing.T) {
		e := env(idp.srv.URL, o.URL)
		e["OPA_AUTHZ_URL"] = o.URL + "/v1/data/demoapi/nosuchpackage/allow"
		gw := stacktest.StartGateway(t, e)
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), want{status: 403, code: "access_denied"})
		if len(gw.Logs.Lines("opa decision undefined; denying (is OPA_AUTHZ_URL the right rule?)")) == 0 {
			t.Errorf("undefined decision not logged:\n%s", gw.Logs.String())
		}
	})
	t.Run("down then back", func(t *testing.T) {
		gw := stacktest.StartGateway(t, env(idp.srv.URL, o.URL))
		tok := freshToken(true)
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 200})
		o.Stop()
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 503, code: "temporarily_unavailable", retryAfter: "*"})
		check(t, stacktest.Get(t, gw.Traffic+"/saysecret", tok), want{status: 503, code: "temporarily_unavailable", retryAfter: "*"})
		o.Restart(t)
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 200})
		check(t, stacktest.Get(t, gw.Traffic+"/saysecret", tok), want{status: 403, code: "access_denied"})
	})
}
