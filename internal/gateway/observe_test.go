package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	rfc6750 "github.com/authgate/authgate/internal/bearer"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/pathrule"
	"github.com/authgate/authgate/internal/requestid"
	"github.com/authgate/authgate/pkg/opa"
)

// sayhelloOnly is a policy that allows /sayhello only, naming its
// decision dec-1.
func sayhelloOnly(_ context.Context, in map[string]any) (opa.Result, error) {
	r := result(strconv.FormatBool(in["path"] == "/sayhello"))
	r.DecisionID = "dec-1"
	return r, nil
}

const bearer = "Bearer " + goodToken

func TestRequestID(t *testing.T) {
	cases := []struct {
		name string
		sent []string
		keep bool
	}{
		{"generated when absent", nil, false},
		{"client's kept", []string{"3f2a-client-id"}, true},
		{"malformed replaced", []string{"evil\"id with spaces"}, false},
		{"too long replaced", []string{strings.Repeat("a", requestid.MaxLen+1)}, false},
		{"two replaced", []string{"a", "b"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			var idpIDs, opaIDs []string // request ids in the lookup and OPA contexts
			h.tokens.LookupFn = func(ctx context.Context, token string) (*authn.Token, authn.Lookup, error) {
				id, _ := requestid.FromContext(ctx)
				idpIDs = append(idpIDs, id)
				return h.defaultLookup(ctx, token)
			}
			h.policy(func(ctx context.Context, in map[string]any) (opa.Result, error) {
				id, _ := requestid.FromContext(ctx)
				opaIDs = append(opaIDs, id)
				return sayhelloOnly(ctx, in)
			})
			req := newRequest(http.MethodGet, "/sayhello", "Authorization", bearer)
			if c.sent != nil {
				req.Header[requestid.Header] = c.sent
			}
			w := h.serve(h.g.Traffic(), req)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			id := w.Header().Get(requestid.Header)
			switch {
			case c.keep && id != c.sent[0]:
				t.Fatalf("response id %q, want the client's %q", id, c.sent[0])
			case !c.keep && (len(id) != 32 || (c.sent != nil && id == c.sent[0])):
				t.Fatalf("response id %q, want a fresh 32-hex id", id)
			}
			if len(idpIDs) != 1 || idpIDs[0] != id {
				t.Errorf("token lookup saw ids %q, want %q", idpIDs, id)
			}
			if len(opaIDs) != 1 || opaIDs[0] != id {
				t.Errorf("OPA saw ids %q, want %q", opaIDs, id)
			}
			if q := h.queries(); !bytes.Contains(q[0], []byte(`"x-request-id":"`+id+`"`)) {
				t.Errorf("OPA input headers lack the id: %s", q[0])
			}
			if l := h.lines(t); len(l) != 1 || l[0]["request_id"] != id {
				t.Errorf("access log: %v", l)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	h := newHarness(t)
	h.policy(sayhelloOnly)
	h.get("/sayhello", bearer)
	h.get("/saysecret", bearer)
	h.get("/sayhello", "")
	h.get("/sayhello", "Bearer "+inactiveToken)
	h.get("/no/such/path", bearer)

	lines := h.lines(t)
	if len(lines) != 5 {
		t.Fatalf("%d lines for 5 requests:\n%s", len(lines), h.logs)
	}
	want := []map[string]any{
		{"msg": "request", "level": "INFO", "method": "GET", "route": "/sayhello", "status": 200.0, "outcome": "allow",
			"subject": "alice", "client_id": "demo", "cache": "hit", "decision_id": "dec-1", "remote_addr": "192.0.2.1:1234",
			"validation": "introspection"},
		{"route": "/saysecret", "status": 403.0, "outcome": "deny", "decision_id": "dec-1"},
		{"route": "/sayhello", "status": 401.0, "outcome": "no_token", "reason": "no bearer token"},
		{"route": "/sayhello", "status": 401.0, "outcome": "invalid_token", "cache": "miss"},
		{"route": "unmatched", "status": 404.0},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v\n%v", i, k, lines[i][k], v, lines[i])
			}
		}
	}
	for _, k := range []string{"time", "request_id", "duration", "bytes", "introspect_duration", "opa_duration"} {
		if _, ok := lines[0][k]; !ok {
			t.Errorf("allow line lacks %s: %v", k, lines[0])
		}
	}
	if r := lines[1]["reason"]; r != "policy denied" {
		t.Errorf("deny reason %q", r)
	}
	if r := lines[3]["reason"]; r != "token is not active" {
		t.Errorf("inactive reason %q", r)
	}
	for _, k := range []string{"outcome", "subject", "cache", "opa_duration"} {
		if _, ok := lines[4][k]; ok {
			t.Errorf("unmatched route line has %s: %v", k, lines[4])
		}
	}
	if strings.Contains(h.logs.String(), goodToken) || strings.Contains(h.logs.String(), inactiveToken) {
		t.Errorf("a token appears in the log:\n%s", h.logs)
	}
}

func TestAccessLogLevel(t *testing.T) {
	h := newHarness(t, func(d *Deps) {
		d.Log = slog.New(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	if w := h.get("/sayhello", bearer); w.Code != 200 || w.Header().Get(requestid.Header) == "" {
		t.Fatalf("status %d, id %q", w.Code, w.Header().Get(requestid.Header))
	}
	if len(h.metrics.requests) != 1 {
		t.Error("metrics depend on the log level")
	}
}

func TestMetricsReported(t *testing.T) {
	h := newHarness(t)
	h.policy(sayhelloOnly)
	h.get("/sayhello", bearer)
	h.get("/saysecret", bearer)
	h.get("/sayhello", "")
	h.get("/sayhello/../../etc", bearer)
	h.serve(h.g.Traffic(), newRequest(http.MethodPost, "/sayhello", "Authorization", bearer))

	m := h.metrics
	wantReq := []string{"/sayhello GET OK", "/saysecret GET Forbidden", "/sayhello GET Unauthorized",
		" GET Not Found", "/sayhello POST Method Not Allowed"}
	if strings.Join(m.requests, "|") != strings.Join(wantReq, "|") {
		t.Errorf("requests %q, want %q", m.requests, wantReq)
	}
	if got := strings.Join(m.decisions, " "); got != "allow deny no_token" {
		t.Errorf("decisions %q", got)
	}
	if len(m.lookups) != 2 || m.lookups[0] != authn.Hit {
		t.Errorf("lookups %v", m.lookups)
	}
}

// /metrics and pprof are served on the metrics listener only: the admin
// listener, which a proxy must reach for /verify, exposes neither.
func TestAdminEndpoints(t *testing.T) {
	metricsBody := "authgate_up 1\n"
	get := func(gw *Gateway, path string) int {
		w := httptest.NewRecorder()
		gw.Metrics().ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Code
	}
	plain := newHarness(t).g
	if c := get(plain, "/debug/pprof/"); c != 404 {
		t.Errorf("pprof without PPROF=true: %d", c)
	}
	if c := get(plain, "/metrics"); c != 404 {
		t.Errorf("/metrics without a handler: %d", c)
	}
	full := newHarness(t, func(d *Deps) {
		d.PProf = true
		d.MetricsHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(metricsBody)) })
	}).g
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1", "/metrics"} {
		if c := get(full, p); c != 200 {
			t.Errorf("%s: %d", p, c)
		}
	}
	for name, h := range map[string]http.Handler{"traffic": full.Traffic(), "admin": full.Admin()} {
		for _, p := range []string{"/metrics", "/debug/pprof/"} {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, p, nil))
			if w.Code != 404 {
				t.Errorf("%s on the %s listener: %d", p, name, w.Code)
			}
		}
	}
}

