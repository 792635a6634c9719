package gateway

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testResource is the resource of the tests below.
var testResource = &ProtectedResource{
	URI:                  "https://mcp.example.com/mcp",
	AuthorizationServers: []string{"https://idp.example.com/oauth2/default"},
	Scopes:               []string{"mcp:read", "mcp:write"},
	Name:                 "Example MCP",
	Documentation:        "https://docs.example.com/mcp",
}

const testMetadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

func TestResourceMetadataDocument(t *testing.T) {
	up := newRecordingUpstream(t)
	modes := map[string]func(*Deps){
		"serve": func(d *Deps) { d.Resource = testResource },
		"proxy": func(d *Deps) { d.Resource, d.Upstream, d.UpstreamTimeout = testResource, up.url(), time.Second },
	}
	for mode, with := range modes {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, with)
			traffic := h.g.Traffic()
			for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
				// No token; a Host naming another server changes nothing.
				w := h.serve(traffic, newRequest("GET", "http://evil.example"+path, "X-Forwarded-Host", "evil.example"))
				if w.Code != 200 {
					t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
				}
				var doc map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
					t.Fatalf("%s: %v", w.Body, err)
				}
				want := map[string]any{
					"resource":                 "https://mcp.example.com/mcp",
					"authorization_servers":    []any{"https://idp.example.com/oauth2/default"},
					"scopes_supported":         []any{"mcp:read", "mcp:write"},
					"bearer_methods_supported": []any{"header"},
					"resource_name":            "Example MCP",
					"resource_documentation":   "https://docs.example.com/mcp",
				}
				if !reflect.DeepEqual(doc, want) {
					t.Errorf("GET %s:\n%v\nwant\n%v", path, doc, want)
				}
				for k, v := range map[string]string{"Content-Type": "application/json", "Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=3600"} {
					if got := w.Header().Get(k); got != v {
						t.Errorf("GET %s: %s %q, want %q", path, k, got, v)
					}
				}
				if w := h.serve(traffic, newRequest("HEAD", path)); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Access-Control-Allow-Origin") != "*" {
					t.Errorf("HEAD %s: %d %q %v", path, w.Code, w.Body, w.Header())
				}
				// A browser's preflight (MCP clients send MCP-Protocol-Version).
				w = h.serve(traffic, newRequest("OPTIONS", path, "Origin", "https://app.example", "Access-Control-Request-Method", "GET",
					"Access-Control-Request-Headers", "mcp-protocol-version"))
				if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(w.Header().Get("Access-Control-Allow-Methods"), "GET") ||
					w.Header().Get("Access-Control-Allow-Headers") != "*" {
					t.Errorf("OPTIONS %s: %d %v", path, w.Code, w.Header())
				}
				if w := h.serve(traffic, newRequest("POST", path, "Authorization", bearer)); w.Code != 405 {
					t.Errorf("POST %s: %d %s", path, w.Code, w.Body)
				}
			}
			if mode == "proxy" {
				// Spellings that clean to a metadata path are answered by
				// authgate too, token or not: never forwarded.
				for _, target := range []string{"//.well-known//oauth-protected-resource/mcp", "/.well-known/%6fauth-protected-resource"} {
					for _, auth := range [][]string{nil, {"Authorization", bearer}} {
						if w := h.serve(traffic, newRequest("GET", target, auth...)); w.Code != 200 || !strings.Contains(w.Body.String(), `"resource":"https://mcp.example.com/mcp"`) {
							t.Errorf("GET %s %v: %d %s", target, auth, w.Code, w.Body)
						}
					}
				}
				if n := up.hits.Load(); n != 0 {
					t.Errorf("%d metadata requests reached the upstream", n)
				}
				// Everything else is still proxied.
				if w := h.serve(traffic, newRequest("GET", "/mcp", "Authorization", bearer)); w.Code != 200 || up.hits.Load() != 1 {
					t.Errorf("GET /mcp: %d %s, %d upstream hits", w.Code, w.Body, up.hits.Load())
				}
			}
		})
	}
}

func TestResourceMetadataMinimal(t *testing.T) {
	h := newHarness(t, func(d *Deps) {
		d.Resource = &ProtectedResource{URI: "https://api.example.com", AuthorizationServers: []string{"https://idp.example.com"}}
	})
	w := h.get("/.well-known/oauth-protected-resource", "")
	want := `{"resource":"https://api.example.com","authorization_servers":["https://idp.example.com"],"bearer_methods_supported":["header"]}`
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != want {
		t.Errorf("%d %s, want %s", w.Code, w.Body, want)
	}
}

func TestResourceMetadataOff(t *testing.T) {
	h := newHarness(t)
	if w := h.get("/.well-known/oauth-protected-resource", ""); w.Code != 404 {
		t.Errorf("serve mode without RESOURCE_URI: %d %s", w.Code, w.Body)
	}
	up := newRecordingUpstream(t)
	h = newHarness(t, func(d *Deps) { d.Upstream, d.UpstreamTimeout = up.url(), time.Second })
	if w := h.get("/.well-known/oauth-protected-resource", ""); w.Code != 401 || up.hits.Load() != 0 {
		t.Errorf("proxy mode without RESOURCE_URI: %d %s (an ordinary, checked path)", w.Code, w.Body)
	}
	if w := h.get("/.well-known/oauth-protected-resource", bearer); w.Code != 200 || up.hits.Load() != 1 {
		t.Errorf("proxy mode without RESOURCE_URI, with a token: %d %s, %d upstream hits", w.Code, w.Body, up.hits.Load())
	}
}

