package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/authn"
)

// Label values of the shared tier's metrics (package fleet names them).
var (
	redisOps     = []string{"claim", "put", "delete", "revoke", "budget", "publish", "ping", "rotation"}
	redisResults = []string{"ok", "miss", "error", "breaker_open"}
	revokeSource = []string{"api", "pubsub"}
	// rejected are the (what, reason) pairs package fleet reports.
	rejected = [][2]string{{"message", "forged"}, {"message", "stale"}, {"answer", "forged"}, {"answer", "ended"},
		{"tombstone", "forged"}, {"tombstone", "ended"}, {"budget", "corrupt"}, {"reply", "unexpected"}}
)

// fleetMetrics are the metrics of several replicas: absent until Fleet
// registers them.
type fleetMetrics struct {
	redis       map[[2]string]prometheus.Counter
	redisVec    *prometheus.CounterVec
	duration    map[string]prometheus.Observer
	durationVec *prometheus.HistogramVec
	revocations map[string]prometheus.Counter
	rejected    map[[2]string]prometheus.Counter
}

// Fleet registers the metrics of push revocation
// (authgate_revocations_total) and, when shared (REDIS_URL), those of the
// shared tier: authgate_redis_requests_total{op,result},
// authgate_redis_duration_seconds{op} and the shared_hit and
// shared_coalesced results of authgate_cache_requests_total, and
// authgate_redis_rejected_total{what,reason}. It is called
// once, before serving.
func (m *Metrics) Fleet(shared bool) {
	f := &m.fleet
	rev := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_revocations_total",
		Help: "Tokens revoked by source: api (POST /revoke on this replica), pubsub (announced by another replica).",
	}, []string{"source"})
	f.revocations = children(rev, revokeSource)
	m.reg.MustRegister(rev)
	if !shared {
		return
	}
	for _, l := range []authn.Lookup{authn.SharedHit, authn.SharedCoalesced} {
		m.cache[l] = m.cacheVec.WithLabelValues(l.String())
	}
	f.redisVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_redis_requests_total",
		Help: "Calls to Redis (the shared tier) by op and result: ok, miss, error, breaker_open (not sent).",
	}, []string{"op", "result"})
	f.durationVec = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "authgate_redis_duration_seconds",
		Help:    "Duration of calls to Redis (the shared tier), by op.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
	}, []string{"op"})
	f.redis = map[[2]string]prometheus.Counter{}
	f.duration = map[string]prometheus.Observer{}
	for _, op := range redisOps {
		f.duration[op] = f.durationVec.WithLabelValues(op)
		for _, r := range redisResults {
			f.redis[[2]string{op, r}] = f.redisVec.WithLabelValues(op, r)
		}
	}
	rej := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_redis_rejected_total",
		Help: "Things read from Redis and not believed, by what (message, answer, tombstone, budget, reply) and reason: " +
			"forged (no proof of the fleet key), stale (a message sent too long ago), ended (an answer or tombstone over), " +
			"corrupt (budget state out of bounds, reset), unexpected (a reply of the wrong shape).",
	}, []string{"what", "reason"})
	f.rejected = map[[2]string]prometheus.Counter{}
	for _, r := range rejected {
		f.rejected[r] = rej.WithLabelValues(r[0], r[1])
	}
	m.reg.MustRegister(f.redisVec, f.durationVec, rej)
}

// Rejected counts one thing read from Redis and not believed
// (fleet.Observer). Pairs are package fleet's constants: bounded.
func (m *Metrics) Rejected(what, reason string) {
	if c, ok := m.fleet.rejected[[2]string{what, reason}]; ok {
		c.Inc()
	}
}

// Redis counts one call to Redis (fleet.Observer). A call not sent (the
// breaker open) has no duration.
func (m *Metrics) Redis(op, result string, d time.Duration) {
	f := &m.fleet
	if f.redis == nil {
		return
	}
	if c, ok := f.redis[[2]string{op, result}]; ok {
		c.Inc()
	} else {
		f.redisVec.WithLabelValues(op, result).Inc() // ops are package fleet's constants: bounded
	}
	if result == "breaker_open" {
		return
	}
	if o, ok := f.duration[op]; ok {
		o.Observe(d.Seconds())
	} else {
		f.durationVec.WithLabelValues(op).Observe(d.Seconds())
	}
}

// Revocation counts one revoked token by source, api or pubsub
// (fleet.Observer).
func (m *Metrics) Revocation(source string) {
	if c, ok := m.fleet.revocations[source]; ok {
		c.Inc()
	}
}
