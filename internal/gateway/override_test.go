package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/pathrule"
	"github.com/authgate/authgate/pkg/opa"
)

// overrideHeaders are method-override headers a client may send to have the
// upstream read its POST as a DELETE, in several spellings.
var overrideHeaders = [][2]string{
	{"X-HTTP-Method-Override", "DELETE"}, {"X-Http-Method", "delete"}, {"X-Method-Override", "DELETE"},
	{"X_HTTP_Method_Override", "DELETE"}, {"x_method_override", "PUT"}, {"X-HTTP_Method", "PATCH"},
}

// overrides lists the names in names that are method-override headers,
// by the test's own reading ("_" as "-", any case).
func overrides(names []string) []string {
	var out []string
	for _, k := range names {
		switch strings.ToLower(strings.ReplaceAll(k, "_", "-")) {
		case "x-http-method-override", "x-http-method", "x-method-override":
			out = append(out, k)
		}
	}
	return out
}

func headerNames(h map[string]any) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	return out
}

// TestMethodOverrideRemoved: in serve and proxy modes the method-override
// headers, in any spelling, reach neither the policy (even when
// OPA_INPUT_HEADERS lists them) nor the upstream, on checked and public
// paths alike: what the policy decided on is what the upstream does.
func TestMethodOverrideRemoved(t *testing.T) {
	up := newRecordingUpstream(t)
	listed := func(d *Deps) {
		d.InputHeaders = []string{"X-HTTP-Method-Override", "X-Http-Method", "X-Method-Override", "Accept"}
	}
	for _, tc := range []struct {
		name   string
		opt    func(*Deps)
		path   string
		public bool
	}{
		{name: "serve", opt: func(*Deps) {}, path: "/sayhello"},
		{name: "serve, listed in OPA_INPUT_HEADERS", opt: listed, path: "/sayhello"},
		{name: "proxy", opt: func(d *Deps) { d.Upstream, d.UpstreamTimeout = up.url(), time.Second }, path: "/api/x"},
		{name: "proxy, listed in OPA_INPUT_HEADERS", opt: func(d *Deps) { listed(d); d.Upstream, d.UpstreamTimeout = up.url(), time.Second }, path: "/api/x"},
		{name: "proxy, public path", public: true, path: "/health", opt: func(d *Deps) {
			d.Upstream, d.UpstreamTimeout = up.url(), time.Second
			d.PublicPaths = []pathrule.Rule{{Path: "/health"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opt)
			before := up.hits.Load()
			method := "POST"
			if strings.HasPrefix(tc.name, "serve") {
				method = "GET" // the demo routes' only method
			}
			w := h.serve(h.g.Traffic(), newRequest(method, tc.path, append([]string{"Authorization", bearer, "Accept", "*/*"}, flat(overrideHeaders)...)...))
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if up.hits.Load() > before {
				var names []string
				for k := range up.seen() {
					names = append(names, k)
				}
				if l := overrides(names); len(l) > 0 {
					t.Errorf("reached the upstream: %q", l)
				}
			}
			if tc.public {
				return
			}
			inputs := h.inputs(t)
			if len(inputs) == 0 {
				t.Fatal("OPA not asked")
			}
			hs := inputs[len(inputs)-1]["headers"].(map[string]any)
			if l := overrides(headerNames(hs)); len(l) > 0 {
				t.Errorf("the policy saw %q", l)
			}
			if hs["accept"] != "*/*" {
				t.Errorf("headers %v: the others must stay", hs)
			}
		})
	}
}

// TestVerifyMethodOverride: in verify mode authgate cannot remove what the
// proxy forwards upstream, so the policy always sees the method-override
// headers, whatever OPA_INPUT_HEADERS says, and the method they name
// counts for INTROSPECT_PATHS (an override to DELETE matches a "DELETE /x"
// rule) and against PUBLIC_PATHS.
func TestVerifyMethodOverride(t *testing.T) {
	verify := func(method, path string, header ...string) *http.Request {
		return newRequest(http.MethodGet, "/verify", append([]string{"Authorization", "Bearer jwt",
			"X-Forwarded-Method", method, "X-Forwarded-Uri", path}, header...)...)
	}

	t.Run("the policy sees them whatever OPA_INPUT_HEADERS says", func(t *testing.T) {
		h := newHarness(t, func(d *Deps) { d.InputHeaders = []string{"Accept"} })
		h.tokens.LookupFn = func(context.Context, string) (*authn.Token, authn.Lookup, error) { return h.good, authn.Hit, nil }
		w := h.serve(h.g.Admin(), verify("POST", "/x", append([]string{"Accept", "*/*", "X-Other", "no"}, flat(overrideHeaders)...)...))
		inputs := h.inputs(t)
		if w.Code != 200 || len(inputs) != 1 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		hs := inputs[0]["headers"].(map[string]any)
		if got := overrides(headerNames(hs)); len(got) != len(overrideHeaders) || hs["accept"] != "*/*" || hs["x-other"] != nil {
			t.Errorf("headers %v, want every override header and accept, nothing else", hs)
		}
		if hs["x-http-method-override"] != "DELETE" || hs["x_http_method_override"] != "DELETE" {
			t.Errorf("headers %v", hs)
		}
	})

	t.Run("INTROSPECT_PATHS match the overridden method", func(t *testing.T) {
		jwtTok := &authn.Token{Subject: "alice", Claims: json.RawMessage(`{}`), Validation: authn.ValidationJWT}
		for _, tc := range []struct {
			name           string
			method, path   string
			header         []string
			verify         bool
			wantIntrospect bool
		}{
			{name: "DELETE itself", method: "DELETE", path: "/x", verify: true, wantIntrospect: true},
			{name: "POST, no override", method: "POST", path: "/x", verify: true},
			{name: "POST overridden to DELETE", method: "POST", path: "/x", verify: true, header: []string{"X-HTTP-Method-Override", "DELETE"}, wantIntrospect: true},
			{name: "POST overridden to delete, X-HTTP-Method", method: "POST", path: "/X/", verify: true, header: []string{"X-Http-Method", "delete"}, wantIntrospect: true},
			{name: "POST overridden by X_Method_Override", method: "POST", path: "/x", verify: true, header: []string{"X_Method_Override", "DELETE"}, wantIntrospect: true},
			{name: "a list naming DELETE", method: "POST", path: "/x", verify: true, header: []string{"X-Method-Override", "PUT, DELETE"}, wantIntrospect: true},
			{name: "overridden to PUT", method: "POST", path: "/x", verify: true, header: []string{"X-HTTP-Method-Override", "PUT"}},
			// Serve mode removes the header: the demo route sees a GET.
			{name: "serve: removed, not a DELETE", method: "GET", path: "/sayhello", header: []string{"X-HTTP-Method-Override", "DELETE"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				introspect := &fakeTokens{LookupFn: func(context.Context, string) (*authn.Token, authn.Lookup, error) {
					return nil, authn.Miss, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}
				}}
				h := newHarness(t, func(d *Deps) {
					introspectOnPaths(d, introspect, pathrule.Rule{Method: "DELETE", Path: "/x"}, pathrule.Rule{Method: "DELETE", Path: "/sayhello"})
				})
				h.tokens.LookupFn = func(context.Context, string) (*authn.Token, authn.Lookup, error) { return jwtTok, authn.Hit, nil }
				l, req := h.g.Traffic(), newRequest(tc.method, tc.path, append([]string{"Authorization", "Bearer jwt"}, tc.header...)...)
				if tc.verify {
					l, req = h.g.Admin(), verify(tc.method, tc.path, tc.header...)
				}
				w := h.serve(l, req)
				if got := introspect.calls.Load() == 1; got != tc.wantIntrospect {
					t.Errorf("introspected %v, want %v", got, tc.wantIntrospect)
				}
				// The fake IdP says revoked: introspected means refused.
				if want := map[bool]int{true: 401, false: 200}[tc.wantIntrospect]; w.Code != want {
					t.Errorf("status %d, want %d: %s", w.Code, want, w.Body)
				}
			})
		}
	})

	t.Run("PUBLIC_PATHS hold only when the overridden method is public too", func(t *testing.T) {
		h := newHarness(t, func(d *Deps) {
			d.PublicPaths = []pathrule.Rule{{Method: "GET", Path: "/static/", Prefix: true}, {Path: "/open"}}
		})
		for _, tc := range []struct {
			method, path string
			header       []string
			want         int
		}{
			{"GET", "/static/a", nil, 200},
			{"GET", "/static/a", []string{"X-HTTP-Method-Override", "DELETE"}, 401},
			{"GET", "/static/a", []string{"X_Method_Override", "GET"}, 200},
			{"GET", "/static/a", []string{"X-Method-Override", "GET, DELETE"}, 401},
			{"POST", "/open", []string{"X-HTTP-Method", "DELETE"}, 200}, // any method is public there
		} {
			req := newRequest(http.MethodGet, "/verify", append([]string{"X-Forwarded-Method", tc.method, "X-Forwarded-Uri", tc.path}, tc.header...)...)
			if w := h.serve(h.g.Admin(), req); w.Code != tc.want {
				t.Errorf("%s %s %q: %d, want %d", tc.method, tc.path, tc.header, w.Code, tc.want)
			}
		}
	})

	t.Run("the decision cache does not answer an override", func(t *testing.T) {
		h := newHarness(t, withDecisionCache(time.Minute, 10))
		h.policy(func(_ context.Context, in map[string]any) (opa.Result, error) {
			if hs, _ := in["headers"].(map[string]any); hs["x-http-method-override"] != nil {
				return deny, nil
			}
			return allow, nil
		})
		req := func(header ...string) *http.Request {
			return newRequest(http.MethodGet, "/verify", append([]string{"Authorization", bearer, "X-Forwarded-Method", "POST", "X-Forwarded-Uri", "/x"}, header...)...)
		}
		if w := h.serve(h.g.Admin(), req()); w.Code != 200 {
			t.Fatalf("POST /x: %d", w.Code)
		}
		if w := h.serve(h.g.Admin(), req("X-HTTP-Method-Override", "DELETE")); w.Code != 403 {
			t.Errorf("POST /x overridden to DELETE: %d, want 403 (the policy asked, not the cached allow)", w.Code)
		}
		if w := h.serve(h.g.Admin(), req()); w.Code != 200 || len(h.queries()) != 2 {
			t.Errorf("POST /x again: %d after %d queries, want 200 from the cache", w.Code, len(h.queries()))
		}
	})
}
