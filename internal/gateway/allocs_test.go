package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/authgate/authgate/pkg/opa"
)

// TestAllocations holds the measured allocation counts (BenchmarkCheck,
// BenchmarkProxy) as a ceiling: an allowed request in serve mode, and one through the
// reverse proxy, whose per-request state is the pooled record (its
// request's context carries it to the proxy's shared hooks: no copy of
// the reverse proxy, no Echo store).
func TestAllocations(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("allocation counts differ under the race detector")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	for _, tc := range []struct {
		name   string
		target string
		opts   func(*Deps)
		max    float64
	}{
		{"serve", "/sayhello", func(*Deps) {}, 18},
		{"proxy", "/api/items", func(d *Deps) { d.Upstream, d.UpstreamTimeout, d.Identity = u, time.Second, testIdentity }, 119},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(d *Deps) {
				d.Metrics, d.Identity = nil, IdentityHeaders{}
				d.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
			}, tc.opts)
			h.opa.QueryFn = func(context.Context, []byte) (opa.Result, error) { return allow, nil }
			handler := h.g.Traffic()
			req := newRequest(http.MethodGet, tc.target, "Authorization", bearer) // as the benchmarks send
			serve := func() {
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, req)
				if w.Code != 200 {
					t.Fatal(w.Code, w.Body.String())
				}
			}
			serve() // warm: pools, the upstream connection
			if n := testing.AllocsPerRun(200, serve); n > tc.max {
				t.Errorf("%v allocations a request, want at most %v", n, tc.max)
			}
		})
	}
}
