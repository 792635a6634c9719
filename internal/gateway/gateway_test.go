package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/pkg/opa"
)

// answering is a Data API that always answers r.
func answering(r opa.Result) authz.Querier {
	return &fakeQuerier{QueryFn: func(context.Context, []byte) (opa.Result, error) { return r, nil }}
}

// opaServer is an httptest stand-in for OPA's Data API answering status and body.
func opaServer(t *testing.T, status int, body string) *opa.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/data/demoapi/authz/allow" {
			t.Errorf("OPA got %s %s", r.Method, r.URL.Path)
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return &opa.Client{URL: srv.URL + "/v1/data/demoapi/authz/allow", HTTPClient: srv.Client()}
}

// checkErrorBody checks the JSON error shape shared by every error answer.
func checkErrorBody(t *testing.T, rec *httptest.ResponseRecorder, wantError string) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not a JSON object of strings: %v", rec.Body, err)
	}
	if body["error"] != wantError {
		t.Errorf("error = %q, want %q (body %s)", body["error"], wantError, rec.Body)
	}
	for k := range body {
		if k != "error" && k != "error_description" {
			t.Errorf("unexpected member %q in %s", k, rec.Body)
		}
	}
}

func TestRequestPath(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opa           func(t *testing.T) authz.Querier
		target        string
		authorization string
		status        int
		body          string // the exact body of a 200
		error         string // the "error" member otherwise
		challenge     string // exact WWW-Authenticate; "-" for none
		retryAfter    string // exact Retry-After; "" for none
		opaCalls      int32  // -1: not checked (httptest OPA)
		warn          string // a warning the operator must see in the log
	}{
		{
			name: "allow", opa: func(*testing.T) authz.Querier { return answering(allow) },
			target: "/sayhello", authorization: "Bearer " + goodToken,
			status: 200, body: `{"message":"Hello there!!"}`, challenge: "-", opaCalls: 1,
		},
		{
			name: "allow secret", opa: func(*testing.T) authz.Querier { return answering(allow) },
			target: "/saysecret?x=1", authorization: "Bearer " + goodToken,
			status: 200, body: `{"message":"This is a secret"}`, challenge: "-", opaCalls: 1,
		},
		{
			name: "allow through OPA's HTTP API", opa: func(t *testing.T) authz.Querier { return opaServer(t, 200, `{"result":true,"decision_id":"d1"}`) },
			target: "/sayhello", authorization: "Bearer " + goodToken,
			status: 200, body: `{"message":"Hello there!!"}`, challenge: "-", opaCalls: -1,
		},
		{
			name: "policy false", opa: func(*testing.T) authz.Querier { return answering(deny) },
			target: "/sayhello", authorization: "Bearer " + goodToken,
			status: 403, error: "access_denied", challenge: "-", opaCalls: 1,
		},
		{
			name: "policy undefined", opa: func(t *testing.T) authz.Querier { return opaServer(t, 200, `{}`) },
			target: "/sayhello", authorization: "Bearer " + goodToken,
			status: 403, error: "access_denied", challenge: "-", opaCalls: -1, warn: "opa decision undefined",
		},
		{
			name: "policy null", opa: func(t *testing.T) authz.Querier { return opaServer(t, 200, `{"result":null}`) },
			target: "/sayhello", authorization: "Bearer " + goodToken,
			status: 403, error: "access_denied", challenge: "-", opaCalls: -1, warn: "opa decision undefined",
		},
		{
			name: "policy not a boolean", opa: func(t *testing.T) authz.Querier { return opaServer(t, 200, `{"result":[true]}`) },
			target: "/sayhello", authorization: "Bearer " + goodToken,
			status: 403, error: "access_denied", challenge: "-", opaCalls: -1, warn: "opa decision is not a boolean",
		},
		{
			name: "policy the string true", opa: func(*testing.T) authz.Querier {
				return answering(opa.Result{Defined: true, Value: json.RawMessage(`"true"`)})
			},
			target: "/sayhello", authorization: "Bearer " + goodToken,
			status: 403, error: "access_denied", challenge: "-", opaCalls: 1, warn: "opa decision is not a boolean",
		},
		{
			name: "OPA 500", opa: func(t *testing.T) authz.Querier {
				return opaServer(t, 500, `{"code":"internal_error","message":"eval_conflict_error"}`)
			},
			target: "/sayhello", authorization: "Bearer " + goodToken,
			status: 503, error: "temporarily_unavailable", challenge: "-", retryAfter: "2", opaCalls: -1,
		},
		{
			name: "OPA garbage", opa: func(t *testing.T) authz.Querier { return opaServer(t, 200, `<html>`) },
			target: "/sayhello", authorization: "Bearer " + goodToken,
			status: 503, error: "temporarily_unavailable", challenge: "-", retryAfter: "2", opaCalls: -1,
		},
		{
			name: "no token", opa: func(*testing.T) authz.Querier { return answering(allow) },
			target: "/sayhello",
			status: 401, error: "unauthorized", challenge: `Bearer realm="authgate"`,
		},
		{
			name: "basic credentials", opa: func(*testing.T) authz.Querier { return answering(allow) },
			target: "/sayhello", authorization: "Basic dXNlcjpwYXNz",
			status: 401, error: "unauthorized", challenge: `Bearer realm="authgate"`,
		},
		{
			name: "empty bearer", opa: func(*testing.T) authz.Querier { return answering(allow) },
			target: "/sayhello", authorization: "Bearer ",
			status: 400, error: "invalid_request",
			challenge: `Bearer realm="authgate", error="invalid_request", error_description="empty bearer token"`,
		},
		{
			name: "malformed token", opa: func(*testing.T) authz.Querier { return answering(allow) },
			target: "/sayhello", authorization: "Bearer " + goodToken + ",x",
			status: 401, error: "invalid_token",
			challenge: `Bearer realm="authgate", error="invalid_token", error_description="malformed token"`,
		},
		{
			name: "inactive token", opa: func(*testing.T) authz.Querier { return answering(allow) },
			target: "/sayhello", authorization: "Bearer " + inactiveToken,
			status: 401, error: "invalid_token",
			challenge: `Bearer realm="authgate", error="invalid_token", error_description="token is not active"`,
		},
		{
			name: "IdP unavailable", opa: func(*testing.T) authz.Querier { return answering(allow) },
			target: "/sayhello", authorization: "Bearer " + idpDownToken,
			status: 503, error: "temporarily_unavailable", challenge: "-", retryAfter: "7",
		},
		{
			name: "malformed query", opa: func(*testing.T) authz.Querier { return answering(allow) },
			target: "/sayhello?q=%zz", authorization: "Bearer " + goodToken,
			status: 400, error: "invalid_request",
			challenge: `Bearer realm="authgate", error="invalid_request", error_description="malformed query string"`,
		},
		{
			name: "unknown path", opa: func(*testing.T) authz.Querier { return answering(allow) },
			target: "/nowhere", authorization: "Bearer " + goodToken,
			status: 404, error: "not_found", challenge: "-",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.opa.QueryFn = tc.opa(t).Query
			rec := h.get(tc.target, tc.authorization)

			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 200 {
				if got := rec.Body.String(); got != tc.body {
					t.Errorf("body = %s, want %s", got, tc.body)
				}
			} else {
				checkErrorBody(t, rec, tc.error)
			}
			if got := rec.Header().Values("WWW-Authenticate"); tc.challenge == "-" && len(got) != 0 ||
				tc.challenge != "-" && (len(got) != 1 || got[0] != tc.challenge) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if tc.opaCalls >= 0 {
				if got := h.opa.calls.Load(); got != tc.opaCalls {
					t.Errorf("OPA called %d times, want %d", got, tc.opaCalls)
				}
			}
			if log := h.logs.String(); tc.warn != "" && !strings.Contains(log, tc.warn) ||
				tc.warn == "" && strings.Contains(log, "opa decision") {
				t.Errorf("log = %q, want the warning %q", log, tc.warn)
			}
			for _, where := range []string{rec.Body.String(), h.logs.String()} {
				if strings.Contains(where, "token.eyJ") || strings.Contains(where, "inactive-token") || strings.Contains(where, "idp-down-token") {
					t.Errorf("the token leaked: %s", where)
				}
			}
		})
	}
}

