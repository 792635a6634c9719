package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/authgate/authgate/internal/authn"
)

// TestIssuerSeries: an introspection counted by an issuer's AddIssuer
// callback counts under its issuer and in the total; a lookup under its
// issuer only when AddIssuer named it (a label value is never read from a
// request); AddIssuer twice keeps one set of series.
func TestIssuerSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	primary, org := m.AddIssuer("primary"), m.AddIssuer("org")
	_ = m.AddIssuer("org")
	primary("active", time.Millisecond)
	org("active", time.Millisecond)
	org("inactive", time.Millisecond)
	m.IssuerCacheLookup(authn.Hit, "org")
	m.IssuerCacheLookup(authn.Stale, "org")
	m.IssuerCacheLookup(authn.Hit, "nobody")

	for _, c := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.introspectionsByIssuer.WithLabelValues("primary", "active"), 1},
		{m.introspectionsByIssuer.WithLabelValues("org", "active"), 1},
		{m.introspectionsByIssuer.WithLabelValues("org", "inactive"), 1},
		{m.introspections["active"], 2},
		{m.cacheByIssuer.WithLabelValues("org", "hit"), 1},
		{m.cacheByIssuer.WithLabelValues("org", "stale"), 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%v = %v, want %v", c.c, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.cacheByIssuer); n != 2*3+1 {
		t.Errorf("cache series = %d, want 7 (miss, hit, coalesced of two issuers, and org's stale): nobody's never counted", n)
	}
}
