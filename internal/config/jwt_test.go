package config_test

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/pathrule"
)

func TestLoadTokenValidation(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(*config.Config) // applied to defaults()
		wantErr []string
	}{
		{
			name: "jwt mode needs no client credentials",
			env: with("TOKEN_VALIDATION", "jwt", "OKTA_AUDIENCE", "api://default", "OKTA_CLIENT_ID", "", "OKTA_CLIENT_SECRET", "",
				"OKTA_JWKS_URL", "https://example.okta.com/oauth2/default/v1/keys", "JWT_ALGORITHMS", "RS256, PS256,",
				"JWT_LEEWAY", "5s", "JWT_TYP", "at+jwt"),
			want: func(c *config.Config) {
				c.TokenValidation, c.OktaAudience, c.OktaClientID, c.OktaClientSecret = "jwt", "api://default", "", ""
				c.OktaJWKSURL = "https://example.okta.com/oauth2/default/v1/keys"
				c.JWTAlgorithms, c.JWTLeeway, c.JWTTyp = []string{"RS256", " PS256", ""}, 5*time.Second, "at+jwt"
			},
		},
		{
			name: "hybrid with introspect paths",
			env:  with("TOKEN_VALIDATION", "hybrid", "OKTA_AUDIENCE", "api://default", "INTROSPECT_PATHS", "POST /admin/*,/payments"),
			want: func(c *config.Config) {
				c.TokenValidation, c.OktaAudience = "hybrid", "api://default"
				c.IntrospectPaths = []string{"POST /admin/*", "/payments"}
				c.IntrospectPathRules = []pathrule.Rule{{Method: "POST", Path: "/admin/", Prefix: true}, {Path: "/payments"}}
			},
		},
		{
			name: "private_key_jwt needs a key, not a secret",
			env:  with("OKTA_AUTH_METHOD", "private_key_jwt", "OKTA_CLIENT_SECRET", "", "OKTA_PRIVATE_KEY_FILE", "/etc/authgate/key.pem", "OKTA_PRIVATE_KEY_ID", "k1"),
			want: func(c *config.Config) {
				c.OktaAuthMethod, c.OktaClientSecret = "private_key_jwt", ""
				c.OktaPrivateKeyFile, c.OktaPrivateKeyID = "/etc/authgate/key.pem", "k1"
			},
		},
		{
			name:    "unknown mode",
			env:     with("TOKEN_VALIDATION", "local"),
			wantErr: []string{`TOKEN_VALIDATION: must be introspect, jwt or hybrid, got "local"`},
		},
		{
			name:    "jwt mode without an audience",
			env:     with("TOKEN_VALIDATION", "jwt"),
			wantErr: []string{"OKTA_AUDIENCE: required when TOKEN_VALIDATION is jwt (or RESOURCE_URI): a JWT's aud must be checked (RFC 8725), e.g. api://default"},
		},
		{
			name:    "hybrid still introspects: client credentials required",
			env:     with("TOKEN_VALIDATION", "hybrid", "OKTA_AUDIENCE", "api://default", "OKTA_CLIENT_SECRET", ""),
			wantErr: []string{"OKTA_CLIENT_SECRET: required, must not be empty"},
		},
		{
			name: "none and HMAC algorithms refused",
			env:  with("JWT_ALGORITHMS", "none,HS256,RS1"),
			wantErr: []string{
				`JWT_ALGORITHMS: "none" is never accepted (RFC 8725: no unsigned tokens, no HMAC with a public key)`,
				`JWT_ALGORITHMS: "HS256" is never accepted (RFC 8725: no unsigned tokens, no HMAC with a public key)`,
				`JWT_ALGORITHMS: "RS1" is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`,
			},
		},
		{
			name:    "empty algorithm list",
			env:     with("JWT_ALGORITHMS", " , "),
			wantErr: []string{"JWT_ALGORITHMS: must list at least one algorithm, e.g. RS256,ES256"},
		},
		{
			name:    "leeway out of bounds",
			env:     with("JWT_LEEWAY", "1h"),
			wantErr: []string{"JWT_LEEWAY: must be between 0s and 5m0s, got 1h0m0s"},
		},
		{
			name:    "negative leeway",
			env:     with("JWT_LEEWAY", "-1s"),
			wantErr: []string{"JWT_LEEWAY: must be between 0s and 5m0s, got -1s"},
		},
		{
			name:    "JWKS URL over plain http",
			env:     with("OKTA_JWKS_URL", "http://keys.example.com/v1/keys"),
			wantErr: []string{"OKTA_JWKS_URL: http:// to a host that is not loopback lets anyone on the path substitute the signing keys; use https or set ALLOW_INSECURE_HTTP=true"},
		},
		{
			name:    "JWKS URL not a URL",
			env:     with("OKTA_JWKS_URL", "keys"),
			wantErr: []string{`OKTA_JWKS_URL: must be an http or https URL, got scheme ""`},
		},
		{
			name: "introspect paths outside hybrid, and malformed",
			env:  with("INTROSPECT_PATHS", "/admin/*,get /x"),
			wantErr: []string{
				`INTROSPECT_PATHS: "get /x": method must be upper-case letters, e.g. GET`,
				"INTROSPECT_PATHS: set, but TOKEN_VALIDATION is introspect (only hybrid chooses by path)",
			},
		},
		{
			name:    "private_key_jwt without a key",
			env:     with("OKTA_AUTH_METHOD", "private_key_jwt"),
			wantErr: []string{"OKTA_PRIVATE_KEY_FILE: required when OKTA_AUTH_METHOD is private_key_jwt"},
		},
		{
			name:    "a key without private_key_jwt",
			env:     with("OKTA_PRIVATE_KEY_FILE", "/k.pem"),
			wantErr: []string{"OKTA_PRIVATE_KEY_FILE: set, but OKTA_AUTH_METHOD is client_secret_basic (only private_key_jwt signs with a key)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // no stray .env
			c, err := config.Load(lookup(tt.env))
			checkErr(t, err, tt.wantErr)
			if tt.wantErr != nil {
				return
			}
			want := defaults()
			if tt.want != nil {
				tt.want(&want)
			}
			if !reflect.DeepEqual(*c, want) {
				t.Errorf("Load:\n got %+v\nwant %+v", *c, want)
			}
		})
	}
}

// TestEnvExampleListsEveryVariable: each variable Config reads has a line
// in .env.example.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if name, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			listed[name] = true
		}
	}
	for _, f := range reflect.VisibleFields(reflect.TypeOf(config.Config{})) {
		if name := f.Tag.Get("env"); name != "" && !listed[name] {
			t.Errorf(".env.example lacks %s", name)
		}
	}
}
