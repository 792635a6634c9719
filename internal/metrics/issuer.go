package metrics

import (
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/pkg/introspect"
)

// Several issuers (docs/issuers.md): what one issuer's chain does, again
// by issuer: its introspections, token lookups, local JWT validations,
// JWKS fetches, budget refusals and the rate limit its server reports. The
// metrics without the label stay as they were (the sum over the issuers,
// or the last answer for the rate-limit gauges), so that no dashboard of a
// single-issuer deployment changes; these add the split. The issuer label
// is an issuer's configured name (primary, or an ISSUERS name): bounded by
// the configuration, never read from a token.

// issuerVecs are the per-issuer vectors.
type issuerVecs struct {
	introspections, cache, jwt, jwks, budget *prometheus.CounterVec
	rateLimit, rateLimitRemain               *prometheus.GaugeVec
}

// Issuer counts what one issuer's chain does, under its issuer and in the
// totals; Metrics.AddIssuer makes it. Its methods have the signatures of
// the chain's callbacks (authn.Introspection's OnResult and OnRateLimit,
// jwtauth.Verifier's OnResult, jwtauth.KeySettings' OnFetch result, the
// budgets' OnRefuse).
type Issuer struct {
	m              *Metrics
	introspections map[string]prometheus.Counter
	cache          [len(Metrics{}.cache)]prometheus.Counter // by authn.Lookup, as Metrics.cache
	jwt, jwks      map[string]prometheus.Counter
	budget         prometheus.Counter
	name           string
}

// newIssuerVecs registers the per-issuer vectors; New calls it.
func (m *Metrics) newIssuerVecs() []prometheus.Collector {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"issuer"})
	}
	m.byIssuer = issuerVecs{
		introspections: counter("authgate_issuer_introspection_requests_total",
			"Calls to an issuer's introspection endpoint by issuer (primary, or an ISSUERS name) and result: active, inactive, error.", "issuer", "result"),
		cache: counter("authgate_issuer_cache_requests_total",
			"Token lookups by the issuer the token went to (primary, or an ISSUERS name) and how its cache answered, as authgate_cache_requests_total.", "issuer", "result"),
		jwt: counter("authgate_issuer_jwt_validations_total",
			"JWTs validated locally by issuer (primary, or an ISSUERS name) and result: valid, invalid, unknown_key.", "issuer", "result"),
		jwks: counter("authgate_issuer_jwks_fetches_total",
			"Fetches of an issuer's JWKS by issuer (primary, or an ISSUERS name) and result: ok, error.", "issuer", "result"),
		budget: counter("authgate_issuer_introspection_budget_rejections_total",
			"Unknown tokens refused without asking the issuer because its own budget (OKTA_MAX_RPS, ISSUER_N_MAX_RPS) is spent, by issuer.", "issuer"),
		rateLimit: gauge("authgate_issuer_idp_rate_limit_limit",
			"X-Rate-Limit-Limit from the issuer's last introspection answer that had it, by issuer."),
		rateLimitRemain: gauge("authgate_issuer_idp_rate_limit_remaining",
			"X-Rate-Limit-Remaining from the issuer's last introspection answer that had it, by issuer."),
	}
	empty := map[string]*Issuer{}
	m.issuers.Store(&empty)
	v := &m.byIssuer
	return []prometheus.Collector{v.introspections, v.cache, v.jwt, v.jwks, v.budget, v.rateLimit, v.rateLimitRemain}
}

// AddIssuer resolves the series of the issuer named name, once, before
// serving (the token side calls it for each issuer it builds): every
// counter's series are present from the start; the rate-limit gauges
// appear with the issuer's first answer that carries them.
func (m *Metrics) AddIssuer(name string) *Issuer {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.issuers.Load()
	if s, ok := old[name]; ok {
		return s
	}
	v, of := &m.byIssuer, prometheus.Labels{"issuer": name}
	s := &Issuer{m: m, name: name,
		introspections: children(v.introspections.MustCurryWith(of), introspectionResults),
		jwt:            children(v.jwt.MustCurryWith(of), jwtResults),
		jwks:           children(v.jwks.MustCurryWith(of), jwksResults),
		budget:         v.budget.WithLabelValues(name)}
	// The results the unlabelled counter resolved (the shared ones too
	// once Fleet said REDIS_URL is set): a lookup resolves no child.
	for l, c := range m.cache {
		if c != nil {
			s.cache[l] = v.cache.WithLabelValues(name, authn.Lookup(l).String())
		}
	}
	next := maps.Clone(old)
	next[name] = s
	m.issuers.Store(&next)
	return s
}

// Introspection counts one call to the issuer's introspection endpoint,
// here and in authgate_introspection_requests_total.
func (s *Issuer) Introspection(result string, d time.Duration) {
	s.m.Introspection(result, d)
	if c, ok := s.introspections[result]; ok {
		c.Inc()
	}
}

// JWTValidation counts one local validation of the issuer's JWTs, here
// and in authgate_jwt_validations_total.
func (s *Issuer) JWTValidation(result string) {
	s.m.JWTValidation(result)
	if c, ok := s.jwt[result]; ok {
		c.Inc()
	}
}

// JWKSFetch counts one fetch of the issuer's JWKS, here and in
// authgate_jwks_fetches_total.
func (s *Issuer) JWKSFetch(result string) {
	s.m.JWKSFetch(result)
	if c, ok := s.jwks[result]; ok {
		c.Inc()
	}
}

// BudgetRejected counts an unknown token refused because the issuer's own
// budget is spent, here and in authgate_introspection_budget_rejections_total
// {scope="global"}.
func (s *Issuer) BudgetRejected() {
	s.m.GlobalBudgetRejected()
	s.budget.Inc()
}

// RateLimit records the issuer's X-Rate-Limit-* values, here and in the
// gauges without the label (which hold the last answer of any issuer).
func (s *Issuer) RateLimit(rl introspect.RateLimit) {
	s.m.RateLimit(rl)
	if rl.Limit >= 0 {
		s.m.byIssuer.rateLimit.WithLabelValues(s.name).Set(float64(rl.Limit))
	}
	if rl.Remaining >= 0 {
		s.m.byIssuer.rateLimitRemain.WithLabelValues(s.name).Set(float64(rl.Remaining))
	}
}

// IssuerCacheLookup counts how the cache of the issuer named issuer
// answered one token lookup (authgate_issuer_cache_requests_total); an
// issuer AddIssuer never named is not counted.
func (m *Metrics) IssuerCacheLookup(l authn.Lookup, issuer string) {
	s := (*m.issuers.Load())[issuer]
	if s == nil {
		return
	}
	if int(l) < len(s.cache) && s.cache[l] != nil {
		s.cache[l].Inc()
		return
	}
	m.byIssuer.cache.WithLabelValues(issuer, l.String()).Inc()
}