// OPTIONS * (asterisk form) is refused with 400 and a log line on every
// listener, in every mode.
func TestAsteriskFormRefused(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Errorf("upstream got %s %s", r.Method, r.RequestURI) }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	for _, mode := range []string{"serve", "proxy"} {
		h := newHarness(t, func(d *Deps) {
			d.MetricsHandler = http.NotFoundHandler()
			d.PublicPaths = []pathrule.Rule{{Method: "OPTIONS", Path: "/", Prefix: true}}
			if mode == "proxy" {
				d.Upstream, d.UpstreamTimeout = u, time.Second
			}
		})
		for name, l := range map[string]http.Handler{"traffic": h.g.Traffic(), "admin": h.g.Admin(), "metrics": h.g.Metrics()} {
			h.logs.Reset()
			w := h.serve(l, newRequest(http.MethodOptions, "*"))
			if w.Code != 400 || w.Body.String() != `{"error":"invalid_request","error_description":"asterisk-form request target not supported"}`+"\n" || w.Header().Get("WWW-Authenticate") != "" {
				t.Errorf("%s %s: %d %s", mode, name, w.Code, w.Body)
			}
			lines := h.lines(t)
			if len(lines) != 1 || lines[0]["msg"] != "asterisk-form request refused" || lines[0]["listener"] != name {
				t.Errorf("%s %s: log %v", mode, name, lines)
			}
		}
	}
}

