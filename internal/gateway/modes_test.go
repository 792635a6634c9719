package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/pkg/opa"
)

// stubTokens is a TokenVerifier that knows one good token.
type stubTokens struct {
	LookupFn func(ctx context.Context, token string) (*authn.Token, authn.Lookup, error)
}

var _ TokenVerifier = (*stubTokens)(nil)

func (f *stubTokens) Lookup(ctx context.Context, token string) (*authn.Token, authn.Lookup, error) {
	return f.LookupFn(ctx, token)
}

// stubOPA is a Querier that answers a fixed result and keeps the last input.
type stubOPA struct {
	QueryFn func(ctx context.Context, body []byte) (opa.Result, error)
}

var _ Querier = (*stubOPA)(nil)

func (f *stubOPA) Query(ctx context.Context, body []byte) (opa.Result, error) {
	return f.QueryFn(ctx, body)
}

// newTestGateway builds a gateway whose policy answers result (a JSON
// value) and records each OPA input in inputs.
func newTestGateway(t *testing.T, result string, inputs *[]map[string]any, with func(*Deps)) *Gateway {
	t.Helper()
	d := Deps{
		Tokens: &stubTokens{LookupFn: func(_ context.Context, tok string) (*authn.Token, authn.Lookup, error) {
			if tok != "good" {
				return nil, 0, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}
			}
			return &authn.Token{Subject: "alice", ClientID: "app", Scope: "a b", Scopes: []string{"a", "b"}, Claims: json.RawMessage(`{"active":true}`)}, 0, nil
		}},
		OPA: &stubOPA{QueryFn: func(_ context.Context, body []byte) (opa.Result, error) {
			var in struct{ Input map[string]any }
			if err := json.Unmarshal(body, &in); err != nil {
				t.Errorf("OPA input is not JSON: %v\n%s", err, body)
			}
			if inputs != nil {
				*inputs = append(*inputs, in.Input)
			}
			return opa.ParseResult([]byte(`{"result":` + result + `}`))
		}},
		OPABreaker: breaker.New(breaker.Settings{Name: "opa", Failures: 5, OpenTimeout: time.Minute}),
		IdPBreaker: breaker.New(breaker.Settings{Name: "idp", Failures: 5, OpenTimeout: time.Minute}),
		OPATimeout: time.Second,
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Identity:   IdentityHeaders{Subject: "X-Auth-Subject", ClientID: "X-Auth-Client-Id", Scopes: "X-Auth-Scopes"},
	}
	if with != nil {
		with(&d)
	}
	return New(d)
}

