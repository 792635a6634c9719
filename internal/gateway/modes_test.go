package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/pathrule"
)

func TestInputGainsOrigin(t *testing.T) {
	h := newHarness(t)
	w := h.serve(h.g.Traffic(), newRequest("GET", "http://api.example/sayhello?q=1", "Authorization", bearer, "X-Forwarded-For", "6.6.6.6"))
	inputs := h.inputs(t)
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
			h := newHarness(t)
			h.answer(result(tc.result))
			l, target := h.g.Traffic(), "/sayhello"
			if tc.verify {
				l, target = h.g.Admin(), "/verify/sayhello"
			}
			w := h.serve(l, newRequest(tc.method, target, "Authorization", bearer))
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
	h := newHarness(t)
	h.answer(result(`{"allowed":true,"headers":{"X-Tenant":"acme"},"response_headers_to_add":{"X-Policy":"v1"}}`))
	w := h.serve(h.g.Admin(), newRequest("GET", "/verify", "Authorization", bearer, "X-Forwarded-Uri", "/x"))
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for k, v := range map[string]string{"X-Tenant": "acme", "X-Policy": "v1", "X-Auth-Subject": "alice", "X-Auth-Client-Id": "demo", "X-Auth-Scopes": "read_sayhello"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

func TestProxyUnknownMethod(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Method) }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	h := newHarness(t, func(d *Deps) { d.Upstream, d.UpstreamTimeout = u, time.Second })
	if w := h.serve(h.g.Traffic(), newRequest("MKCOL", "/dav/x", "Authorization", bearer)); w.Code != 200 || w.Body.String() != "MKCOL" {
		t.Errorf("MKCOL: %d %s", w.Code, w.Body)
	}
	if w := h.serve(h.g.Traffic(), newRequest("GET", "/", "Authorization", bearer)); w.Code != 200 || w.Body.String() != "GET" {
		t.Errorf("GET /: %d %s", w.Code, w.Body)
	}
	if w := h.serve(h.g.Traffic(), newRequest("BREW", "/pot", "Authorization", bearer)); w.Code != 405 {
		t.Errorf("BREW: %d %s", w.Code, w.Body)
	}
}

func TestProxyUpstreamBasePath(t *testing.T) {
	var got string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.URL.RequestURI() }))
	defer up.Close()
	u, _ := url.Parse(up.URL + "/base")
	h := newHarness(t, func(d *Deps) { d.Upstream, d.UpstreamTimeout = u, time.Second })
	w := h.serve(h.g.Traffic(), newRequest("GET", "//x//a%20b?y=1&y=2", "Authorization", bearer))
	inputs := h.inputs(t)
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
	h := newHarness(t, func(d *Deps) {
		d.PublicPaths = []pathrule.Rule{{Path: "/health"}}
	})
	h.answer(deny)
	w := h.serve(h.g.Admin(), newRequest("GET", "/verify/health", "X-Auth-Subject", "admin"))
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for _, k := range []string{"X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scopes"} {
		if vs, ok := w.Header()[k]; !ok || len(vs) != 1 || vs[0] != "" {
			t.Errorf("%s: %q, want present and empty", k, vs)
		}
	}
}

// An allow names all three identity headers on the wire, an empty one
// included (a token with no client_id and no scope): Istio's
// headersToUpstreamOnAllow and Envoy's allowed_upstream_headers override
// only the headers present in the answer, and Caddy 2.6's copy_headers sets
// a missing one to its placeholder's text.
func TestVerifyAnswersEveryIdentityHeader(t *testing.T) {
	h := newHarness(t)
	svc := &authn.Token{Subject: "svc", Validation: authn.ValidationIntrospection,
		Claims: json.RawMessage(`{"active":true,"sub":"svc"}`), CachedUntil: h.clock.Now().Add(time.Hour).UnixNano()}
	h.tokens.LookupFn = func(context.Context, string) (*authn.Token, authn.Lookup, error) { return svc, authn.Hit, nil }
	srv := httptest.NewServer(h.g.Admin())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/verify/sayhello", nil)
	req.Header.Set("Authorization", "Bearer svc-token")
	req.Header.Set("X-Auth-Client-Id", "forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	for k, want := range map[string]string{"X-Auth-Subject": "svc", "X-Auth-Client-Id": "", "X-Auth-Scopes": ""} {
		if vs, ok := resp.Header[k]; !ok || len(vs) != 1 || vs[0] != want {
			t.Errorf("%s: %q (present: %v), want exactly %q", k, vs, ok, want)
		}
	}
}
