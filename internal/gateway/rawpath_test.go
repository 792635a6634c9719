package gateway

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/pathrule"
)

// TestVerifyRawTarget: /verify reads the path as the proxy wrote it. Go's
// EscapedPath re-encodes the decoded path when the raw one holds "{", "|",
// "^", '"' or "`", and an encoded slash then reads as a slash:
// /verify/public-api%2Fx{ was decided as /public-api/x{.
func TestVerifyRawTarget(t *testing.T) {
	h := newHarness(t, func(d *Deps) { d.PublicPaths = []pathrule.Rule{{Path: "/public-api/", Prefix: true}} })
	cases := []struct {
		name, target string
		header       []string
	}{
		{name: "Envoy, brace", target: "/verify/public-api%2Fx{"},
		{name: "Envoy, lower case", target: "/verify/public-api%2fx{"},
		{name: "Envoy, pipe", target: "/verify/public-api%2Fx|"},
		{name: "Envoy, caret", target: "/verify/public-api%2Fx^"},
		{name: "Envoy, quote", target: `/verify/public-api%2Fx"`},
		{name: "Envoy, backtick", target: "/verify/public-api%2Fx`"},
		{name: "Envoy, backslash", target: "/verify/public-api%5Cx{"},
		{name: "Envoy, percent", target: "/verify/public-api%252Fx{"},
		{name: "Envoy, query holds the brace", target: "/verify/public-api%2Fx?a={"},
		{name: "Traefik", target: "/verify", header: []string{"X-Forwarded-Uri", "/public-api%2Fx{"}},
		{name: "nginx", target: "/verify", header: []string{"X-Original-Uri", "/public-api%2fx{?q=1"}},
		{name: "nginx, percent", target: "/verify", header: []string{"X-Original-Uri", "/public-api%25x{"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.queries())
			w := h.serve(h.g.Admin(), newRequest("GET", tc.target, append([]string{"Authorization", bearer}, tc.header...)...))
			if w.Code != 400 || !strings.Contains(w.Body.String(), "path not accepted") {
				t.Errorf("%s: %d %s, want 400 path not accepted", tc.target, w.Code, w.Body)
			}
			if inputs := h.inputs(t)[before:]; len(inputs) != 0 {
				t.Errorf("OPA was asked about %v", inputs[0]["path"])
			}
		})
	}
}

// TestProxyRawTarget: proxy mode reads the request target too, not what
// net/url kept of it.
func TestProxyRawTarget(t *testing.T) {
	up := httptest.NewServer(nil)
	defer up.Close()
	u, _ := url.Parse(up.URL)
	h := newHarness(t, func(d *Deps) { d.Upstream = u; d.PublicPaths = []pathrule.Rule{{Path: "/public-api/", Prefix: true}} })
	for _, target := range []string{"/public-api%2Fx{", "/public-api%2fx`", "/public-api%5Cx|", "/public-api%25x^"} {
		req := newRequest("GET", target)
		req.URL.RawPath = "" // what net/url may leave: the raw target is the truth
		w := h.serve(h.g.Traffic(), req)
		if w.Code != 400 {
			t.Errorf("%s: %d %s, want 400", target, w.Code, w.Body)
		}
	}
}

// TestRawPathOf: the path part of the request target in each of its forms.
func TestRawPathOf(t *testing.T) {
	for target, want := range map[string]string{
		"/a%2Fb{?q=1":             "/a%2Fb{",
		"/a":                      "/a",
		"http://h.example/a%2F?x": "/a%2F",
		"http://h.example":        "",
		"/a?b?c":                  "/a",
		"http://h.example?/admin": "", // the query's, not the path's
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.RequestURI = target
		if got := pathrule.RawPath(req); got != want {
			t.Errorf("%q: %q, want %q", target, got, want)
		}
	}
}
