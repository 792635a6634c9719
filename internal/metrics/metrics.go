// Package metrics is authgate's Prometheus instrumentation. Every metric is
// registered on the prometheus.Registerer the caller passes to New: there is
// no global registry and no init. The names and label values are a contract
// that dashboards depend on (docs/operations.md, "Metrics").
//
// The per-request methods (Request, Decision, CacheLookup) run on the hot
// path: label children are resolved once, at start-up or on first use of a
// route, so that a request costs a few atomic adds and no allocation.
package metrics

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/pkg/introspect"
)

// UnmatchedRoute is the route label of a request that matched no route, so
// that a client probing paths cannot create series.
const UnmatchedRoute = "unmatched"

// Label values of authgate_decisions_total, as the gateway names its outcomes.
var outcomes = []string{"allow", "deny", "invalid_token", "no_token", "bad_request", "unavailable"}

// Label values of the introspection and OPA request counters.
var (
	introspectionResults = []string{"active", "inactive", "error"}
	opaResults           = []string{"allow", "deny", "undefined", "error"}
	jwtResults           = []string{"valid", "invalid", "unknown_key"}
	jwksResults          = []string{"ok", "error"}
	// POST /revoke: revoked (200), upstream_error (502: revoked in
	// authgate, the IdP's revocation failed), bad_request (400),
	// unauthorized (401: ADMIN_API_TOKEN missing or wrong).
	revokeResults = []string{"revoked", "upstream_error", "bad_request", "unauthorized"}
)

// methods are the label values of the method label; anything else is "other".
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "other"}

func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "CONNECT":
		return 6
	case "OPTIONS":
		return 7
	case "TRACE":
		return 8
	}
	return len(methods) - 1
}

// Buckets of the duration histograms, in seconds: a cached check takes well
// under a millisecond, an Okta round trip tens to hundreds of milliseconds.
var (
	requestBuckets  = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	upstreamBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
)

// Metrics holds authgate's collectors. Its methods are safe for concurrent use.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	routes   atomic.Pointer[map[string]*route] // copy on write
	mu       sync.Mutex                        // serialises writers of routes

	decisions      *prometheus.CounterVec
	decisionByName map[string]prometheus.Counter

	introspections map[string]prometheus.Counter
	introspectionD prometheus.Histogram
	cache          [6]prometheus.Counter // by authn.Lookup: miss, hit, coalesced; stale never; the shared ones with REDIS_URL (Fleet)
	cacheVec       *prometheus.CounterVec
	cacheEvictions prometheus.Counter
	transitions    *prometheus.CounterVec
	opaRequests    map[string]prometheus.Counter
	opaDuration    prometheus.Histogram
	// Without labels, as vectors: no series until the server has sent the
	// headers, rather than a 0 that reads as "limit reached".
	rateLimit       *prometheus.GaugeVec
	rateLimitRemain *prometheus.GaugeVec
	budgetClient    prometheus.Counter
	budgetGlobal    prometheus.Counter
	jwtValidations  map[string]prometheus.Counter
	jwksFetches     map[string]prometheus.Counter
	revokeRequests  map[string]prometheus.Counter
	revokeVec       *prometheus.CounterVec

	fleet fleetMetrics // fleet.go: REDIS_URL and POST /revoke

	// issuer.go: the per-issuer series.
	byIssuer issuerVecs
	issuers  atomic.Pointer[map[string]*Issuer] // copy on write, under mu

	reg prometheus.Registerer
}

