package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/forwarded"
	"github.com/authgate/authgate/internal/pathrule"
)

// load runs Load with the required variables plus env, and no env file.
func load(t *testing.T, env map[string]string) (*Config, error) {
	t.Helper()
	envFile := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(envFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{
		"ENV_FILE":           envFile,
		"OKTA_ISSUER":        "https://example.okta.com/oauth2/default",
		"OKTA_CLIENT_ID":     "authgate",
		"OKTA_CLIENT_SECRET": "s3cret",
		"OPA_AUTHZ_URL":      "http://127.0.0.1:8181/v1/data/gateway/authz/decision",
	}
	for k, v := range env {
		full[k] = v
	}
	return Load(func(k string) (string, bool) { v, ok := full[k]; return v, ok })
}

func TestModeDefaults(t *testing.T) {
	c, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.UpstreamURL != "" || c.UpstreamStripAuthorization || c.UpstreamTimeout != 30*time.Second ||
		c.PublicPathRules != nil || c.TrustedProxyPrefixes != nil ||
		c.IdentityHeaderSubject != "X-Auth-Subject" || c.IdentityHeaderClientID != "X-Auth-Client-Id" || c.IdentityHeaderScopes != "X-Auth-Scopes" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestOPAInputHeaders(t *testing.T) {
	for _, tc := range []struct {
		val  string
		want []string
	}{
		{"", nil},
		{" , ", nil},
		{"User-Agent, x-tenant,,X_Legacy", []string{"User-Agent", "x-tenant", "X_Legacy"}},
	} {
		c, err := load(t, map[string]string{"OPA_INPUT_HEADERS": tc.val})
		if err != nil {
			t.Fatalf("%q: %v", tc.val, err)
		}
		if got := c.OPAInputHeaderNames(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.val, got, tc.want)
		}
	}
}

func TestModeValues(t *testing.T) {
	c, err := load(t, map[string]string{
		"UPSTREAM_URL":                 "http://10.0.0.5:8080/base",
		"UPSTREAM_STRIP_AUTHORIZATION": "true",
		"UPSTREAM_TIMEOUT":             "5s",
		"PUBLIC_PATHS":                 "GET /health, OPTIONS /*,/static/*",
		"TRUSTED_PROXIES":              "10.0.0.0/8, 192.168.1.7, ::1,",
		"IDENTITY_HEADER_SUBJECT":      "X-User",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantPublic := []pathrule.Rule{{Method: "GET", Path: "/health"}, {Method: "OPTIONS", Path: "/", Prefix: true}, {Path: "/static/", Prefix: true}}
	if got := c.PublicPathRules; !reflect.DeepEqual(got, wantPublic) {
		t.Errorf("PUBLIC_PATHS: %+v", got)
	}
	wantProxies := forwarded.Trust{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")}
	if got := c.TrustedProxyPrefixes; !reflect.DeepEqual(got, wantProxies) {
		t.Errorf("TRUSTED_PROXIES: %v", got)
	}
	if !c.UpstreamStripAuthorization || c.UpstreamTimeout != 5*time.Second || c.IdentityHeaderSubject != "X-User" {
		t.Errorf("%+v", c)
	}
}

// UPSTREAM_UPGRADES: websocket unless set; set but empty (in the process
// environment or the env file) means no upgrade at all.
func TestUpgradeProtocols(t *testing.T) {
	cases := []struct {
		name, file string
		env        map[string]string
		want       []string
	}{
		{name: "default", want: []string{"websocket"}},
		{name: "listed", env: map[string]string{"UPSTREAM_UPGRADES": " WebSocket, x-custom ,"}, want: []string{"websocket", "x-custom"}},
		{name: "empty", env: map[string]string{"UPSTREAM_UPGRADES": ""}},
		{name: "blank", env: map[string]string{"UPSTREAM_UPGRADES": "  "}},
		{name: "empty in the env file", file: "UPSTREAM_UPGRADES=\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if tc.file != "" {
				f := filepath.Join(t.TempDir(), "x.env")
				if err := os.WriteFile(f, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
				env = map[string]string{"ENV_FILE": f}
			}
			c, err := load(t, env)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.UpgradeProtocols(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("UpgradeProtocols() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestModeProblems(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"upstream not a URL", map[string]string{"UPSTREAM_URL": "10.0.0.5:8080"},
			[]string{"UPSTREAM_URL: not a URL"}},
		{"upstream not http", map[string]string{"UPSTREAM_URL": "ftp://up/"},
			[]string{`UPSTREAM_URL: must be an http or https URL, got scheme "ftp"`}},
		{"upstream with a query", map[string]string{"UPSTREAM_URL": "http://up/?a=1"},
			[]string{"UPSTREAM_URL: must not have a query or a fragment"}},
		{"upstream is authgate", map[string]string{"UPSTREAM_URL": "http://127.0.0.1:8086/"},
			[]string{"UPSTREAM_URL: points at authgate itself (127.0.0.1:8086): every request would loop"}},
		{"upstream is authgate's metrics", map[string]string{"UPSTREAM_URL": "http://127.0.0.1:9090/"},
			[]string{"UPSTREAM_URL: points at authgate itself (127.0.0.1:9090): every request would loop"}},
		{"timeout", map[string]string{"UPSTREAM_TIMEOUT": "0s"},
			[]string{"UPSTREAM_TIMEOUT: must be a positive duration, got 0s"}},
		{"strip not a boolean", map[string]string{"UPSTREAM_STRIP_AUTHORIZATION": "yes"},
			[]string{`UPSTREAM_STRIP_AUTHORIZATION: not a boolean (true or false): strconv.ParseBool: parsing "yes": invalid syntax`}},
		{"public paths", map[string]string{"PUBLIC_PATHS": "GET health,get /x,/a/../b,/a/*/b,GET /a /b,/a%2Fb"},
			[]string{
				`PUBLIC_PATHS: "GET health": path must start with /`,
				`PUBLIC_PATHS: "get /x": method must be upper-case letters, e.g. GET`,
				`PUBLIC_PATHS: "/a/../b": path must not contain . or .. segments`,
				`PUBLIC_PATHS: "/a/*/b": path may hold * only as a final /*, and no %, \, ? or #`,
				`PUBLIC_PATHS: "GET /a /b": want [METHOD ]PATH, e.g. "GET /health" or "OPTIONS /*"`,
				`PUBLIC_PATHS: "/a%2Fb": path may hold * only as a final /*, and no %, \, ? or #`,
			}},
		{"trusted proxies", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/33, localhost"},
			[]string{
				`TRUSTED_PROXIES: "10.0.0.0/33" is not a CIDR (10.0.0.0/8) or an IP address`,
				`TRUSTED_PROXIES: "localhost" is not a CIDR (10.0.0.0/8) or an IP address`,
			}},
		{"identity headers", map[string]string{"IDENTITY_HEADER_SUBJECT": "X User", "IDENTITY_HEADER_CLIENT_ID": "Authorization", "IDENTITY_HEADER_SCOPES": "x-auth-subject"},
			[]string{
				`IDENTITY_HEADER_SUBJECT: "X User" is not a header name (letters, digits, - and _)`,
				`IDENTITY_HEADER_CLIENT_ID: "Authorization" is reserved by HTTP or authgate`,
			}},
		{"upgrade protocols", map[string]string{"UPSTREAM_UPGRADES": "websocket, web socket,H2C,tls/1.3"},
			[]string{
				`UPSTREAM_UPGRADES: "web socket" is not a protocol name (an HTTP token such as websocket)`,
				"UPSTREAM_UPGRADES: h2c cannot be allowed: the requests inside an h2c connection would reach the upstream unchecked",
				`UPSTREAM_UPGRADES: "tls/1.3" is not a protocol name (an HTTP token such as websocket)`,
			}},
		{"identity headers collide", map[string]string{"IDENTITY_HEADER_SCOPES": "x-auth-subject"},
			[]string{"IDENTITY_HEADER_SCOPES: same header as IDENTITY_HEADER_SUBJECT (x-auth-subject)"}},
		{"OPA input headers", map[string]string{"OPA_INPUT_HEADERS": "user-agent, X Tenant,Authorization,cookie , proxy-authorization,x:y"},
			[]string{
				`OPA_INPUT_HEADERS: "X Tenant" is not a header name`,
				`OPA_INPUT_HEADERS: "Authorization" carries credentials and never goes into the input (OPA_SEND_TOKEN sends the token)`,
				`OPA_INPUT_HEADERS: "cookie" carries credentials and never goes into the input (OPA_SEND_TOKEN sends the token)`,
				`OPA_INPUT_HEADERS: "proxy-authorization" carries credentials and never goes into the input (OPA_SEND_TOKEN sends the token)`,
				`OPA_INPUT_HEADERS: "x:y" is not a header name`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.env)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want problems", err)
			}
			if !reflect.DeepEqual(ce.Problems, tc.want) {
				t.Errorf("problems:\n%q\nwant:\n%q", ce.Problems, tc.want)
			}
		})
	}
}
