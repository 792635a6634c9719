package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/config"
)

func TestResourceDefaults(t *testing.T) {
	c, err := loadWith(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ResourceURI != "" || c.ResourceAuthorizationServers != nil || c.ResourceScopes != "" || c.ResourceName != "" || c.ResourceDocumentation != "" {
		t.Errorf("defaults: %+v", c)
	}
	// Off: no audience is required, no metadata is served.
	if got := c.RequiredAudience(); got != "" {
		t.Errorf("RequiredAudience() = %q with RESOURCE_URI and OKTA_AUDIENCE empty", got)
	}
}

func TestResourceValues(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantServers []string
		wantScopes  []string
		wantAud     string
	}{
		{
			name:        "authorization server defaults to the issuer; audience is the resource",
			env:         map[string]string{"RESOURCE_URI": "https://mcp.example.com/mcp"},
			wantServers: []string{"https://example.okta.com/oauth2/default"},
			wantAud:     "https://mcp.example.com/mcp",
		},
		{
			name: "everything set; OKTA_AUDIENCE set instead wins",
			env: map[string]string{
				"RESOURCE_URI":                   "https://mcp.example.com/mcp",
				"RESOURCE_AUTHORIZATION_SERVERS": "https://a.example.com/oauth2/x, https://b.example.com ,",
				"RESOURCE_SCOPES":                "mcp:read, mcp:write  mcp:admin,,",
				"RESOURCE_NAME":                  "Example MCP server",
				"RESOURCE_DOCUMENTATION":         "https://docs.example.com/mcp",
				"OKTA_AUDIENCE":                  "api://mcp",
			},
			wantServers: []string{"https://a.example.com/oauth2/x", "https://b.example.com"},
			wantScopes:  []string{"mcp:read", "mcp:write", "mcp:admin"},
			wantAud:     "api://mcp",
		},
		{
			name:        "plain http on loopback is allowed (development)",
			env:         map[string]string{"RESOURCE_URI": "http://127.0.0.1:8086/mcp"},
			wantServers: []string{"https://example.okta.com/oauth2/default"},
			wantAud:     "http://127.0.0.1:8086/mcp",
		},
		{
			name:        "plain http elsewhere with ALLOW_INSECURE_HTTP",
			env:         map[string]string{"RESOURCE_URI": "http://mcp.internal/", "ALLOW_INSECURE_HTTP": "true"},
			wantServers: []string{"https://example.okta.com/oauth2/default"},
			wantAud:     "http://mcp.internal/",
		},
		{
			name: "authorization servers default to every issuer, primary first",
			env: map[string]string{"RESOURCE_URI": "https://mcp.example.com/mcp", "ISSUERS": "orders,org",
				"ISSUER_ORDERS_URL": "https://example.okta.com/oauth2/orders", "ISSUER_ORDERS_TOKEN_VALIDATION": "jwt",
				"ISSUER_ORG_URL": "https://example.okta.com", "ISSUER_ORG_CLIENT_ID": "c", "ISSUER_ORG_CLIENT_SECRET": "s"},
			wantServers: []string{"https://example.okta.com/oauth2/default", "https://example.okta.com/oauth2/orders", "https://example.okta.com"},
			wantAud:     "https://mcp.example.com/mcp",
		},
		{
			name: "RESOURCE_AUTHORIZATION_SERVERS wins over the issuers",
			env: map[string]string{"RESOURCE_URI": "https://mcp.example.com/mcp", "RESOURCE_AUTHORIZATION_SERVERS": "https://as.example.com",
				"ISSUERS": "org", "ISSUER_ORG_URL": "https://example.okta.com", "ISSUER_ORG_CLIENT_ID": "c", "ISSUER_ORG_CLIENT_SECRET": "s"},
			wantServers: []string{"https://as.example.com"},
			wantAud:     "https://mcp.example.com/mcp",
		},
		{
			name:    "OKTA_AUDIENCE alone is unchanged",
			env:     map[string]string{"OKTA_AUDIENCE": "api://default"},
			wantAud: "api://default",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadWith(t, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.AuthorizationServers(); !reflect.DeepEqual(got, tt.wantServers) {
				t.Errorf("AuthorizationServers() = %q, want %q", got, tt.wantServers)
			}
			if got := c.ResourceScopeList(); !reflect.DeepEqual(got, tt.wantScopes) {
				t.Errorf("ResourceScopeList() = %q, want %q", got, tt.wantScopes)
			}
			if got := c.RequiredAudience(); got != tt.wantAud {
				t.Errorf("RequiredAudience() = %q, want %q", got, tt.wantAud)
			}
		})
	}
}