func TestRequestPathOPAInput(t *testing.T) {
	for _, sendToken := range []bool{false, true} {
		var got []byte
		h := newHarness(t, func(d *Deps) { d.SendToken = sendToken })
		h.opa.QueryFn = func(ctx context.Context, body []byte) (opa.Result, error) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("OPA query without a deadline")
			}
			got = bytes.Clone(body) // the decider reuses its buffer
			return allow, nil
		}
		rec := h.serve(h.g.Traffic(), newRequest(http.MethodGet, "/sayhello?q=a&q=b",
			"Authorization", "Bearer "+goodToken, "Cookie", "session=s3cr3t", "X-Request-Id", "r1"))
		if rec.Code != 200 {
			t.Fatalf("status = %d", rec.Code)
		}
		// The members and their encoding are authz's contract
		// (TestAppendJSONFields); here, that the gateway fills them from
		// the request and the token.
		var doc struct {
			Input struct {
				Method, Path, Subject, Validation string
				Headers                           map[string]string
				Query                             map[string][]string
				Scopes                            []string
				JWT                               *struct{ TokenValue string } `json:"jwt"`
			}
		}
		if err := json.Unmarshal(got, &doc); err != nil {
			t.Fatalf("input is not JSON: %v\n%s", err, got)
		}
		in := doc.Input
		if in.Method != "GET" || in.Path != "/sayhello" || in.Subject != "alice" || in.Headers["x-request-id"] != "r1" ||
			len(in.Query["q"]) != 2 || len(in.Scopes) != 1 || in.Validation != "introspection" {
			t.Errorf("input = %+v", in)
		}
		if (in.JWT != nil) != sendToken {
			t.Errorf("sendToken %v: jwt member %+v", sendToken, in.JWT)
		}
		if bytes.Contains(got, []byte("s3cr3t")) || bytes.Contains(got, []byte(goodToken)) != sendToken {
			t.Errorf("sendToken %v: input %s", sendToken, got)
		}
	}
}

