package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/forwarded"
	"github.com/authgate/authgate/internal/pathrule"
	"github.com/authgate/authgate/pkg/opa"
)

// recordingUpstream is an upstream that keeps the headers of the last
// request it got, and counts the requests.
type recordingUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	last http.Header
	hits atomic.Int64
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		u.last = r.Header.Clone()
		u.mu.Unlock()
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *recordingUpstream) seen() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func (u *recordingUpstream) url() *url.URL { p, _ := url.Parse(u.srv.URL); return p }

// flat is kv as newRequest's name, value pairs.
func flat(kv [][2]string) []string {
	var out []string
	for _, p := range kv {
		out = append(out, p[0], p[1])
	}
	return out
}

// fromAddr is req from remote.
func fromAddr(req *http.Request, remote string) *http.Request {
	req.RemoteAddr = remote
	return req
}

// forwardingHeaders are what a client may send to make the upstream (or the
// policy) believe it came from elsewhere, in several spellings.
var forwardingHeaders = [][2]string{
	{"X-Forwarded-For", "6.6.6.6"}, {"X-Forwarded-Host", "evil.example"}, {"X-Forwarded-Proto", "https"},
	{"X-Forwarded-Port", "443"}, {"X-Forwarded-Prefix", "/admin"}, {"X-Forwarded-Server", "evil"},
	{"X-Forwarded-Uri", "/admin"}, {"X-Forwarded-Method", "DELETE"}, {"X-Forwarded-Ssl", "on"},
	{"X-Forwarded", "for=6.6.6.6"}, {"X-Real-Ip", "6.6.6.6"}, {"X-Original-Url", "/admin"},
	{"X-Original-Uri", "/admin"}, {"X-Rewrite-Url", "/admin"}, {"True-Client-Ip", "6.6.6.6"},
	{"X-Client-Ip", "6.6.6.6"}, {"Cf-Connecting-Ip", "6.6.6.6"}, {"Forwarded", "for=6.6.6.6;host=evil.example"},
	{"X_Forwarded_For", "6.6.6.6"}, {"X_Forwarded_Host", "evil.example"}, {"x_real_ip", "6.6.6.6"},
	{"X_ORIGINAL_URL", "/admin"}, {"true_client_ip", "6.6.6.6"}, {"x-forwarded-prefix", "/admin"},
}

