package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/pkg/introspect"
)

func TestRequestLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Request("/sayhello", "GET", 200, time.Millisecond)
	m.Request("/sayhello", "GET", 200, time.Millisecond)
	m.Request("/sayhello", "GET", 403, time.Millisecond)
	m.Request("/sayhello", "BREW", 405, time.Millisecond) // a client's made-up method
	m.Request("", "GET", 404, time.Millisecond)

	want := `
# HELP authgate_http_requests_total Requests answered on the traffic listener, by route template, method and status code.
# TYPE authgate_http_requests_total counter
authgate_http_requests_total{code="200",method="GET",route="/sayhello"} 2
authgate_http_requests_total{code="403",method="GET",route="/sayhello"} 1
authgate_http_requests_total{code="404",method="GET",route="unmatched"} 1
authgate_http_requests_total{code="405",method="other",route="/sayhello"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "authgate_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("duration histograms: %d series, want 2 (one per route)", n)
	}
}

func TestCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Decision("allow")
	m.Decision("deny")
	m.Decision("deny")
	m.Decision("error") // not a declared outcome: still counted
	m.CacheLookup(authn.Hit)
	m.CacheLookup(authn.Coalesced)
	m.CacheLookup(authn.Miss)
	m.CacheLookup(authn.Hit)
	m.CacheLookup(authn.Lookup(9)) // a result this version does not name: counted by its String
	m.Introspection("active", 20*time.Millisecond)
	m.Introspection("error", time.Second)
	m.OPA("allow", time.Millisecond)
	m.OPA("undefined", time.Millisecond)
	m.CacheEvicted()
	m.RateLimit(introspect.RateLimit{Limit: 1200, Remaining: 1187})
	m.RateLimit(introspect.RateLimit{Limit: -1, Remaining: -1}) // headers absent: keep the last values
	m.BreakerTransition("idp", breaker.Closed, breaker.Open)
	m.RevokeRequest("unauthorized")
	m.RevokeRequest("unauthorized")
	m.RevokeRequest("revoked")

	for _, c := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.decisionByName["allow"], 1},
		{m.decisionByName["deny"], 2},
		{m.decisionByName["unavailable"], 0},
		{m.decisions.WithLabelValues("error"), 1},
		{m.cache[authn.Hit], 2},
		{m.cache[authn.Miss], 2},
		{m.cache[authn.Coalesced], 1},
		{m.introspections["active"], 1},
		{m.introspections["error"], 1},
		{m.introspections["inactive"], 0},
		{m.opaRequests["allow"], 1},
		{m.opaRequests["undefined"], 1},
		{m.cacheEvictions, 1},
		{m.rateLimit.WithLabelValues(), 1200},
		{m.rateLimitRemain.WithLabelValues(), 1187},
		{m.transitions.WithLabelValues("idp", "open"), 1},
		{m.transitions.WithLabelValues("opa", "open"), 0},
		{m.revokeRequests["unauthorized"], 2},
		{m.revokeRequests["revoked"], 1},
		{m.revokeRequests["bad_request"], 0},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%v: %v, want %v", c.c, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.introspectionD); n != 1 {
		t.Errorf("introspection histogram: %d", n)
	}
}

func TestRateLimitAbsentUntilKnown(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	if n, err := testutil.GatherAndCount(reg, "authgate_idp_rate_limit_remaining", "authgate_idp_rate_limit_limit"); err != nil || n != 0 {
		t.Fatalf("%d rate-limit series before the server sent any (%v)", n, err)
	}
	m.RateLimit(introspect.RateLimit{Limit: 600, Remaining: 0})
	if n, _ := testutil.GatherAndCount(reg, "authgate_idp_rate_limit_remaining", "authgate_idp_rate_limit_limit"); n != 2 {
		t.Fatalf("%d rate-limit series", n)
	}
}

func TestWatchReadsAtScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	entries := 3
	m.WatchCache(func() int { return entries })
	b := breaker.New(breaker.Settings{Name: "idp", Failures: 1, OpenTimeout: time.Hour})
	m.WatchBreaker(b)
	m.WatchBreaker(breaker.New(breaker.Settings{Name: "opa", Failures: 1, OpenTimeout: time.Hour}))

	entries = 7
	done, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	done(errFailure) // one failure opens it

	want := `
# HELP authgate_breaker_state Circuit breaker state by upstream: 0 closed, 1 half-open, 2 open.
# TYPE authgate_breaker_state gauge
authgate_breaker_state{upstream="idp"} 2
authgate_breaker_state{upstream="opa"} 0
# HELP authgate_cache_entries Entries in the token cache, active and inactive.
# TYPE authgate_cache_entries gauge
authgate_cache_entries 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "authgate_breaker_state", "authgate_cache_entries"); err != nil {
		t.Error(err)
	}
}

type failure struct{}

func (failure) Error() string { return "upstream failed" }

var errFailure error = failure{}