func TestRequestPathOPABreaker(t *testing.T) {
	h := newHarness(t) // the OPA breaker opens after 2 failures
	h.opa.QueryFn = func(context.Context, []byte) (opa.Result, error) {
		return opa.Result{}, &opa.Error{StatusCode: 500, Code: "internal_error"}
	}
	for range 2 {
		if rec := h.get("/sayhello", "Bearer "+goodToken); rec.Code != 503 {
			t.Fatalf("status = %d, want 503", rec.Code)
		}
	}
	if h.opaBreaker.State() != breaker.Open {
		t.Fatalf("OPA breaker = %v, want open", h.opaBreaker.State())
	}
	rec := h.get("/sayhello", "Bearer "+goodToken)
	if rec.Code != 503 {
		t.Fatalf("status = %d, want 503", rec.Code)
	}
	checkErrorBody(t, rec, "temporarily_unavailable")
	if got := h.opa.calls.Load(); got != 2 {
		t.Errorf("OPA called %d times, want 2: the open breaker must not call it", got)
	}
	// About an hour: the breaker's open time, on the real clock.
	if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 3500 || s > 3601 {
		t.Errorf("Retry-After = %q, want about 3600", rec.Header().Get("Retry-After"))
	}
}

// A deny is an answer, not an upstream failure: it never opens the breaker.
func TestRequestPathDenyDoesNotOpenBreaker(t *testing.T) {
	h := newHarness(t)
	h.answer(deny)
	for range 5 {
		h.get("/sayhello", "Bearer "+goodToken)
	}
	h.get("/sayhello", "Bearer "+inactiveToken)
	if h.opaBreaker.State() != breaker.Closed {
		t.Errorf("OPA breaker = %v, want closed", h.opaBreaker.State())
	}
}

func TestRequestPathMethodNotAllowed(t *testing.T) {
	h := newHarness(t)
	req := newRequest(http.MethodPost, "/sayhello", "Authorization", "Bearer "+goodToken)
	req.Body = io.NopCloser(strings.NewReader("{}"))
	rec := h.serve(h.g.Traffic(), req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("status = %d, want 405", rec.Code)
	}
	checkErrorBody(t, rec, "method_not_allowed")
}

func TestAdminHealthz(t *testing.T) {
	h := newHarness(t)
	rec := httptest.NewRecorder()
	h.g.Admin().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != 200 || rec.Body.String() != `{"status":"ok"}` {
		t.Errorf("/healthz = %d %s", rec.Code, rec.Body)
	}
	// The protected API is not on the admin listener, nor the reverse.
	rec = httptest.NewRecorder()
	h.g.Admin().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/sayhello", nil))
	if rec.Code != 404 {
		t.Errorf("admin /sayhello = %d, want 404", rec.Code)
	}
	if rec := h.get("/healthz", ""); rec.Code != 404 {
		t.Errorf("traffic /healthz = %d, want 404", rec.Code)
	}
}