// TestClassify: observe names a failed request's outcome and reason once,
// from its error: the fault kind's outcome (the fault table) and its
// Reason; Echo's own errors (no route, 405) are no outcome.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		err             error
		outcome, reason string
	}{
		{rfc6750.ErrNoToken, "no_token", "no bearer token"},
		{&fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "empty bearer token"}, "bad_request", "empty bearer token"},
		{&fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token expired"}, "invalid_token", "token expired"},
		{&fault.Error{Kind: fault.Forbidden, Code: "access_denied", Description: "denied by policy", Err: denyReason("policy decision undefined")},
			"deny", "policy decision undefined"},
		{&fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable", Description: "opa unavailable", Err: fmt.Errorf("opa: %w", breaker.ErrOpen)},
			"unavailable", "opa unavailable: opa: breaker open"},
		{&fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable", Description: "authorization server rate limit reached"},
			"unavailable", "authorization server rate limit reached"},
		{authz.ErrHeadersTooLarge, "bad_request", "request headers too large for the policy: over 100 fields or 64 KiB"},
		{errors.New("boom"), "error", "boom"},
		{echo.ErrNotFound, "", ""},
		{fmt.Errorf("routing: %w", echo.ErrMethodNotAllowed), "", ""},
	} {
		var r record
		r.classify(c.err)
		if r.outcome != c.outcome || r.reason != c.reason {
			t.Errorf("%v: %q %q, want %q %q", c.err, r.outcome, r.reason, c.outcome, c.reason)
		}
	}
}

// TestAccessLogMarksCachedDecisions: a decision served from the decision
// cache keeps OPA's decision_id, marked decision_cached, and has no
// opa_duration; only the first request asks OPA.
func TestAccessLogMarksCachedDecisions(t *testing.T) {
	h := newHarness(t, withDecisionCache(time.Minute, 10)) // the good token's entry lasts an hour
	h.policy(sayhelloOnly)
	for range 2 {
		if w := h.get("/sayhello", bearer); w.Code != 200 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if n := len(h.queries()); n != 1 {
		t.Fatalf("OPA asked %d times, want 1 (then cached)", n)
	}
	lines := h.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d lines for 2 requests:\n%s", len(lines), h.logs)
	}
	fresh, cached := lines[0], lines[1]
	if fresh["decision_id"] != "dec-1" || fresh["decision_cached"] != nil || fresh["opa_duration"] == nil {
		t.Errorf("fresh decision: %v; want decision_id dec-1, opa_duration, no decision_cached", fresh)
	}
	if cached["decision_id"] != "dec-1" || cached["decision_cached"] != true || cached["opa_duration"] != nil {
		t.Errorf("cached decision: %v; want decision_id dec-1, decision_cached true, no opa_duration", cached)
	}
}