// leaked lists the header names of h that a client could have forged:
// authgate's own X-Forwarded-For/Host/Proto carry its values, not the client's.
func leaked(h http.Header, own bool) []string {
	var out []string
	for k, vs := range h {
		n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		if own && (n == "x-forwarded-for" || n == "x-forwarded-host" || n == "x-forwarded-proto") && k == http.CanonicalHeaderKey(n) {
			for _, v := range vs {
				if strings.Contains(v, "6.6.6.6") || strings.Contains(v, "evil") {
					out = append(out, k+": "+v)
				}
			}
			continue
		}
		for _, f := range forwardingHeaders {
			if strings.EqualFold(strings.ReplaceAll(f[0], "_", "-"), n) {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// TestForwardingHeadersDropped: an untrusted client's forwarding headers, in
// any spelling, reach neither the upstream nor the policy, on checked and
// public paths alike.
func TestForwardingHeadersDropped(t *testing.T) {
	up := newRecordingUpstream(t)
	h := newHarness(t, func(d *Deps) {
		d.Upstream, d.UpstreamTimeout = up.url(), time.Second
		d.PublicPaths = []pathrule.Rule{{Path: "/health"}}
	})
	for _, path := range []string{"/api/x", "/health"} {
		before := len(h.queries())
		w := h.serve(h.g.Traffic(), newRequest("GET", path, append([]string{"Authorization", bearer}, flat(forwardingHeaders)...)...))
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		if l := leaked(up.seen(), true); len(l) > 0 {
			t.Errorf("%s: reached the upstream: %q", path, l)
		}
		if got := up.seen().Get("X-Forwarded-For"); got != "192.0.2.1" {
			t.Errorf("%s: upstream X-Forwarded-For %q, want authgate's 192.0.2.1", path, got)
		}
		if path == "/health" {
			continue // public: not asked
		}
		inputs := h.inputs(t)[before:]
		if len(inputs) != 1 {
			t.Fatalf("%d inputs", len(inputs))
		}
		hs := http.Header{}
		for k := range inputs[0]["headers"].(map[string]any) {
			hs[k] = []string{"x"}
		}
		if l := leaked(hs, false); len(l) > 0 {
			t.Errorf("the policy saw %q", l)
		}
	}
}

// TestForwardingHeadersFromTrustedProxy: a trusted proxy's own spellings
// pass (it wrote them), underscore spellings and Forwarded never do.
func TestForwardingHeadersFromTrustedProxy(t *testing.T) {
	up := newRecordingUpstream(t)
	h := newHarness(t, func(d *Deps) {
		d.Upstream, d.UpstreamTimeout = up.url(), time.Second
		d.TrustedProxies = forwarded.Trust{netip.MustParsePrefix("10.0.0.0/8")}
	})
	w := h.serve(h.g.Traffic(), fromAddr(newRequest("GET", "/api/x",
		"Authorization", bearer, "X-Forwarded-Prefix", "/app", "X-Forwarded-Port", "443", "X-Real-Ip", "198.51.100.7",
		"X_Forwarded_Prefix", "/admin", "X_Forwarded_For", "6.6.6.6", "Forwarded", "for=6.6.6.6",
	), "10.1.1.1:4000"))
	inputs := h.inputs(t)
	if w.Code != 200 || len(inputs) != 1 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	s := up.seen()
	for k, want := range map[string]string{"X-Forwarded-Prefix": "/app", "X-Forwarded-Port": "443", "X-Real-Ip": "198.51.100.7", "X-Forwarded-For": "10.1.1.1"} {
		if got := s.Get(k); got != want {
			t.Errorf("upstream %s: %q, want %q", k, got, want)
		}
	}
	in := inputs[0]["headers"].(map[string]any)
	if in["x-forwarded-prefix"] != "/app" {
		t.Errorf("policy: x-forwarded-prefix %v", in["x-forwarded-prefix"])
	}
	for k := range s {
		if strings.Contains(k, "_") || k == "Forwarded" {
			t.Errorf("upstream got %s", k)
		}
	}
	for k := range in {
		if strings.Contains(k, "_") || k == "forwarded" {
			t.Errorf("policy saw %s", k)
		}
	}
}

// TestConnectionHeadersHiddenFromPolicy: a header the Connection header
// names is hop-by-hop. The proxy drops it on the way upstream; the policy
// must not decide on it either.
func TestConnectionHeadersHiddenFromPolicy(t *testing.T) {
	up := newRecordingUpstream(t)
	h := newHarness(t, func(d *Deps) { d.Upstream, d.UpstreamTimeout = up.url(), time.Second })
	w := h.serve(h.g.Traffic(), newRequest("GET", "/api/x",
		"Authorization", bearer, "Connection", "keep-alive, x-tenant", "Connection", "X-Role",
		"X-Tenant", "acme", "X-Role", "admin", "Keep-Alive", "timeout=5", "Proxy-Connection", "keep-alive",
		"Te", "trailers, deflate", "X-Kept", "yes",
	))
	inputs := h.inputs(t)
	if w.Code != 200 || len(inputs) != 1 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	in := inputs[0]["headers"].(map[string]any)
	for _, k := range []string{"x-tenant", "x-role", "keep-alive", "proxy-connection"} {
		if _, ok := in[k]; ok {
			t.Errorf("policy saw hop-by-hop %s", k)
		}
		if up.seen().Get(k) != "" {
			t.Errorf("upstream got hop-by-hop %s", k)
		}
	}
	if in["te"] != "trailers" || up.seen().Get("Te") != "trailers" {
		t.Errorf("te: policy %v, upstream %q; want trailers for both", in["te"], up.seen().Get("Te"))
	}
	if in["x-kept"] != "yes" {
		t.Errorf("x-kept: %v", in["x-kept"])
	}
}

// TestTeParameters: "trailers" takes no parameters (RFC 9110 10.1.4): a
// Te of "trailers;q=1" is no "trailers", for the policy as for Go's
// reverse proxy (httpguts reads the header the same way), so it goes
// altogether; "gzip;q=0.5, trailers" keeps "trailers".
func TestTeParameters(t *testing.T) {
	up := newRecordingUpstream(t)
	h := newHarness(t, func(d *Deps) { d.Upstream, d.UpstreamTimeout = up.url(), time.Second })
	for te, want := range map[string]string{"trailers;q=1": "", "gzip;q=0.5, trailers": "trailers"} {
		h.serve(h.g.Traffic(), newRequest("GET", "/api/x", "Authorization", bearer, "Te", te))
		inputs := h.inputs(t)
		got, _ := inputs[len(inputs)-1]["headers"].(map[string]any)["te"].(string)
		if got != want || up.seen().Get("Te") != want {
			t.Errorf("Te %q: policy %q, upstream %q; want %q for both", te, got, up.seen().Get("Te"), want)
		}
	}
}

// TestConnectionUpgradeKept: the Upgrade header and its Connection token
// are left for the upgrade decision; the token for authgate stays readable.
func TestConnectionUpgradeKept(t *testing.T) {
	h := newHarness(t)
	w := h.serve(h.g.Traffic(), newRequest("GET", "/sayhello",
		"Authorization", bearer, "Connection", "Upgrade, Authorization, X-Hop", "Upgrade", "websocket", "X-Hop", "1",
	))
	inputs := h.inputs(t)
	if w.Code != 200 || len(inputs) != 1 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	in := inputs[0]["headers"].(map[string]any)
	if in["upgrade"] != "websocket" {
		t.Errorf("upgrade: %v", in["upgrade"])
	}
	if _, ok := in["x-hop"]; ok {
		t.Errorf("policy saw x-hop")
	}
}

// TestVerifyStripsClientHeaders: in verify mode the policy sees neither a
// client's identity headers (the proxy passes them on) nor, from a caller
// that is not a trusted proxy, the forwarding headers, once authgate has
// read the original request from them.
func TestVerifyStripsClientHeaders(t *testing.T) {
	h := newHarness(t)
	w := h.serve(h.g.Admin(), newRequest("GET", "/verify",
		"Authorization", bearer, "X-Forwarded-Uri", "/a", "X-Forwarded-Method", "POST", "X-Forwarded-Host", "evil.example",
		"X-Auth-Subject", "admin", "X_Auth_Scopes", "admin", "x-auth-client-id", "root", "X-Real-Ip", "6.6.6.6",
		"Connection", "X-Hop", "X-Hop", "1",
	))
	inputs := h.inputs(t)
	if w.Code != 200 || len(inputs) != 1 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if inputs[0]["method"] != "POST" || inputs[0]["path"] != "/a" {
		t.Errorf("decided %v %v", inputs[0]["method"], inputs[0]["path"])
	}
	in := inputs[0]["headers"].(map[string]any)
	for k := range in {
		switch strings.ReplaceAll(k, "_", "-") {
		case "x-auth-subject", "x-auth-scopes", "x-auth-client-id", "x-forwarded-uri", "x-forwarded-method", "x-forwarded-host", "x-real-ip", "x-hop":
			t.Errorf("policy saw %s: %v", k, in[k])
		}
	}
	if w.Header().Get("X-Auth-Subject") != "alice" {
		t.Errorf("X-Auth-Subject %q", w.Header().Get("X-Auth-Subject"))
	}

	// A trusted proxy's forwarding headers stay visible.
	h = newHarness(t, func(d *Deps) { d.TrustedProxies = forwarded.Trust{netip.MustParsePrefix("192.0.2.0/24")} })
	w = h.serve(h.g.Admin(), newRequest("GET", "/verify", "Authorization", bearer, "X-Forwarded-Uri", "/a", "X-Forwarded-Host", "app.example"))
	inputs = h.inputs(t)
	if w.Code != 200 || len(inputs) != 1 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if in := inputs[0]["headers"].(map[string]any); in["x-forwarded-uri"] != "/a" || in["x-forwarded-host"] != "app.example" {
		t.Errorf("trusted proxy's headers: %v", in)
	}
}

// TestInputHeadersAllowList: with OPA_INPUT_HEADERS, only the listed
// headers (any case) go into the input; the credentials never do.
func TestInputHeadersAllowList(t *testing.T) {
	h := newHarness(t, func(d *Deps) { d.InputHeaders = []string{"user-agent", "X-TENANT", "x_legacy"} })
	w := h.serve(h.g.Traffic(), newRequest("GET", "/sayhello",
		"Authorization", bearer, "User-Agent", "curl/8", "X-Tenant", "acme", "X-Other", "no", "X_legacy", "1", "Cookie", "s=1",
	))
	inputs := h.inputs(t)
	if w.Code != 200 || len(inputs) != 1 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	got := inputs[0]["headers"].(map[string]any)
	want := map[string]any{"user-agent": "curl/8", "x-tenant": "acme", "x_legacy": "1"}
	if len(got) != len(want) {
		t.Errorf("headers %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
}

// TestInputHeadersBounded: 2,000 small headers (or 64 KiB of them) would
// make every decision many times slower; they get 431, OPA not asked.
func TestInputHeadersBounded(t *testing.T) {
	many := func(n, size int) []string {
		h := []string{"Authorization", "Bearer " + goodToken}
		for i := range n {
			h = append(h, fmt.Sprintf("X-Pad-%04d", i), strings.Repeat("a", size))
		}
		return h
	}
	cases := []struct {
		name    string
		header  []string
		allowed []string // OPA_INPUT_HEADERS
		status  int
	}{
		{name: "2,000 small headers", header: many(2000, 8), status: 431},
		{name: "101 headers", header: many(101, 1), status: 431},
		{name: "99 headers and X-Request-Id", header: many(99, 1), status: 200},
		{name: "one header over 64 KiB", header: many(1, 64<<10), status: 431},
		{name: "60 KiB in 10 headers", header: many(10, 6<<10), status: 200},
		{name: "2,000 headers outside the allow-list", header: many(2000, 8), allowed: []string{"user-agent"}, status: 200},
		{name: "a large cookie does not count", header: append(many(0, 0), "Cookie", strings.Repeat("c=1; ", 20000)), status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(d *Deps) { d.InputHeaders = tc.allowed })
			for _, srv := range []struct {
				handler http.Handler
				target  string
			}{{h.g.Traffic(), "/sayhello"}, {h.g.Admin(), "/verify/sayhello"}} {
				before := h.opa.calls.Load()
				w := h.serve(srv.handler, newRequest("GET", srv.target, tc.header...))
				if w.Code != tc.status {
					t.Fatalf("%s: %d %s, want %d", srv.target, w.Code, w.Body, tc.status)
				}
				if tc.status != 431 {
					continue
				}
				if h.opa.calls.Load() != before {
					t.Errorf("%s: OPA asked", srv.target)
				}
				if b := w.Body.String(); !strings.Contains(b, `"error":"request_header_fields_too_large"`) {
					t.Errorf("%s: body %s", srv.target, b)
				}
			}
		})
	}
}

// The input's bounds are answered 431 ahead of the policy side: with OPA's
// breaker open, and from a decision cache, the answer is the same, and an
// over-bound request never spends a half-open breaker's probe.
func TestInputHeadersBoundedAheadOfDecider(t *testing.T) {
	header := []string{"Authorization", "Bearer " + goodToken}
	for i := range 101 {
		header = append(header, fmt.Sprintf("X-Pad-%04d", i), "a")
	}
	t.Run("breaker open", func(t *testing.T) {
		h := newHarness(t)
		h.policy(func(context.Context, map[string]any) (opa.Result, error) { return opa.Result{}, errors.New("down") })
		for range 2 {
			h.get("/sayhello", "Bearer "+goodToken)
		}
		if h.opaBreaker.State() != breaker.Open {
			t.Fatalf("breaker %v, want open", h.opaBreaker.State())
		}
		if w := h.serve(h.g.Traffic(), newRequest("GET", "/sayhello", header...)); w.Code != 431 {
			t.Errorf("with the breaker open: %d %s, want 431", w.Code, w.Body)
		}
	})
	t.Run("decision cached", func(t *testing.T) {
		h := newHarness(t, withDecisionCache(time.Minute, 10))
		if w := h.get("/sayhello", "Bearer "+goodToken); w.Code != 200 {
			t.Fatalf("first request: %d", w.Code)
		}
		if w := h.serve(h.g.Traffic(), newRequest("GET", "/sayhello", header...)); w.Code != 431 {
			t.Errorf("with the decision cached: %d %s, want 431", w.Code, w.Body)
		}
	})
}
