package fault_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
)

// fleetOf runs n replicas sharing the Redis at redisURL, in front of the
// stand-in IdP at idpURL and OPA at opaURL.
func fleetOf(t *testing.T, n int, redisURL, idpURL, opaURL string, extra ...string) []*stacktest.Gateway {
	t.Helper()
	var gws []*stacktest.Gateway
	for range n {
		gws = append(gws, stacktest.StartGateway(t, env(idpURL, opaURL, append([]string{"REDIS_URL", redisURL, "FLEET_KEY", stacktest.FleetKey}, extra...)...)))
	}
	return gws
}

// metric reads one sample line's value from gw's /metrics (-1 if absent).
func metric(t *testing.T, gw *stacktest.Gateway, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(stacktest.Get(t, gw.Metrics+"/metrics", "").Body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// TestFleetRateLimitHold: a 429 seen by one replica holds the others too,
// until the reset time: they do not ask the IdP meanwhile.
func TestFleetRateLimitHold(t *testing.T) {
	o := startOPA(t)
	r := stacktest.StartRedis(t)
	idp := newStandIn(t, introspection)
	gws := fleetOf(t, 3, r.URL, idp.srv.URL, o.URL)
	cached := freshToken(true)
	for _, gw := range gws {
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", cached), want{status: 200})
	}
	reset := time.Now().Add(4 * time.Second).Truncate(time.Second).Add(time.Second)
	idp.set(status(429, ``, "X-Rate-Limit-Limit", "600", "X-Rate-Limit-Remaining", "0",
		"X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10)))
	check(t, stacktest.Get(t, gws[0].Traffic+"/sayhello", freshToken(true)), want{status: 503, code: "temporarily_unavailable", retryAfter: "*"})
	idp.set(introspection) // Okta would answer again only after the reset
	calls := idp.calls.Load()
	for k, gw := range gws[1:] {
		stacktest.Eventually(t, time.Second, "the other replicas hold", func() bool {
			return strings.Contains(stacktest.Get(t, gw.Admin+"/readyz", "").Body, `"idp":"rate limited"`)
		})
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), want{status: 503, code: "temporarily_unavailable", retryAfter: "*"})
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", cached), want{status: 200})
		if got := idp.calls.Load(); got != calls {
			t.Errorf("replica %d asked the IdP during another's hold (%d calls)", k+1, got-calls)
		}
	}
}

// TestFleetBudget: OKTA_MAX_RPS is one budget for two replicas.
func TestFleetBudget(t *testing.T) {
	o := startOPA(t)
	r := stacktest.StartRedis(t)
	idp := newStandIn(t, introspection)
	gws := fleetOf(t, 2, r.URL, idp.srv.URL, o.URL, "OKTA_MAX_RPS", "2")
	start := time.Now()
	allowed := 0
	for k := range 12 {
		res := stacktest.Get(t, gws[k%2].Traffic+"/sayhello", freshToken(true))
		switch res.Status {
		case 200:
			allowed++
		default:
			check(t, res, want{status: 503, code: "temporarily_unavailable", retryAfter: "1-1"})
		}
	}
	if limit := 2 + int(2*time.Since(start).Seconds()); allowed > limit {
		t.Errorf("%d allowed in %s by two replicas: the fleet's budget of 2/s did not hold", allowed, time.Since(start))
	}
	if got := idp.calls.Load(); got != int64(allowed) {
		t.Errorf("%d introspections, %d allowed", got, allowed)
	}
}

// TestFleetRedisDownUnderLoad: Redis killed under load, then restarted:
// no request fails because of it, and shared hits come back by themselves.
func TestFleetRedisDownUnderLoad(t *testing.T) {
	o := startOPA(t)
	r := stacktest.StartRedis(t)
	idp := newStandIn(t, introspection)
	gws := fleetOf(t, 2, r.URL, idp.srv.URL, o.URL, "OKTA_TIMEOUT", "2s")
	cached := freshToken(true)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent int
	failed := map[string]int{}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; !stop.Load(); k++ {
				tok := cached
				if k%2 == 0 {
					tok = freshToken(true)
				}
				res, err := stacktest.TryGet(http.DefaultClient, gws[(w+k)%2].Traffic+"/sayhello", tok)
				mu.Lock()
				sent++
				if err != nil {
					failed[err.Error()]++
				} else if res.Status != 200 {
					failed[strconv.Itoa(res.Status)+" "+res.Body]++
				}
				mu.Unlock()
			}
		}()
	}
	sentBy := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return sent >= n }
	}
	stacktest.Eventually(t, 10*time.Second, "load running", sentBy(200))
	r.Stop()
	mu.Lock()
	atStop := sent
	mu.Unlock()
	stacktest.Eventually(t, 10*time.Second, "load with Redis down", sentBy(atStop+300))
	r.Restart()
	mu.Lock()
	atRestart := sent
	mu.Unlock()
	stacktest.Eventually(t, 10*time.Second, "load after the restart", sentBy(atRestart+200))
	stop.Store(true)
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("failed requests (of %d): %v", sent, failed)
	}
	// The tier comes back by itself: a token introspected by one replica
	// is again a shared hit on the other.
	before := metric(t, gws[1], `authgate_cache_requests_total{result="shared_hit"}`)
	stacktest.Eventually(t, 5*time.Second, "shared hits again after the restart", func() bool {
		tok := freshToken(true)
		check(t, stacktest.Get(t, gws[0].Traffic+"/sayhello", tok), want{status: 200})
		check(t, stacktest.Get(t, gws[1].Traffic+"/sayhello", tok), want{status: 200})
		return metric(t, gws[1], `authgate_cache_requests_total{result="shared_hit"}`) > before
	})
	if v := metric(t, gws[0], `authgate_redis_requests_total{op="claim",result="error"}`); v < 1 {
		t.Errorf("no failed Redis call counted while it was down: %v", v)
	}
}

