package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/authn"
)

// Several issuers (docs/issuers.md): the introspections and token lookups
// again, by issuer. The metrics without the label stay as they were (the
// sum over the issuers), so that no dashboard of a single-issuer
// deployment changes; these add the split. The issuer label is an issuer's
// configured name (primary, or an ISSUERS name): bounded by the
// configuration, never read from a token.

// issuerSeries are one issuer's children, resolved by AddIssuer.
type issuerSeries struct {
	introspections map[string]prometheus.Counter
	cache          [len(Metrics{}.cache)]prometheus.Counter // by authn.Lookup, as Metrics.cache
}

// issuerVecs registers the per-issuer vectors; New calls it.
func (m *Metrics) issuerVecs() []prometheus.Collector {
	m.introspectionsByIssuer = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_issuer_introspection_requests_total",
		Help: "Calls to an issuer's introspection endpoint by issuer (primary, or an ISSUERS name) and result: active, inactive, error.",
	}, []string{"issuer", "result"})
	m.cacheByIssuer = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_issuer_cache_requests_total",
		Help: "Token lookups by the issuer the token went to (primary, or an ISSUERS name) and how its cache answered, as authgate_cache_requests_total.",
	}, []string{"issuer", "result"})
	empty := map[string]*issuerSeries{}
	m.issuers.Store(&empty)
	return []prometheus.Collector{m.introspectionsByIssuer, m.cacheByIssuer}
}

// AddIssuer resolves the series of the issuer named name, once, before
// serving (the token side calls it for each issuer it builds); it returns
// the issuer's introspection counter, in the signature of
// authn.Introspection's OnResult, which counts the call under
// authgate_introspection_requests_total too.
func (m *Metrics) AddIssuer(name string) func(result string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.issuers.Load()
	s, ok := old[name]
	if !ok {
		s = &issuerSeries{introspections: map[string]prometheus.Counter{}}
		for _, r := range introspectionResults {
			s.introspections[r] = m.introspectionsByIssuer.WithLabelValues(name, r)
		}
		for _, l := range []authn.Lookup{authn.Miss, authn.Hit, authn.Coalesced} {
			s.cache[l] = m.cacheByIssuer.WithLabelValues(name, l.String())
		}
		next := make(map[string]*issuerSeries, len(old)+1)
		for k, v := range old {
			next[k] = v
		}
		next[name] = s
		m.issuers.Store(&next)
	}
	return func(result string, d time.Duration) {
		m.Introspection(result, d)
		if c, ok := s.introspections[result]; ok {
			c.Inc()
		}
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
	m.cacheByIssuer.WithLabelValues(issuer, l.String()).Inc()
}
