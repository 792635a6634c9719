package e2e

import (
	"encoding/base64"
	"encoding/json"
	"github.com/authgate/authgate/internal/stacktest"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/authgate/authgate/internal/devidp"
)

// metricsPage is one scrape of /metrics.
type metricsPage map[string]*dto.MetricFamily

func scrape(t *testing.T, g *stacktest.Gateway) metricsPage {
	t.Helper()
	resp, err := http.Get(g.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the text exposition format: %v", err)
	}
	return mfs
}

// lintMetrics runs Prometheus's metric linter (promlint, as promtool check
// metrics does) over /metrics as served.
func lintMetrics(t *testing.T, g *stacktest.Gateway) {
	t.Helper()
	resp, err := http.Get(g.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	problems, err := promlint.New(resp.Body).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("/metrics lint: %s: %s", p.Metric, p.Text)
	}
}

// value is the sample of name whose labels include labels ("k=v" pairs);
// a histogram gives its count. Missing series read as -1.
func (p metricsPage) value(name string, labels ...string) float64 {
	mf := p[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// runScenarios drives the request path through allow, cache hit, deny,
// invalid and missing tokens, an unknown route, a coalesced miss and an
// IdP outage that opens the breaker. It returns every token it used.
func runScenarios(t *testing.T, gw *stacktest.Gateway, i *stacktest.IDP) []string {
	t.Helper()
	a := i.Token(t, "read_sayhello")
	b := i.Token(t, "read_sayhello")
	c := i.Token(t, "read_sayhello")

	req, _ := http.NewRequest(http.MethodGet, gw.Traffic+"/sayhello", nil)
	req.Header.Set("Authorization", "Bearer "+a)
	req.Header.Set("X-Request-Id", "e2e-allow-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "e2e-allow-1" {
		t.Fatalf("allow: %d, X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	for _, s := range []struct {
		name, path, token string
		status            int
	}{
		{"cache hit", "/sayhello", a, 200},
		{"deny", "/saysecret", a, 403},
		{"inactive", "/sayhello", "bm90LWEtcmVhbC10b2tlbg", 401},
		{"malformed", "/sayhello", "a,b", 401},
		{"no token", "/sayhello", "", 401},
		{"unknown route", "/nope", a, 404},
	} {
		r := stacktest.Get(t, gw.Traffic+s.path, s.token)
		if r.Status != s.status {
			t.Fatalf("%s: %d, want %d (%s)", s.name, r.Status, s.status, r.Body)
		}
		if id := r.Header.Get("X-Request-Id"); len(id) != 32 {
			t.Errorf("%s: generated X-Request-Id %q", s.name, id)
		}
	}

	const n = 20 // concurrent first requests for one token: one miss, the rest coalesced
	allAtOnce(t, n, gw.Traffic+"/sayhello", b)

	i.Srv.Close() // the IdP goes away: OKTA_BREAKER_FAILURES=2 failures open the breaker
	for k := range 3 {
		if r := stacktest.Get(t, gw.Traffic+"/sayhello", c); r.Status != 503 {
			t.Fatalf("IdP down, request %d: %d", k, r.Status)
		}
	}
	return []string{a, b, c}
}

func TestMetricsAndAccessLog(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 200*time.Millisecond) // keeps the concurrent misses overlapping
	env := stacktest.StackEnv(i, o)
	env["CACHE_SIZE"] = "1"
	env["OKTA_BREAKER_FAILURES"] = "2"
	env["OKTA_BREAKER_OPEN_TIMEOUT"] = "1m"
	gw := stacktest.StartGateway(t, env)

	before := scrape(t, gw)
	if v := before.value("authgate_decisions_total", "outcome=allow"); v != 0 {
		t.Fatalf("decisions{allow} before any request: %v (series must exist at 0)", v)
	}
	tokens := runScenarios(t, gw, i)
	m := scrape(t, gw)
	lintMetrics(t, gw)

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"authgate_decisions_total", []string{"outcome=allow"}, 22},
		{"authgate_decisions_total", []string{"outcome=deny"}, 1},
		{"authgate_decisions_total", []string{"outcome=invalid_token"}, 2},
		{"authgate_decisions_total", []string{"outcome=no_token"}, 1},
		{"authgate_decisions_total", []string{"outcome=unavailable"}, 3},
		{"authgate_decisions_total", []string{"outcome=bad_request"}, 0},
		{"authgate_cache_requests_total", []string{"result=hit"}, 2},
		{"authgate_introspection_requests_total", []string{"result=active"}, 2},
		{"authgate_introspection_requests_total", []string{"result=inactive"}, 1},
		{"authgate_introspection_requests_total", []string{"result=error"}, 2},
		{"authgate_introspection_duration_seconds", nil, 5},
		{"authgate_opa_requests_total", []string{"result=allow"}, 22},
		{"authgate_opa_requests_total", []string{"result=deny"}, 1},
		{"authgate_opa_duration_seconds", nil, 23},
		{"authgate_http_requests_total", []string{"route=/sayhello", "method=GET", "code=200"}, 22},
		{"authgate_http_requests_total", []string{"route=/saysecret", "method=GET", "code=403"}, 1},
		{"authgate_http_requests_total", []string{"route=/sayhello", "method=GET", "code=401"}, 3},
		{"authgate_http_requests_total", []string{"route=/sayhello", "method=GET", "code=503"}, 3},
		{"authgate_http_requests_total", []string{"route=unmatched", "method=GET", "code=404"}, 1},
		{"authgate_http_request_duration_seconds", []string{"route=/sayhello"}, 28},
		{"authgate_breaker_state", []string{"upstream=idp"}, 2},
		{"authgate_breaker_state", []string{"upstream=opa"}, 0},
		{"authgate_breaker_transitions_total", []string{"upstream=idp", "to=open"}, 1},
		{"authgate_breaker_transitions_total", []string{"upstream=opa", "to=open"}, 0},
	} {
		if got := m.value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	miss, coalesced := m.value("authgate_cache_requests_total", "result=miss"), m.value("authgate_cache_requests_total", "result=coalesced")
	// a, the inactive token, b (once or more), c three times.
	if coalesced < 1 || miss+coalesced != 25 {
		t.Errorf("cache miss %v + coalesced %v, want 25 with at least one coalesced", miss, coalesced)
	}
	if v := m.value("authgate_cache_evictions_total"); v < 1 {
		t.Errorf("evictions %v with a one-entry cache", v)
	}
	if v := m.value("authgate_cache_entries"); v < 1 {
		t.Errorf("cache entries %v", v)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if m[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	if r := stacktest.Get(t, gw.Traffic+"/metrics", ""); r.Status != 404 {
		t.Errorf("/metrics on the traffic listener: %d", r.Status)
	}
	// METRICS_ADDR only: the admin listener is what a proxy reaches for /verify.
	if r := stacktest.Get(t, gw.Admin+"/metrics", ""); r.Status != 404 {
		t.Errorf("/metrics on the admin listener: %d", r.Status)
	}

	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	lines := accessLines(t, gw)
	if len(lines) != 31 { // 7 single requests, 20 coalesced, 3 while the IdP is down, /metrics
		t.Errorf("%d access-log lines for 31 requests", len(lines))
	}
	if l := lines[0]; l["request_id"] != "e2e-allow-1" || l["outcome"] != "allow" || l["cache"] != "miss" ||
		l["subject"] != stacktest.DemoClient || l["client_id"] != stacktest.DemoClient || l["route"] != "/sayhello" || l["status"] != 200.0 {
		t.Errorf("allow line: %v", l)
	}
	assertNoSecrets(t, gw, append(tokens, stacktest.GatewaySecret, stacktest.DemoSecret)...)
}

// accessLines returns authgate's access-log lines, in order.
func accessLines(t *testing.T, g *stacktest.Gateway) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(g.Logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

// TestNoSecretsInLogs runs the scenarios at the most verbose level, with
// the settings that put the most secrets in play (the client secret in the
// form, the raw token in the OPA input), and checks that no token and no
// client secret, as is or encoded, reaches any log line.
func TestNoSecretsInLogs(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	env := stacktest.StackEnv(i, o)
	env["LOG_LEVEL"] = "debug"
	env["OKTA_AUTH_METHOD"] = "client_secret_post"
	env["OPA_SEND_TOKEN"] = "true"
	env["OKTA_BREAKER_FAILURES"] = "2"
	gw := stacktest.StartGateway(t, env)
	tokens := runScenarios(t, gw, i)
	o.Stop() // and OPA goes away too: its errors are logged
	stacktest.Get(t, gw.Traffic+"/sayhello", tokens[1])
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(gw.Logs.String(), "\n"); n < 30 {
		t.Fatalf("only %d log lines", n)
	}
	assertNoSecrets(t, gw, append(tokens, stacktest.GatewaySecret, stacktest.DemoSecret)...)
}

// assertNoSecrets is assertNoLeaks for each secret as is and URL-encoded,
// and for the gateway's Basic credential.
func assertNoSecrets(t *testing.T, g *stacktest.Gateway, secrets ...string) {
	t.Helper()
	var forms []string
	for _, s := range secrets {
		forms = append(forms, s, url.QueryEscape(s))
	}
	forms = append(forms, base64.StdEncoding.EncodeToString([]byte(stacktest.GatewayClient+":"+stacktest.GatewaySecret)))
	g.AssertNoLeaks(t, forms...)
}

// TestRateLimitGauges: the IdP's X-Rate-Limit-* headers reach the gauges.
func TestRateLimitGauges(t *testing.T) {
	o := stacktest.StartOPA(t)
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/oauth2/default"
	s, err := devidp.New(devidp.Config{
		Issuer: issuer,
		Clients: []devidp.Client{
			{ID: stacktest.GatewayClient, Secret: stacktest.GatewaySecret},
			{ID: stacktest.DemoClient, Secret: stacktest.DemoSecret, Scopes: []string{"read_sayhello"}},
		},
		RateLimit: 600,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	i := &stacktest.IDP{Server: s, Srv: srv, Issuer: issuer}
	gw := stacktest.StartGateway(t, stacktest.StackEnv(i, o))

	if m := scrape(t, gw); m.value("authgate_idp_rate_limit_remaining") != -1 {
		t.Errorf("rate-limit gauge present before any introspection")
	}
	if r := stacktest.Get(t, gw.Traffic+"/sayhello", i.Token(t, "read_sayhello")); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	m := scrape(t, gw)
	if v := m.value("authgate_idp_rate_limit_limit"); v != 600 {
		t.Errorf("limit %v, want 600", v)
	}
	if v := m.value("authgate_idp_rate_limit_remaining"); v < 590 || v >= 600 {
		t.Errorf("remaining %v, want a little under 600", v)
	}
}