func TestResourceProblems(t *testing.T) {
	const https = "RESOURCE_URI: must be an https URL (RFC 9728); http:// only for a loopback host or with ALLOW_INSECURE_HTTP=true"
	const clean = "RESOURCE_URI: path must be clean: no //, no . or .. segments, no ; and nothing percent-encoded"
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"not a URL", map[string]string{"RESOURCE_URI": "https://mcp.example.com/%zz"}, []string{"RESOURCE_URI: not a URL"}},
		{"relative", map[string]string{"RESOURCE_URI": "/mcp"}, []string{`RESOURCE_URI: must be an http or https URL, got scheme ""`}},
		{"plain http", map[string]string{"RESOURCE_URI": "http://mcp.example.com/mcp"}, []string{https}},
		{"fragment", map[string]string{"RESOURCE_URI": "https://mcp.example.com/mcp#x"}, []string{"RESOURCE_URI: must not have a query or a fragment"}},
		{"query", map[string]string{"RESOURCE_URI": "https://mcp.example.com/mcp?tenant=a"}, []string{"RESOURCE_URI: must not have a query or a fragment"}},
		{"credentials", map[string]string{"RESOURCE_URI": "https://u:p@mcp.example.com/mcp"}, []string{"RESOURCE_URI: must not carry credentials"}},
		{"double slash", map[string]string{"RESOURCE_URI": "https://mcp.example.com//mcp"}, []string{clean}},
		{"dot segment", map[string]string{"RESOURCE_URI": "https://mcp.example.com/a/../mcp"}, []string{clean}},
		{"encoded", map[string]string{"RESOURCE_URI": "https://mcp.example.com/m%63p"}, []string{clean}},
		{"semicolon", map[string]string{"RESOURCE_URI": "https://mcp.example.com/mcp;v=1"}, []string{clean}},
		{"bad authorization server", map[string]string{"RESOURCE_URI": "https://mcp.example.com/mcp",
			"RESOURCE_AUTHORIZATION_SERVERS": "https://ok.example.com,ftp://as.example.com"},
			[]string{`RESOURCE_AUTHORIZATION_SERVERS: "ftp://as.example.com": must be an http or https URL, got scheme "ftp"`}},
		{"bad documentation", map[string]string{"RESOURCE_URI": "https://mcp.example.com/mcp", "RESOURCE_DOCUMENTATION": "docs"},
			[]string{`RESOURCE_DOCUMENTATION: must be an http or https URL, got scheme ""`}},
		{"bad scope", map[string]string{"RESOURCE_URI": "https://mcp.example.com/mcp", "RESOURCE_SCOPES": `read,"write"`},
			[]string{`RESOURCE_SCOPES: "\"write\"" is not an RFC 6749 scope token`}},
		{"name with a line break", map[string]string{"RESOURCE_URI": "https://mcp.example.com/mcp", "RESOURCE_NAME": "a\nb"},
			[]string{"RESOURCE_NAME: must be printable, without line breaks"}},
		{"settings without RESOURCE_URI", map[string]string{"RESOURCE_AUTHORIZATION_SERVERS": "https://as.example.com",
			"RESOURCE_SCOPES": "read", "RESOURCE_NAME": "x", "RESOURCE_DOCUMENTATION": "https://docs.example.com"},
			[]string{
				"RESOURCE_AUTHORIZATION_SERVERS: set, but RESOURCE_URI is empty (protected-resource metadata is off)",
				"RESOURCE_SCOPES: set, but RESOURCE_URI is empty (protected-resource metadata is off)",
				"RESOURCE_NAME: set, but RESOURCE_URI is empty (protected-resource metadata is off)",
				"RESOURCE_DOCUMENTATION: set, but RESOURCE_URI is empty (protected-resource metadata is off)",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			env := required()
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := config.Load(lookup(env))
			checkErr(t, err, tt.want)
		})
	}
}

// TestEnvExampleDocumentsResourceSettings: .env.example names every
// RESOURCE_* variable and leaves the feature off.
func TestEnvExampleDocumentsResourceSettings(t *testing.T) {
	example, err := filepath.Abs("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(func(k string) (string, bool) {
		if k == "ENV_FILE" {
			return example, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.ResourceURI != "" || c.RequiredAudience() != "" {
		t.Errorf(".env.example turns protected-resource metadata on: %+v", c)
	}
	b, _ := os.ReadFile(example)
	for _, v := range []string{"RESOURCE_URI", "RESOURCE_AUTHORIZATION_SERVERS", "RESOURCE_SCOPES", "RESOURCE_NAME", "RESOURCE_DOCUMENTATION"} {
		if !strings.Contains(string(b), "\n"+v+"=") {
			t.Errorf(".env.example lacks %s", v)
		}
	}
}