// TestFleetSlowRedis: a Redis slower than REDIS_TIMEOUT costs at most the
// timeout, then nothing (the breaker opens; /readyz says so and stays 200),
// and the tier comes back when Redis does.
func TestFleetSlowRedis(t *testing.T) {
	o := startOPA(t)
	r := stacktest.StartRedis(t)
	proxy := stacktest.StartSlowProxy(t, r.Addr, 0)
	idp := newStandIn(t, introspection)
	gws := fleetOf(t, 2, "redis://"+proxy.Addr()+"/0", idp.srv.URL, o.URL, "REDIS_TIMEOUT", "50ms")
	proxy.SetDelay(2 * time.Second)
	for k := range 10 {
		start := time.Now()
		check(t, stacktest.Get(t, gws[k%2].Traffic+"/sayhello", freshToken(true)), want{status: 200})
		if d := time.Since(start); d > time.Second {
			t.Errorf("request %d took %s with a Redis 2s slow and REDIS_TIMEOUT=50ms", k, d)
		}
	}
	res := stacktest.Get(t, gws[0].Admin+"/readyz", "")
	if res.Status != 200 || !strings.Contains(res.Body, `"redis":"breaker open"`) {
		t.Errorf("/readyz with a slow Redis: %d %s", res.Status, res.Body)
	}
	proxy.SetDelay(0)
	stacktest.Eventually(t, 5*time.Second, "shared hits again once Redis is fast", func() bool {
		tok := freshToken(true)
		stacktest.Get(t, gws[0].Traffic+"/sayhello", tok)
		stacktest.Get(t, gws[1].Traffic+"/sayhello", tok)
		return metric(t, gws[1], `authgate_cache_requests_total{result="shared_hit"}`) > 0
	})
}

// TestFleetHostileRedis: a Redis that answers claims with replies of the
// wrong shape (a hit without a value, a hit with an integer), a wait that
// never ends, or a value that does not open, neither crashes a replica
// nor hangs or floods: every request is answered by the IdP, with a few
// Redis calls each.
func TestFleetHostileRedis(t *testing.T) {
	o := startOPA(t)
	idp := newStandIn(t, introspection)
	for _, tt := range []struct {
		name, claim string
		perRequest  int64
	}{
		{"hit without a value", "*1\r\n" + stacktest.Bulk("hit"), 1},
		{"hit with an integer", "*2\r\n" + stacktest.Bulk("hit") + ":5\r\n", 1},
		{"a value that does not open", "*2\r\n" + stacktest.Bulk("hit") + stacktest.Bulk("sealed-by-nobody"), 2},
		{"a wait that never ends", "*1\r\n" + stacktest.Bulk("wait"), 16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := stacktest.StartHostileRedis(t, tt.claim, "")
			gw := fleetOf(t, 1, h.URL, idp.srv.URL, o.URL, "OKTA_TIMEOUT", "500ms")[0]
			const requests = 3
			for k := range requests {
				start := time.Now()
				check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), want{status: 200})
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("request %d answered after %s", k, d)
				}
			}
			if n := h.Claims(); n < 1 || n > requests*tt.perRequest {
				t.Errorf("%d claims for %d requests, want 1 to %d", n, requests, requests*tt.perRequest)
			}
			if res := stacktest.Get(t, gw.Admin+"/readyz", ""); res.Status != 200 {
				t.Errorf("/readyz %d %s", res.Status, res.Body)
			}
		})
	}
}
