package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMetadataURL(t *testing.T) {
	for uri, want := range map[string]string{
		"https://mcp.example.com/mcp":      "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
		"https://mcp.example.com":          "https://mcp.example.com/.well-known/oauth-protected-resource",
		"https://mcp.example.com/":         "https://mcp.example.com/.well-known/oauth-protected-resource",
		"https://mcp.example.com:8443/a/b": "https://mcp.example.com:8443/.well-known/oauth-protected-resource/a/b",
		"https://mcp.example.com/mcp/":     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp/",
		"http://127.0.0.1:8086/mcp":        "http://127.0.0.1:8086/.well-known/oauth-protected-resource/mcp",
	} {
		if got := (&ProtectedResource{URI: uri}).MetadataURL(); got != want {
			t.Errorf("MetadataURL(%s) = %s, want %s", uri, got, want)
		}
	}
}

// testResource is the resource of the tests below.
var testResource = &ProtectedResource{
	URI:                  "https://mcp.example.com/mcp",
	AuthorizationServers: []string{"https://idp.example.com/oauth2/default"},
	Scopes:               []string{"mcp:read", "mcp:write"},
	Name:                 "Example MCP",
	Documentation:        "https://docs.example.com/mcp",
}

const testMetadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

// countingUpstream is an upstream that counts what reaches it.
func countingUpstream(t *testing.T) (*url.URL, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"upstream":true}`))
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	return u, &hits
}

func TestResourceMetadataDocument(t *testing.T) {
	upstream, hits := countingUpstream(t)
	modes := map[string]func(*Deps){
		"serve": func(d *Deps) { d.Resource = testResource },
		"proxy": func(d *Deps) { d.Resource, d.Upstream, d.UpstreamTimeout = testResource, upstream, time.Second },
	}
	for mode, with := range modes {
		t.Run(mode, func(t *testing.T) {
			g := newTestGateway(t, "true", nil, with)
			for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
				// No token; a Host naming another server changes nothing.
				w := serve(g.Traffic(), "GET", "http://evil.example"+path, map[string]string{"X-Forwarded-Host": "evil.example"})
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
				if w := serve(g.Traffic(), "HEAD", path, nil); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Access-Control-Allow-Origin") != "*" {
					t.Errorf("HEAD %s: %d %q %v", path, w.Code, w.Body, w.Header())
				}
				// A browser's preflight (MCP clients send MCP-Protocol-Version).
				w = serve(g.Traffic(), "OPTIONS", path, map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "GET",
					"Access-Control-Request-Headers": "mcp-protocol-version"})
				if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(w.Header().Get("Access-Control-Allow-Methods"), "GET") ||
					w.Header().Get("Access-Control-Allow-Headers") != "*" {
					t.Errorf("OPTIONS %s: %d %v", path, w.Code, w.Header())
				}
				if w := serve(g.Traffic(), "POST", path, map[string]string{"Authorization": "Bearer good"}); w.Code != 405 {
					t.Errorf("POST %s: %d %s", path, w.Code, w.Body)
				}
			}
			if mode == "proxy" {
				// Spellings that clean to a metadata path are answered by
				// authgate too, token or not: never forwarded.
				for _, target := range []string{"//.well-known//oauth-protected-resource/mcp", "/.well-known/%6fauth-protected-resource"} {
					for _, h := range []map[string]string{nil, {"Authorization": "Bearer good"}} {
						if w := serve(g.Traffic(), "GET", target, h); w.Code != 200 || !strings.Contains(w.Body.String(), `"resource":"https://mcp.example.com/mcp"`) {
							t.Errorf("GET %s %v: %d %s", target, h, w.Code, w.Body)
						}
					}
				}
				if n := hits.Load(); n != 0 {
					t.Errorf("%d metadata requests reached the upstream", n)
				}
				// Everything else is still proxied.
				if w := serve(g.Traffic(), "GET", "/mcp", map[string]string{"Authorization": "Bearer good"}); w.Code != 200 || hits.Load() != 1 {
					t.Errorf("GET /mcp: %d %s, %d upstream hits", w.Code, w.Body, hits.Load())
				}
			}
		})
	}
}

func TestResourceMetadataMinimal(t *testing.T) {
	g := newTestGateway(t, "true", nil, func(d *Deps) {
		d.Resource = &ProtectedResource{URI: "https://api.example.com", AuthorizationServers: []string{"https://idp.example.com"}}
	})
	w := serve(g.Traffic(), "GET", "/.well-known/oauth-protected-resource", nil)
	want := `{"resource":"https://api.example.com","authorization_servers":["https://idp.example.com"],"bearer_methods_supported":["header"]}`
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != want {
		t.Errorf("%d %s, want %s", w.Code, w.Body, want)
	}
}

func TestResourceMetadataOff(t *testing.T) {
	g := newTestGateway(t, "true", nil, nil)
	if w := serve(g.Traffic(), "GET", "/.well-known/oauth-protected-resource", nil); w.Code != 404 {
		t.Errorf("serve mode without RESOURCE_URI: %d %s", w.Code, w.Body)
	}
	upstream, hits := countingUpstream(t)
	g = newTestGateway(t, "true", nil, func(d *Deps) { d.Upstream, d.UpstreamTimeout = upstream, time.Second })
	if w := serve(g.Traffic(), "GET", "/.well-known/oauth-protected-resource", nil); w.Code != 401 || hits.Load() != 0 {
		t.Errorf("proxy mode without RESOURCE_URI: %d %s (an ordinary, checked path)", w.Code, w.Body)
	}
	if w := serve(g.Traffic(), "GET", "/.well-known/oauth-protected-resource", map[string]string{"Authorization": "Bearer good"}); w.Code != 200 || hits.Load() != 1 {
		t.Errorf("proxy mode without RESOURCE_URI, with a token: %d %s, %d upstream hits", w.Code, w.Body, hits.Load())
	}
}

// Every 401 names the metadata, in every mode; so does a policy's own 401
// and its 403 insufficient_scope challenge.
func TestChallengeNamesResourceMetadata(t *testing.T) {
	upstream, _ := countingUpstream(t)
	rm := `resource_metadata="` + testMetadataURL + `"`
	cases := []struct {
		name, result, auth string
		proxy, verify      bool
		status             int
		want               string
	}{
		{name: "serve, no token", result: "true", status: 401, want: `Bearer realm="authgate", ` + rm},
		{name: "serve, inactive token", result: "true", auth: "Bearer bad", status: 401,
			want: `Bearer realm="authgate", error="invalid_token", error_description="token is not active", ` + rm},
		{name: "serve, malformed token", result: "true", auth: "Bearer a b", status: 401,
			want: `Bearer realm="authgate", error="invalid_token", error_description="malformed token", ` + rm},
		{name: "serve, two Authorization headers (400)", result: "true", auth: "Bearer a|Bearer b", status: 400,
			want: `Bearer realm="authgate", error="invalid_request", error_description="more than one Authorization header", ` + rm},
		{name: "proxy, no token", result: "true", proxy: true, status: 401, want: `Bearer realm="authgate", ` + rm},
		{name: "proxy, inactive token", result: "true", proxy: true, auth: "Bearer bad", status: 401,
			want: `Bearer realm="authgate", error="invalid_token", error_description="token is not active", ` + rm},
		{name: "verify, no token", result: "true", verify: true, status: 401, want: `Bearer realm="authgate", ` + rm},
		{name: "verify, inactive token", result: "true", verify: true, auth: "Bearer bad", status: 401,
			want: `Bearer realm="authgate", error="invalid_token", error_description="token is not active", ` + rm},
		{name: "policy's 401", result: `{"allowed":false,"http_status":401}`, auth: "Bearer good", status: 401,
			want: `Bearer realm="authgate", ` + rm},
		{name: "policy's 401 with its own challenge", auth: "Bearer good", status: 401,
			result: `{"allowed":false,"http_status":401,"response_headers_to_add":{"WWW-Authenticate":"Bearer error=\"invalid_token\""}}`,
			want:   `Bearer ` + rm + `, error="invalid_token"`},
		{name: "policy's 403 insufficient_scope", auth: "Bearer good", status: 403, verify: true,
			result: `{"allowed":false,"http_status":403,"response_headers_to_add":{"WWW-Authenticate":"Bearer realm=\"authgate\", error=\"insufficient_scope\", scope=\"mcp:write\""}}`,
			want:   `Bearer ` + rm + `, realm="authgate", error="insufficient_scope", scope="mcp:write"`},
		{name: "a policy's own resource_metadata is kept", auth: "Bearer good", status: 401,
			result: `{"allowed":false,"http_status":401,"response_headers_to_add":{"WWW-Authenticate":"Bearer resource_metadata=\"https://other.example/x\""}}`,
			want:   `Bearer resource_metadata="https://other.example/x"`},
		{name: "plain policy deny has no challenge", result: "false", auth: "Bearer good", status: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGateway(t, tc.result, nil, func(d *Deps) {
				d.Resource = testResource
				if tc.proxy {
					d.Upstream, d.UpstreamTimeout = upstream, time.Second
				}
			})
			h, target := g.Traffic(), "http://mcp.example.com/sayhello"
			if tc.verify {
				h, target = g.Admin(), "/verify/sayhello"
			}
			req := httptest.NewRequest("GET", target, nil)
			if tc.auth != "" {
				for _, a := range strings.Split(tc.auth, "|") {
					req.Header.Add("Authorization", a)
				}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.status)
			}
			if got := strings.Join(w.Header().Values("WWW-Authenticate"), " | "); got != tc.want {
				t.Errorf("WWW-Authenticate:\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