func serve(h http.Handler, method, target string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestInputGainsOrigin(t *testing.T) {
	var inputs []map[string]any
	g := newTestGateway(t, "true", &inputs, nil)
	w := serve(g.Traffic(), "GET", "http://api.example/sayhello?q=1", map[string]string{"Authorization": "Bearer good", "X-Forwarded-For": "6.6.6.6"})
	if w.Code != 200 || len(inputs) != 1 {
		t.Fatalf("%d %s, %d inputs", w.Code, w.Body, len(inputs))
	}
	in := inputs[0]
	for k, want := range map[string]any{"host": "api.example", "scheme": "http", "remote_addr": "192.0.2.1", "mode": "serve", "path": "/sayhello"} {
		if in[k] != want {
			t.Errorf("input.%s = %v, want %v", k, in[k], want)
		}
	}
}

func TestPolicyAnswer(t *testing.T) {
	cases := []struct {
		name, method, result string
		status               int
		header               map[string]string
		body                 string
		verify               bool // ask /verify rather than the demo route
	}{
		{name: "plain deny", method: "GET", result: `{"allowed":false}`, status: 403,
			body: `{"error":"access_denied","error_description":"denied by policy"}`},
		{name: "401 gets a challenge", method: "GET", result: `{"allowed":false,"http_status":401}`, status: 401,
			header: map[string]string{"WWW-Authenticate": `Bearer realm="authgate"`}, body: `{"error":"unauthorized"}`},
		{name: "policy's own content type", method: "GET", result: `{"allowed":false,"http_status":451,"body":"<p>no</p>","response_headers_to_add":{"Content-Type":"text/html"}}`,
			status: 451, header: map[string]string{"Content-Type": "text/html"}, body: "<p>no</p>"},
		{name: "HEAD has no body", method: "HEAD", result: `{"allowed":false,"http_status":404,"body":"gone"}`, status: 404, verify: true},
		{name: "allow adds response headers", method: "GET", result: `{"allowed":true,"response_headers_to_add":{"X-Policy":"v1"}}`, status: 200,
			header: map[string]string{"X-Policy": "v1"}, body: `{"message":"Hello there!!"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGateway(t, tc.result, nil, nil)
			h, target := g.Traffic(), "/sayhello"
			if tc.verify {
				h, target = g.Admin(), "/verify/sayhello"
			}
			w := serve(h, tc.method, target, map[string]string{"Authorization": "Bearer good"})
			if w.Code != tc.status || strings.TrimSpace(w.Body.String()) != tc.body {
				t.Errorf("%d %q, want %d %q", w.Code, w.Body, tc.status, tc.body)
			}
			for k, v := range tc.header {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestVerifyPolicyHeaders(t *testing.T) {
	g := newTestGateway(t, `{"allowed":true,"headers":{"X-Tenant":"acme"},"response_headers_to_add":{"X-Policy":"v1"}}`, nil, nil)
	w := serve(g.Admin(), "GET", "/verify", map[string]string{"Authorization": "Bearer good", "X-Forwarded-Uri": "/x"})
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for k, v := range map[string]string{"X-Tenant": "acme", "X-Policy": "v1", "X-Auth-Subject": "alice", "X-Auth-Client-Id": "app", "X-Auth-Scopes": "a b"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

func TestProxyUnknownMethod(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Method) }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	g := newTestGateway(t, "true", nil, func(d *Deps) { d.Upstream, d.UpstreamTimeout = u, time.Second })
	if w := serve(g.Traffic(), "MKCOL", "/dav/x", map[string]string{"Authorization": "Bearer good"}); w.Code != 200 || w.Body.String() != "MKCOL" {
		t.Errorf("MKCOL: %d %s", w.Code, w.Body)
	}
	if w := serve(g.Traffic(), "GET", "/", map[string]string{"Authorization": "Bearer good"}); w.Code != 200 || w.Body.String() != "GET" {
		t.Errorf("GET /: %d %s", w.Code, w.Body)
	}
	if w := serve(g.Traffic(), "BREW", "/pot", map[string]string{"Authorization": "Bearer good"}); w.Code != 405 {
		t.Errorf("BREW: %d %s", w.Code, w.Body)
	}
}

func TestProxyUpstreamBasePath(t *testing.T) {
	var got string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.URL.RequestURI() }))
	defer up.Close()
	u, _ := url.Parse(up.URL + "/base")
	var inputs []map[string]any
	g := newTestGateway(t, "true", &inputs, func(d *Deps) { d.Upstream, d.UpstreamTimeout = u, time.Second })
	w := serve(g.Traffic(), "GET", "//x//a%20b?y=1&y=2", map[string]string{"Authorization": "Bearer good"})
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got != "/base/x/a%20b?y=1&y=2" {
		t.Errorf("upstream got %q", got)
	}
	if len(inputs) != 1 || inputs[0]["path"] != "/x/a b" || inputs[0]["mode"] != "proxy" {
		t.Errorf("OPA input %v", inputs)
	}
}

// A public path answered by /verify still names every identity header, empty,
// so that a proxy copying them (Envoy's allowed_upstream_headers) replaces a
// client's forged copies instead of passing them on.
func TestVerifyPublicPathEmptiesIdentity(t *testing.T) {
	g := newTestGateway(t, `false`, nil, func(d *Deps) {
		d.PublicPaths = []PublicPath{{Path: "/health"}}
	})
	w := serve(g.Admin(), "GET", "/verify/health", map[string]string{"X-Auth-Subject": "admin"})
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for _, k := range []string{"X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scopes"} {
		if vs, ok := w.Header()[k]; !ok || len(vs) != 1 || vs[0] != "" {
			t.Errorf("%s: %q, want present and empty", k, vs)
		}
	}
}
