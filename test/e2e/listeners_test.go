package e2e

import (
	"testing"

	"github.com/authgate/authgate/internal/stacktest"
)

// TestListeners: /metrics and pprof live on METRICS_ADDR only, so that the
// admin listener a proxy must reach for /verify exposes nothing else; and
// OPTIONS * gets a logged 400 on every listener, in both modes, never Go's
// silent 200 nor a trip to the upstream.
func TestListeners(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	up := startUpstream(t)
	for _, mode := range []string{"serve", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			env := stacktest.StackEnv(i, o)
			env["PPROF"] = "true"
			if mode == "proxy" {
				env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
				env["UPSTREAM_URL"] = up.srv.URL
				env["PUBLIC_PATHS"] = "OPTIONS /*"
			}
			gw := stacktest.StartGateway(t, env)
			trafficPprof := 404 // serve mode: no such route
			if mode == "proxy" {
				trafficPprof = 401 // a protected path of the upstream's
			}
			for _, c := range []struct {
				base, path string
				status     int
			}{
				{gw.Metrics, "/metrics", 200},
				{gw.Metrics, "/debug/pprof/", 200},
				{gw.Admin, "/metrics", 404},
				{gw.Admin, "/debug/pprof/", 404},
				{gw.Admin, "/readyz", 200},
				{gw.Admin, "/healthz", 200},
				{gw.Traffic, "/debug/pprof/", trafficPprof},
				{gw.Traffic, "/metrics", trafficPprof},
			} {
				if r := stacktest.Get(t, c.base+c.path, ""); r.Status != c.status {
					t.Errorf("%s%s: %d, want %d", c.base, c.path, r.Status, c.status)
				}
			}

			before := up.hits.Load()
			listeners := map[string]string{"traffic": gw.Traffic, "admin": gw.Admin, "metrics": gw.Metrics}
			for name, base := range listeners {
				r := raw(t, base, "OPTIONS", "*", nil)
				if r.Status != 400 || r.ErrorCode(t) != "invalid_request" {
					t.Errorf("OPTIONS * on the %s listener: %d %s", name, r.Status, r.Body)
				}
			}
			if up.hits.Load() != before {
				t.Error("OPTIONS * reached the upstream")
			}
			seen := map[string]bool{}
			for _, l := range gw.Logs.Lines("asterisk-form request refused") {
				seen[l["listener"].(string)] = true
			}
			for name := range listeners {
				if !seen[name] {
					t.Errorf("no log line for OPTIONS * on the %s listener", name)
				}
			}
		})
	}
}