// New registers authgate's metrics, and the Go runtime and process
// collectors, on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{reg: reg}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_http_requests_total",
		Help: "Requests answered on the traffic listener, by route template, method and status code.",
	}, []string{"route", "method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "authgate_http_request_duration_seconds",
		Help:    "Time to answer a request on the traffic listener, by route template.",
		Buckets: requestBuckets,
	}, []string{"route"})
	empty := map[string]*route{}
	m.routes.Store(&empty)

	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_decisions_total",
		Help: "Checked requests by outcome: allow, deny, invalid_token, no_token, bad_request, unavailable.",
	}, []string{"outcome"})
	m.decisionByName = children(m.decisions, outcomes)

	introspections := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_introspection_requests_total",
		Help: "Calls to the introspection endpoint by result: active, inactive, error.",
	}, []string{"result"})
	m.introspections = children(introspections, introspectionResults)
	m.introspectionD = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "authgate_introspection_duration_seconds",
		Help:    "Duration of calls to the introspection endpoint.",
		Buckets: upstreamBuckets,
	})

	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_cache_requests_total",
		Help: "Token lookups by how the cache answered: hit, miss (this request introspected), coalesced (waited for another request's introspection).",
	}, []string{"result"})
	m.cacheVec = cache
	for _, l := range []authn.Lookup{authn.Miss, authn.Hit, authn.Coalesced} {
		m.cache[l] = cache.WithLabelValues(l.String())
	}
	m.cacheEvictions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "authgate_cache_evictions_total",
		Help: "Cache entries pushed out to make room (expiries are not counted).",
	})

	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_breaker_transitions_total",
		Help: "Circuit breaker transitions by upstream (idp, opa) and new state (closed, half-open, open).",
	}, []string{"upstream", "to"})
	for _, u := range []string{"idp", "opa"} {
		for _, s := range []breaker.State{breaker.Closed, breaker.HalfOpen, breaker.Open} {
			m.transitions.WithLabelValues(u, s.String())
		}
	}

	opaRequests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_opa_requests_total",
		Help: "Decision queries sent to OPA by result: allow, deny, undefined, error.",
	}, []string{"result"})
	m.opaRequests = children(opaRequests, opaResults)
	m.opaDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "authgate_opa_duration_seconds",
		Help:    "Duration of decision queries sent to OPA.",
		Buckets: upstreamBuckets,
	})

	m.rateLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authgate_idp_rate_limit_limit",
		Help: "The authorization server's rate limit (X-Rate-Limit-Limit of its last answer that had one).",
	}, nil)
	m.rateLimitRemain = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authgate_idp_rate_limit_remaining",
		Help: "Requests left in the authorization server's current rate-limit window (X-Rate-Limit-Remaining of its last answer that had one).",
	}, nil)

	budget := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_introspection_budget_rejections_total",
		Help: "Unknown tokens refused without asking the authorization server, by the budget spent: client (OKTA_MAX_RPS_PER_CLIENT) or global (OKTA_MAX_RPS).",
	}, []string{"scope"})
	m.budgetClient, m.budgetGlobal = budget.WithLabelValues("client"), budget.WithLabelValues("global")

	jwtValidations := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_jwt_validations_total",
		Help: "JWT access tokens validated locally by result: valid, invalid, unknown_key (kid not in the issuer's keys, or keys unavailable).",
	}, []string{"result"})
	m.jwtValidations = children(jwtValidations, jwtResults)
	jwksFetches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_jwks_fetches_total",
		Help: "Fetches of the issuer's JWKS by result: ok, error.",
	}, []string{"result"})
	m.jwksFetches = children(jwksFetches, jwksResults)
	m.revokeVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_revoke_requests_total",
		Help: "POST /revoke requests on the admin listener by result: revoked, upstream_error (revoked here, the IdP's revocation failed), bad_request, unauthorized (ADMIN_API_TOKEN missing or wrong).",
	}, []string{"result"})
	m.revokeRequests = children(m.revokeVec, revokeResults)

	reg.MustRegister(m.requests, m.duration, m.decisions, introspections, m.introspectionD,
		cache, m.cacheEvictions, m.transitions, opaRequests, m.opaDuration, m.rateLimit, m.rateLimitRemain, budget,
		jwtValidations, jwksFetches, m.revokeVec,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(m.newIssuerVecs()...)
	return m
}

// children resolves one child per label value, so that the series exist
// (at 0) from the start and the hot path does no label hashing.
func children(v *prometheus.CounterVec, values []string) map[string]prometheus.Counter {
	m := make(map[string]prometheus.Counter, len(values))
	for _, s := range values {
		m[s] = v.WithLabelValues(s)
	}
	return m
}

// route holds the children of one route template.
type route struct {
	duration prometheus.Observer
	counts   [len(methods)]atomic.Pointer[[]codeCounter] // copy on write, by method
	mu       sync.Mutex
}

type codeCounter struct {
	code    int
	counter prometheus.Counter
}

// Request counts one answered request. route is the route template
// ("" when no route matched), never the raw path.
func (m *Metrics) Request(routeName, method string, code int, d time.Duration) {
	if routeName == "" {
		routeName = UnmatchedRoute
	}
	r := (*m.routes.Load())[routeName]
	if r == nil {
		r = m.addRoute(routeName)
	}
	r.duration.Observe(d.Seconds())
	r.counter(m, routeName, methodIndex(method), code).Inc()
}

func (m *Metrics) addRoute(name string) *route {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.routes.Load()
	if r := old[name]; r != nil {
		return r
	}
	r := &route{duration: m.duration.WithLabelValues(name)}
	next := maps.Clone(old)
	next[name] = r
	m.routes.Store(&next)
	return r
}