func TestAdminReadyz(t *testing.T) {
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			t.Errorf("health check asked %s", r.URL.Path)
		}
		io.WriteString(w, `{}`)
	}))
	defer healthy.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer sick.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	trip := func(b *breaker.Breaker) {
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(&fault.Error{Kind: fault.Unavailable})
	}
	// The checks app builds: OPA's health behind its breaker, required;
	// the IdP breaker's.
	type breakers struct{ opa, idp *breaker.Breaker }
	for _, tc := range []struct {
		name   string
		health string
		setup  func(b breakers)
		status int
		want   map[string]string
	}{
		{"ready", healthy.URL + "/health", nil, 200, map[string]string{"opa": "ok", "idp": "ok"}},
		{"OPA unreachable", gone.URL + "/health", nil, 503, map[string]string{"opa": "unreachable", "idp": "ok"}},
		{"OPA unhealthy", sick.URL + "/health", nil, 503, map[string]string{"opa": "unhealthy: status Internal Server Error", "idp": "ok"}},
		{"OPA breaker open", healthy.URL + "/health", func(b breakers) { trip(b.opa); trip(b.opa) }, 503,
			map[string]string{"opa": "breaker open", "idp": "ok"}},
		{"IdP breaker open", healthy.URL + "/health", func(b breakers) { trip(b.idp) }, 200,
			map[string]string{"opa": "ok", "idp": "breaker open"}},
		{"IdP rate limited", healthy.URL + "/health", func(b breakers) { b.idp.Hold(time.Now().Add(time.Hour)) }, 200,
			map[string]string{"opa": "ok", "idp": "rate limited"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := breakers{
				opa: breaker.New(breaker.Settings{Name: "opa", Failures: 2, OpenTimeout: time.Hour, IsFailure: authn.IsUpstreamFailure}),
				idp: breaker.New(breaker.Settings{Name: "idp", Failures: 1, OpenTimeout: time.Hour, IsFailure: authn.IsUpstreamFailure}),
			}
			opaHealth := &authz.Health{URL: tc.health, HTTPClient: http.DefaultClient, Breaker: b.opa}
			h := newHarness(t, func(d *Deps) {
				d.Ready = []ReadyCheck{
					{Name: "opa", Check: opaHealth.Check, Required: true},
					{Name: "idp", Check: func(context.Context) string { return b.idp.Health() }},
				}
			})
			if tc.setup != nil {
				tc.setup(b)
			}
			rec := httptest.NewRecorder()
			h.g.Admin().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tc.status {
				t.Errorf("status = %d, want %d", rec.Code, tc.status)
			}
			var got map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if len(got) != len(tc.want) || got["opa"] != tc.want["opa"] || got["idp"] != tc.want["idp"] {
				t.Errorf("body = %v, want %v", got, tc.want)
			}
		})
	}
}

func BenchmarkCheckAllow(b *testing.B) {
	h := benchHarness(b, func(d *Deps) { d.Log = slog.New(slog.DiscardHandler) })
	req := newRequest(http.MethodGet, "/sayhello?q=1", "Authorization", "Bearer "+goodToken,
		"User-Agent", "hey/0.0.1", "Accept", "application/json")
	handler := h.g.Traffic()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status = %d", rec.Code)
		}
	}
}

// TestCheckAsksTheDecider: the check hands the Decider the request as the
// policy sees it, with the token cache's entry as its Source (what the
// decision cache keys on), in the mode of the listener that met it.
func TestCheckAsksTheDecider(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	for _, tc := range []struct {
		name, mode, method, path string
		upstream                 bool
		verify                   bool
		req                      *http.Request
	}{
		{name: "serve", mode: authz.ModeServe, method: "GET", path: "/sayhello",
			req: newRequest("GET", "/sayhello?q=1", "Authorization", bearer)},
		{name: "proxy", mode: authz.ModeProxy, method: "DELETE", path: "/a/b", upstream: true,
			req: newRequest("DELETE", "//a//b?q=1", "Authorization", bearer)},
		{name: "verify", mode: authz.ModeVerify, method: "POST", path: "/x", verify: true,
			req: newRequest("GET", "/verify?q=1", "Authorization", bearer, "X-Forwarded-Uri", "/x?q=1", "X-Forwarded-Method", "POST")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got authz.Input
			decider := &fakeDecider{DecideFn: func(_ context.Context, in *authz.Input) (authz.Decision, error) {
				got = *in // in lives in the pooled record: copied before the request ends
				return authz.Decision{Allowed: true}, nil
			}}
			h := newHarness(t, func(d *Deps) {
				d.Decider = decider
				if tc.upstream {
					d.Upstream, d.UpstreamTimeout = u, time.Second
				}
			})
			l := h.g.Traffic()
			if tc.verify {
				l = h.g.Admin()
			}
			if w := h.serve(l, tc.req); w.Code != 200 || decider.calls.Load() != 1 {
				t.Fatalf("%d %s, %d decisions", w.Code, w.Body, decider.calls.Load())
			}
			if got.Mode != tc.mode || got.Method != tc.method || got.Path != tc.path || got.API != tc.path ||
				got.Query.Get("q") != "1" || got.Subject != "alice" || got.Validation != authn.ValidationIntrospection ||
				got.Source != h.good || got.Host != "example.com" {
				t.Errorf("input %+v", got)
			}
		})
	}
}