// TestEveryNameRegistered guards the metric names, a contract with dashboards.
func TestEveryNameRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.WatchCache(func() int { return 0 })
	m.WatchBreaker(breaker.New(breaker.Settings{Name: "idp", Failures: 1, OpenTimeout: time.Second}))
	m.Request("/x", "GET", 200, 0)
	m.Introspection("active", 0)
	m.OPA("allow", 0)
	m.RateLimit(introspect.RateLimit{Limit: 1, Remaining: 1})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{
		"authgate_http_requests_total", "authgate_http_request_duration_seconds",
		"authgate_decisions_total", "authgate_introspection_requests_total",
		"authgate_introspection_duration_seconds", "authgate_cache_requests_total",
		"authgate_cache_entries", "authgate_cache_evictions_total", "authgate_breaker_state",
		"authgate_breaker_transitions_total", "authgate_opa_requests_total", "authgate_opa_duration_seconds",
		"authgate_idp_rate_limit_remaining", "authgate_idp_rate_limit_limit",
		"authgate_introspection_budget_rejections_total",
		"authgate_jwt_validations_total", "authgate_jwks_fetches_total", "authgate_revoke_requests_total",
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if !got[name] {
			t.Errorf("%s not registered", name)
		}
	}
}

// BenchmarkRequest is the per-request cost of the metrics on the hot path.
func BenchmarkRequest(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.Request("/sayhello", "GET", 200, time.Millisecond)
		m.Decision("allow")
		m.CacheLookup(authn.Hit)
	}
}

// TestRequestConcurrent races the copy-on-write route and code tables.
func TestRequestConcurrent(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	routes := []string{"/a", "/b", "", "/c"}
	codes := []int{200, 401, 403, 503}
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				m.Request(routes[(g+i)%len(routes)], "GET", codes[i%len(codes)], time.Millisecond)
			}
		}()
	}
	for range 8 {
		<-done
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	series := 0
	for _, mf := range mfs {
		if mf.GetName() == "authgate_http_requests_total" {
			for _, s := range mf.GetMetric() {
				total += s.GetCounter().GetValue()
				series++
			}
		}
	}
	if total != 8*500 || series != len(routes)*len(codes) {
		t.Errorf("total %v in %d series, want %d in %d", total, series, 8*500, len(routes)*len(codes))
	}
}

// TestBudgetRejections: authgate_introspection_budget_rejections_total has
// both scopes at 0 from the start and counts each refusal by its scope.
func TestBudgetRejections(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	want := `
# HELP authgate_introspection_budget_rejections_total Unknown tokens refused without asking the authorization server, by the budget spent: client (OKTA_MAX_RPS_PER_CLIENT) or global (OKTA_MAX_RPS).
# TYPE authgate_introspection_budget_rejections_total counter
authgate_introspection_budget_rejections_total{scope="client"} 0
authgate_introspection_budget_rejections_total{scope="global"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "authgate_introspection_budget_rejections_total"); err != nil {
		t.Fatal(err)
	}
	m.ClientBudgetRejected()
	m.ClientBudgetRejected()
	m.GlobalBudgetRejected()
	want = strings.NewReplacer(`"client"} 0`, `"client"} 2`, `"global"} 0`, `"global"} 1`).Replace(want)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "authgate_introspection_budget_rejections_total"); err != nil {
		t.Error(err)
	}
}

// TestJWTMetrics: the JWT counters exist at 0 for every result from the
// start and count by their exact label values.
func TestJWTMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.JWTValidation("valid")
	m.JWTValidation("valid")
	m.JWTValidation("unknown_key")
	m.JWTValidation("made-up") // not a result: no new series
	m.JWKSFetch("error")
	for _, c := range []struct {
		c    prometheus.Counter
		want float64
	}{
		{m.jwtValidations["valid"], 2}, {m.jwtValidations["invalid"], 0}, {m.jwtValidations["unknown_key"], 1},
		{m.jwksFetches["ok"], 0}, {m.jwksFetches["error"], 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.c.Desc(), got, c.want)
		}
	}
	if n := testutil.CollectAndCount(reg, "authgate_jwt_validations_total"); n != 3 {
		t.Errorf("authgate_jwt_validations_total has %d series, want 3", n)
	}
}

// TestLint runs Prometheus's metric linter (promlint, as promtool check
// metrics does) over every family authgate can expose, each with a sample:
// the fleet's too (REDIS_URL), the gauges read when scraped, the Go and
// process collectors.
func TestLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.Fleet(true)
	m.WatchCache(func() int { return 1 })
	m.WatchBreaker(breaker.New(breaker.Settings{Name: "idp", Failures: 3, OpenTimeout: time.Minute}))
	m.Request("/sayhello", "GET", 200, time.Millisecond)
	m.Decision("allow")
	m.CacheLookup(authn.Hit)
	m.Introspection("active", time.Millisecond)
	m.ClientBudgetRejected()
	m.RateLimit(introspect.RateLimit{Limit: 1200, Remaining: 1100})
	m.OPA("allow", time.Millisecond)
	m.JWTValidation("valid")
	m.JWKSFetch("ok")
	m.CacheEvicted()
	m.BreakerTransition("idp", breaker.Closed, breaker.Open)
	m.Redis("claim", "ok", time.Millisecond)
	m.Revocation("api")
	m.RevokeRequest("revoked")
	org := m.AddIssuer("org")
	org.Introspection("active", time.Millisecond)
	org.RateLimit(introspect.RateLimit{Limit: 600, Remaining: 500})
	m.IssuerCacheLookup(authn.Hit, "org")

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	// Every family docs/operations.md lists was there to be linted.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	linted := map[string]bool{}
	for _, mf := range mfs {
		linted[mf.GetName()] = true
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := regexp.MustCompile("`(authgate_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1)
	if len(documented) < 20 {
		t.Fatalf("only %d authgate_ names in docs/operations.md", len(documented))
	}
	for _, d := range documented {
		if !linted[d[1]] {
			t.Errorf("%s (docs/operations.md) was not linted: give it a sample above", d[1])
		}
	}
}
