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

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/metrics"
	"github.com/authgate/authgate/pkg/opa"
)

// benchHarness is the harness without what a benchmark must not pay for:
// no fake metrics, no identity headers, OPA's documents not kept; the log
// is JSON to io.Discard. opts change Deps after that.
func benchHarness(b *testing.B, opts ...func(*Deps)) *harness {
	b.Helper()
	quiet := func(d *Deps) {
		d.Metrics, d.Identity = nil, IdentityHeaders{}
		d.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	h := newHarness(b, append([]func(*Deps){quiet}, opts...)...)
	h.opa.QueryFn = func(context.Context, []byte) (opa.Result, error) { return allow, nil }
	return h
}

func benchServe(b *testing.B, h *harness) {
	handler := h.g.Traffic()
	req := newRequest(http.MethodGet, "/sayhello", "Authorization", bearer, "User-Agent", "bench")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}

// BenchmarkCheck is one allowed request through the traffic handler, with
// the token cache and OPA's Data API faked: the gateway's own cost.
func BenchmarkCheck(b *testing.B) { benchServe(b, benchHarness(b)) }

// BenchmarkCheckObserved adds Prometheus metrics on a fresh registry.
func BenchmarkCheckObserved(b *testing.B) {
	benchServe(b, benchHarness(b, func(d *Deps) { d.Metrics = metrics.New(prometheus.NewRegistry()) }))
}

// BenchmarkCheckQuiet is BenchmarkCheckObserved with LOG_LEVEL=warn: no access log.
func BenchmarkCheckQuiet(b *testing.B) {
	benchServe(b, benchHarness(b, func(d *Deps) {
		d.Metrics = metrics.New(prometheus.NewRegistry())
		d.Log = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}))
}

// BenchmarkAccessLog is the cost of one access-log line, JSON to io.Discard.
func BenchmarkAccessLog(b *testing.B) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	req := httptest.NewRequest(http.MethodGet, "/sayhello", nil)
	resp := echo.NewResponse(httptest.NewRecorder(), echo.New())
	resp.Status, resp.Size = 200, 27
	rec := &record{outcome: "allow", subject: "demo", clientID: "demo", looked: true, introspect: time.Microsecond, opa: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		accessLog(log, req, "/sayhello", "3fcbcf2804aafb7d20bc7172f63889e6", resp, time.Millisecond, rec, nil)
	}
}

// BenchmarkProxy is one allowed request in proxy mode, to an upstream on
// loopback: the gateway's cost plus httputil.ReverseProxy's and the
// transport's.
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ok":true}`)) }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	h := benchHarness(b, func(d *Deps) {
		d.Upstream, d.UpstreamTimeout, d.Identity = u, time.Second, testIdentity
	})
	handler := h.g.Traffic()
	req := newRequest(http.MethodGet, "/api/items", "Authorization", bearer)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