// Every 401 names the metadata, in every mode; so does a policy's own 401
// and its 403 insufficient_scope challenge.
func TestChallengeNamesResourceMetadata(t *testing.T) {
	up := newRecordingUpstream(t)
	rm := `resource_metadata="` + testMetadataURL + `"`
	cases := []struct {
		name, decision, auth string
		proxy, verify        bool
		status               int
		want                 string
	}{
		{name: "serve, no token", decision: "true", status: 401, want: `Bearer realm="authgate", ` + rm},
		{name: "serve, inactive token", decision: "true", auth: "Bearer " + inactiveToken, status: 401,
			want: `Bearer realm="authgate", error="invalid_token", error_description="token is not active", ` + rm},
		{name: "serve, malformed token", decision: "true", auth: "Bearer a b", status: 401,
			want: `Bearer realm="authgate", error="invalid_token", error_description="malformed token", ` + rm},
		{name: "serve, two Authorization headers (400)", decision: "true", auth: "Bearer a|Bearer b", status: 400,
			want: `Bearer realm="authgate", error="invalid_request", error_description="more than one Authorization header", ` + rm},
		{name: "proxy, no token", decision: "true", proxy: true, status: 401, want: `Bearer realm="authgate", ` + rm},
		{name: "proxy, inactive token", decision: "true", proxy: true, auth: "Bearer " + inactiveToken, status: 401,
			want: `Bearer realm="authgate", error="invalid_token", error_description="token is not active", ` + rm},
		{name: "verify, no token", decision: "true", verify: true, status: 401, want: `Bearer realm="authgate", ` + rm},
		{name: "verify, inactive token", decision: "true", verify: true, auth: "Bearer " + inactiveToken, status: 401,
			want: `Bearer realm="authgate", error="invalid_token", error_description="token is not active", ` + rm},
		{name: "policy's 401", decision: `{"allowed":false,"http_status":401}`, auth: bearer, status: 401,
			want: `Bearer realm="authgate", ` + rm},
		{name: "policy's 401 with its own challenge", auth: bearer, status: 401,
			decision: `{"allowed":false,"http_status":401,"response_headers_to_add":{"WWW-Authenticate":"Bearer error=\"invalid_token\""}}`,
			want:     `Bearer ` + rm + `, error="invalid_token"`},
		{name: "policy's 403 insufficient_scope", auth: bearer, status: 403, verify: true,
			decision: `{"allowed":false,"http_status":403,"response_headers_to_add":{"WWW-Authenticate":"Bearer realm=\"authgate\", error=\"insufficient_scope\", scope=\"mcp:write\""}}`,
			want:     `Bearer ` + rm + `, realm="authgate", error="insufficient_scope", scope="mcp:write"`},
		{name: "a policy's own resource_metadata is kept", auth: bearer, status: 401,
			decision: `{"allowed":false,"http_status":401,"response_headers_to_add":{"WWW-Authenticate":"Bearer resource_metadata=\"https://other.example/x\""}}`,
			want:     `Bearer resource_metadata="https://other.example/x"`},
		{name: "plain policy deny has no challenge", decision: "false", auth: bearer, status: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(d *Deps) {
				d.Resource = testResource
				if tc.proxy {
					d.Upstream, d.UpstreamTimeout = up.url(), time.Second
				}
			})
			h.answer(result(tc.decision))
			handler, target := h.g.Traffic(), "http://mcp.example.com/sayhello"
			if tc.verify {
				handler, target = h.g.Admin(), "/verify/sayhello"
			}
			var header []string
			if tc.auth != "" {
				for _, a := range strings.Split(tc.auth, "|") {
					header = append(header, "Authorization", a)
				}
			}
			w := h.serve(handler, newRequest("GET", target, header...))
			if w.Code != tc.status {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.status)
			}
			if got := strings.Join(w.Header().Values("WWW-Authenticate"), " | "); got != tc.want {
				t.Errorf("WWW-Authenticate:\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestResourceMetadataSenderConstraint: the metadata names the DPoP
// algorithms, whether DPoP is required and whether certificate-bound
// tokens are checked (RFC 9728 section 2).
func TestResourceMetadataSenderConstraint(t *testing.T) {
	h := newHarness(t, func(d *Deps) {
		d.Resource = &ProtectedResource{URI: "https://api.example.com", AuthorizationServers: []string{"https://idp.example.com"},
			DPoPAlgorithms: []string{"ES256", "EdDSA"}, DPoPRequired: true, CertificateBound: true}
	})
	w := h.get("/.well-known/oauth-protected-resource", "")
	want := `{"resource":"https://api.example.com","authorization_servers":["https://idp.example.com"],"bearer_methods_supported":["header"],` +
		`"dpop_signing_alg_values_supported":["ES256","EdDSA"],"dpop_bound_access_tokens_required":true,"tls_client_certificate_bound_access_tokens":true}`
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != want {
		t.Errorf("%d %s, want %s", w.Code, w.Body, want)
	}
}