// counter returns the child for (method, code); the codes seen by one
// route and method are few, so a linear scan beats a map.
func (r *route) counter(m *Metrics, name string, method, code int) prometheus.Counter {
	if cs := r.counts[method].Load(); cs != nil {
		for _, c := range *cs {
			if c.code == code {
				return c.counter
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var old []codeCounter
	if cs := r.counts[method].Load(); cs != nil {
		old = *cs
		for _, c := range old {
			if c.code == code {
				return c.counter
			}
		}
	}
	c := m.requests.WithLabelValues(name, methods[method], strconv.Itoa(code))
	next := append(append(make([]codeCounter, 0, len(old)+1), old...), codeCounter{code, c})
	r.counts[method].Store(&next)
	return c
}

// Decision counts one checked request by outcome.
func (m *Metrics) Decision(outcome string) {
	if c, ok := m.decisionByName[outcome]; ok {
		c.Inc()
		return
	}
	// Outcomes are constants of the gateway, never client input: bounded.
	m.decisions.WithLabelValues(outcome).Inc()
}

// CacheLookup counts how the cache answered one token lookup. Results
// beyond the three pre-resolved ones (such as a stale answer) are counted
// under their name, a series that appears when first used.
func (m *Metrics) CacheLookup(l authn.Lookup) {
	if int(l) < len(m.cache) && m.cache[l] != nil {
		m.cache[l].Inc()
		return
	}
	m.cacheVec.WithLabelValues(l.String()).Inc()
}

// Introspection counts one call to the introspection endpoint; its
// signature is authn.Introspection's OnResult.
func (m *Metrics) Introspection(result string, d time.Duration) {
	if c, ok := m.introspections[result]; ok {
		c.Inc()
	}
	m.introspectionD.Observe(d.Seconds())
}

// ClientBudgetRejected counts an unknown token refused because its client
// spent its own budget (authn.ClientLimited's OnRefuse).
func (m *Metrics) ClientBudgetRejected() { m.budgetClient.Inc() }

// GlobalBudgetRejected counts an unknown token refused because the global
// budget is spent (authn.RateLimited's OnRefuse).
func (m *Metrics) GlobalBudgetRejected() { m.budgetGlobal.Inc() }

// RateLimit records the authorization server's X-Rate-Limit-* values; its
// signature is authn.Introspection's OnRateLimit.
func (m *Metrics) RateLimit(rl introspect.RateLimit) {
	if rl.Limit >= 0 {
		m.rateLimit.WithLabelValues().Set(float64(rl.Limit))
	}
	if rl.Remaining >= 0 {
		m.rateLimitRemain.WithLabelValues().Set(float64(rl.Remaining))
	}
}

// OPA counts one decision query: result is allow, deny, undefined or error.
func (m *Metrics) OPA(result string, d time.Duration) {
	if c, ok := m.opaRequests[result]; ok {
		c.Inc()
	}
	m.opaDuration.Observe(d.Seconds())
}

// JWTValidation counts one local JWT validation: valid, invalid or
// unknown_key; its signature is jwtauth.Verifier's OnResult.
func (m *Metrics) JWTValidation(result string) {
	if c, ok := m.jwtValidations[result]; ok {
		c.Inc()
	}
}

// JWKSFetch counts one fetch of the issuer's JWKS: ok or error.
func (m *Metrics) JWKSFetch(result string) {
	if c, ok := m.jwksFetches[result]; ok {
		c.Inc()
	}
}

// RevokeRequest counts one POST /revoke by result (revokeResults); a
// refused ADMIN_API_TOKEN is "unauthorized", the series to alert on.
func (m *Metrics) RevokeRequest(result string) {
	if c, ok := m.revokeRequests[result]; ok {
		c.Inc()
	} else {
		m.revokeVec.WithLabelValues(result).Inc() // the gateway's constants: bounded
	}
}

// CacheEvicted counts one entry pushed out for room; its signature is
// authn.CacheSettings' OnEvict.
func (m *Metrics) CacheEvicted() { m.cacheEvictions.Inc() }

// BreakerTransition counts one state change. gobreaker calls it under its
// lock, so it only increments a counter.
func (m *Metrics) BreakerTransition(upstream string, _, to breaker.State) {
	m.transitions.WithLabelValues(upstream, to.String()).Inc()
}

// WatchCache registers authgate_cache_entries, read from entries when scraped.
func (m *Metrics) WatchCache(entries func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "authgate_cache_entries",
		Help: "Entries in the token cache, active and inactive.",
	}, func() float64 { return float64(entries()) }))
}

// WatchBreaker registers authgate_breaker_state{upstream=b.Name()}, read when
// scraped: gobreaker moves an open breaker to half-open only when asked.
func (m *Metrics) WatchBreaker(b *breaker.Breaker) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "authgate_breaker_state",
		Help:        "Circuit breaker state by upstream: 0 closed, 1 half-open, 2 open.",
		ConstLabels: prometheus.Labels{"upstream": b.Name()},
	}, func() float64 { return float64(b.State()) }))
}
