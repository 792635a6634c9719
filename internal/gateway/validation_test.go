package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/pathrule"
)

// TestIntrospectPaths: in hybrid mode a token validated as a JWT is
// introspected anew on INTROSPECT_PATHS (and only there), and the policy
// sees which validation answered; an introspected token is not asked twice.
// In verify mode the paths match the request the proxy asks about.
func TestIntrospectPaths(t *testing.T) {
	jwtTok := &authn.Token{Subject: "alice", Claims: json.RawMessage(`{"scp":["a"]}`), Validation: authn.ValidationJWT}
	tests := []struct {
		name, method, path, token string
		verify                    bool // asked on /verify, the request in X-Forwarded-*
		revoked                   bool
		wantStatus                int
		wantIntrospect            bool
		wantValidation            string
	}{
		{name: "JWT elsewhere", method: "GET", path: "/sayhello", token: "jwt", wantStatus: 200, wantValidation: "jwt"},
		{name: "JWT on an introspect path", method: "GET", path: "/saysecret", token: "jwt", wantStatus: 200, wantIntrospect: true, wantValidation: "introspection"},
		{name: "revoked JWT on an introspect path", method: "GET", path: "/saysecret", token: "jwt", revoked: true, wantStatus: 401, wantIntrospect: true},
		{name: "revoked JWT elsewhere still passes until its cache ends", method: "GET", path: "/sayhello", token: "jwt", revoked: true, wantStatus: 200, wantValidation: "jwt"},
		{name: "opaque token on an introspect path: introspected once", method: "GET", path: "/saysecret", token: "opaque", wantStatus: 200, wantValidation: "introspection"},
		{name: "verify: JWT for an introspect path", method: "GET", path: "/saysecret", token: "jwt", verify: true, wantStatus: 200, wantIntrospect: true, wantValidation: "introspection"},
		{name: "verify: JWT for another path", method: "GET", path: "/sayhello", token: "jwt", verify: true, wantStatus: 200, wantValidation: "jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var introspected []string
			introspect := &fakeTokens{LookupFn: func(_ context.Context, tok string) (*authn.Token, authn.Lookup, error) {
				introspected = append(introspected, tok)
				if tt.revoked {
					return nil, authn.Miss, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}
				}
				return &authn.Token{Subject: "alice", Claims: json.RawMessage(`{"active":true}`), Validation: authn.ValidationIntrospection}, authn.Miss, nil
			}}
			h := newHarness(t, func(d *Deps) {
				introspectOnPaths(d, introspect, pathrule.Rule{Method: "GET", Path: "/saysecret"})
			})
			h.tokens.LookupFn = func(_ context.Context, tok string) (*authn.Token, authn.Lookup, error) {
				if tok == "jwt" {
					return jwtTok, authn.Hit, nil
				}
				return &authn.Token{Subject: "bob", Claims: json.RawMessage(`{"active":true}`), Validation: authn.ValidationIntrospection}, authn.Hit, nil
			}
			l, req := h.g.Traffic(), newRequest(tt.method, tt.path, "Authorization", "Bearer "+tt.token)
			if tt.verify {
				l, req = h.g.Admin(), newRequest(http.MethodGet, "/verify", "Authorization", "Bearer "+tt.token,
					"X-Forwarded-Method", tt.method, "X-Forwarded-Uri", tt.path)
			}
			w := h.serve(l, req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if got := len(introspected) == 1; got != tt.wantIntrospect || len(introspected) > 1 {
				t.Errorf("introspected %v, want introspection %v", introspected, tt.wantIntrospect)
			}
			if tt.wantValidation != "" {
				if inputs := h.inputs(t); len(inputs) != 1 || inputs[0]["validation"] != tt.wantValidation {
					t.Errorf("OPA inputs %v, want validation %q", inputs, tt.wantValidation)
				}
			}
		})
	}
}

