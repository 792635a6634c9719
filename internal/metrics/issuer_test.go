package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/pkg/introspect"
)

// TestIssuerSeries: what an issuer's chain counts through its Issuer
// counts under its issuer and in the total; a lookup under its issuer only
// when AddIssuer named it (a label value is never read from a request);
// AddIssuer twice keeps one set of series; every counter's series are
// there from the start, the rate-limit gauges from the first answer that
// had them.
func TestIssuerSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	primary, org := m.AddIssuer("primary"), m.AddIssuer("org")
	if m.AddIssuer("org") != org {
		t.Error("AddIssuer twice made a second Issuer")
	}
	for _, name := range []string{"authgate_issuer_jwt_validations_total", "authgate_issuer_jwks_fetches_total",
		"authgate_issuer_introspection_budget_rejections_total", "authgate_issuer_idp_rate_limit_remaining"} {
		want := map[string]int{"authgate_issuer_jwt_validations_total": 2 * 3, "authgate_issuer_jwks_fetches_total": 2 * 2,
			"authgate_issuer_introspection_budget_rejections_total": 2}[name]
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != want {
			t.Errorf("%s: %d series before any count, want %d (%v)", name, n, want, err)
		}
	}
	primary.Introspection("active", time.Millisecond)
	org.Introspection("active", time.Millisecond)
	org.Introspection("inactive", time.Millisecond)
	org.JWTValidation("valid")
	org.JWTValidation("unknown_key")
	primary.JWKSFetch("ok")
	org.JWKSFetch("error")
	org.BudgetRejected()
	org.RateLimit(introspect.RateLimit{Limit: 600, Remaining: 42})
	primary.RateLimit(introspect.RateLimit{Limit: 1200, Remaining: -1})
	m.IssuerCacheLookup(authn.Hit, "org")
	m.IssuerCacheLookup(authn.Stale, "org")
	m.IssuerCacheLookup(authn.Hit, "nobody")

	v := &m.byIssuer
	for _, c := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{v.introspections.WithLabelValues("primary", "active"), 1},
		{v.introspections.WithLabelValues("org", "active"), 1},
		{v.introspections.WithLabelValues("org", "inactive"), 1},
		{m.introspections["active"], 2},
		{v.cache.WithLabelValues("org", "hit"), 1},
		{v.cache.WithLabelValues("org", "stale"), 1},
		{v.jwt.WithLabelValues("org", "valid"), 1},
		{v.jwt.WithLabelValues("org", "unknown_key"), 1},
		{v.jwt.WithLabelValues("primary", "valid"), 0},
		{m.jwtValidations["valid"], 1},
		{v.jwks.WithLabelValues("primary", "ok"), 1},
		{v.jwks.WithLabelValues("org", "error"), 1},
		{m.jwksFetches["error"], 1},
		{v.budget.WithLabelValues("org"), 1},
		{v.budget.WithLabelValues("primary"), 0},
		{m.budgetGlobal, 1},
		{v.rateLimit.WithLabelValues("org"), 600},
		{v.rateLimitRemain.WithLabelValues("org"), 42},
		{v.rateLimit.WithLabelValues("primary"), 1200},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%v = %v, want %v", c.c, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(v.cache); n != 2*3+1 {
		t.Errorf("cache series = %d, want 7 (miss, hit, coalesced of two issuers, and org's stale): nobody's never counted", n)
	}
	if n := testutil.CollectAndCount(v.rateLimitRemain); n != 1 {
		t.Errorf("remaining series = %d, want 1: the primary's answer had no X-Rate-Limit-Remaining", n)
	}
}

// TestIssuerSharedLookups: with REDIS_URL (Fleet(true) before AddIssuer,
// as the app calls them) an issuer's shared_hit and shared_coalesced
// series are resolved with the others, as the unlabelled counter's are:
// present from the start, and counted without a lookup in the vector.
func TestIssuerSharedLookups(t *testing.T) {
	m := New(prometheus.NewRegistry())
	m.Fleet(true)
	m.AddIssuer("org")
	if n := testutil.CollectAndCount(m.byIssuer.cache); n != 5 {
		t.Errorf("cache series = %d, want 5 (miss, hit, coalesced, shared_hit, shared_coalesced)", n)
	}
	m.IssuerCacheLookup(authn.SharedHit, "org")
	if got := testutil.ToFloat64(m.byIssuer.cache.WithLabelValues("org", "shared_hit")); got != 1 {
		t.Errorf("shared_hit = %v, want 1", got)
	}
}
