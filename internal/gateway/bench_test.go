package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/metrics"
	"github.com/authgate/authgate/pkg/opa"
)

type benchTokens struct{ tok *authn.Token }

func (f benchTokens) Lookup(context.Context, string) (*authn.Token, authn.Lookup, error) {
	return f.tok, authn.Hit, nil
}

type benchOPA struct{}

func (benchOPA) Query(context.Context, []byte) (opa.Result, error) {
	return opa.Result{Defined: true, Value: json.RawMessage("true")}, nil
}

func benchDeps() Deps {
	tok := &authn.Token{Subject: "demo", ClientID: "demo", Scope: "read_sayhello", Scopes: []string{"read_sayhello"},
		Claims: json.RawMessage(`{"active":true,"scope":"read_sayhello","client_id":"demo","sub":"demo"}`)}
	return Deps{
		Tokens:     benchTokens{tok},
		OPA:        benchOPA{},
		OPABreaker: breaker.New(breaker.Settings{Name: "opa", Failures: 5, OpenTimeout: time.Second}),
		IdPBreaker: breaker.New(breaker.Settings{Name: "idp", Failures: 5, OpenTimeout: time.Second}),
		OPATimeout: time.Second,
		Log:        slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
}

func benchServe(b *testing.B, d Deps) {
	h := New(d).Traffic()
	req := httptest.NewRequest(http.MethodGet, "/sayhello", nil)
	req.Header.Set("Authorization", "Bearer abcdefghijklmnopqrstuvwxyz0123456789")
	req.Header.Set("User-Agent", "bench")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}

// BenchmarkCheck is one allowed request through the traffic handler, with
// the token cache and OPA faked: the gateway's own cost.
func BenchmarkCheck(b *testing.B) { benchServe(b, benchDeps()) }

// BenchmarkCheckObserved adds Prometheus metrics on a fresh registry.
func BenchmarkCheckObserved(b *testing.B) {
	d := benchDeps()
	d.Metrics = metrics.New(prometheus.NewRegistry())
	benchServe(b, d)
}

// BenchmarkCheckQuiet is BenchmarkCheckObserved with LOG_LEVEL=warn: no access log.
func BenchmarkCheckQuiet(b *testing.B) {
	d := benchDeps()
	d.Metrics = metrics.New(prometheus.NewRegistry())
	d.Log = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	benchServe(b, d)
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
	d := benchDeps()
	d.Upstream, d.UpstreamTimeout = u, time.Second
	d.Identity = IdentityHeaders{Subject: "X-Auth-Subject", ClientID: "X-Auth-Client-Id", Scopes: "X-Auth-Scopes"}
	h := New(d).Traffic()
	req := httptest.NewRequest(http.MethodGet, "/api/items", nil)
	req.Header.Set("Authorization", "Bearer abcdefghijklmnopqrstuvwxyz0123456789")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