// TestIntrospectPathsSpellings: INTROSPECT_PATHS add checking, so a JWT is
// introspected on every spelling the upstream may read as a rule's path
// (case, trailing slash, "P" for "P/*"), in proxy and verify modes alike;
// with exact matching each of these reached the upstream with a JWT the
// IdP had revoked.
func TestIntrospectPathsSpellings(t *testing.T) {
	up := newRecordingUpstream(t)
	jwtTok := &authn.Token{Subject: "alice", Claims: json.RawMessage(`{}`), Validation: authn.ValidationJWT}
	for _, tc := range []struct {
		method, path   string
		wantIntrospect bool
	}{
		{"GET", "/api/pay", true},
		{"GET", "/api/Pay", true},
		{"GET", "/api/pay/", true},
		{"POST", "/API/PAY/", true},
		{"GET", "/api/admin", true},
		{"GET", "/api/Admin/users", true},
		{"GET", "/api/payments", false},
		{"GET", "/api/administrator", false},
	} {
		for _, verify := range []bool{false, true} {
			introspect := &fakeTokens{LookupFn: func(context.Context, string) (*authn.Token, authn.Lookup, error) {
				return nil, authn.Miss, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}
			}}
			h := newHarness(t, func(d *Deps) {
				d.Upstream, d.UpstreamTimeout = up.url(), time.Second
				introspectOnPaths(d, introspect, pathrule.Rule{Path: "/api/pay"}, pathrule.Rule{Path: "/api/admin/", Prefix: true})
			})
			h.tokens.LookupFn = func(context.Context, string) (*authn.Token, authn.Lookup, error) { return jwtTok, authn.Hit, nil }
			l, req := h.g.Traffic(), newRequest(tc.method, tc.path, "Authorization", "Bearer jwt")
			if verify {
				l, req = h.g.Admin(), newRequest(http.MethodGet, "/verify", "Authorization", "Bearer jwt",
					"X-Forwarded-Method", tc.method, "X-Forwarded-Uri", tc.path)
			}
			before := up.hits.Load()
			w := h.serve(l, req)
			want := map[bool]int{true: 401, false: 200}[tc.wantIntrospect]
			if got := introspect.calls.Load() == 1; got != tc.wantIntrospect || w.Code != want {
				t.Errorf("%s %s (verify %v): introspected %v, status %d; want %v, %d", tc.method, tc.path, verify, got, w.Code, tc.wantIntrospect, want)
			}
			if tc.wantIntrospect && up.hits.Load() != before {
				t.Errorf("%s %s: the revoked JWT reached the upstream", tc.method, tc.path)
			}
		}
	}
}

// TestTokenRequest: the token lookup is told of the request as the policy
// sees it (method, cleaned path) and as it was sent (target, header), and
// on /verify of the original request the proxy describes.
func TestTokenRequest(t *testing.T) {
	h := newHarness(t)
	if w := h.serve(h.g.Traffic(), newRequest("GET", "/sayhello?a=1", "Authorization", "Bearer "+goodToken)); w.Code != 200 {
		t.Fatalf("serve: %d %s", w.Code, w.Body)
	}
	got := h.tokens.lastRequest()
	if got.Method != "GET" || got.Path != "/sayhello" || got.Target != "/sayhello?a=1" ||
		got.Header.Get("Authorization") == "" || got.ForwardAuth() {
		t.Errorf("serve: token lookup told %+v", got)
	}
	if w := h.serve(h.g.Admin(), newRequest(http.MethodGet, "/verify", "Authorization", "Bearer "+goodToken,
		"X-Forwarded-Method", "DELETE", "X-Forwarded-Uri", "/say%68ello?x=1", "X-HTTP-Method-Override", "PUT")); w.Code != 200 {
		t.Fatalf("verify: %d %s", w.Code, w.Body)
	}
	got = h.tokens.lastRequest()
	if got.Method != "DELETE" || got.Path != "/sayhello" || got.Target != "/verify" || !got.ForwardAuth() ||
		got.Original.RawPath != "/say%68ello" || got.Original.RawQuery != "x=1" || len(got.Header["X-HTTP-Method-Override"]) != 1 {
		t.Errorf("verify: token lookup told %+v", got)
	}
}
