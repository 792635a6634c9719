package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/pathrule"
)

// secretA is ISSUER_A_CLIENT_SECRET: no error message may contain it either.
const secretA = "MARKER-issuer-a-secret-77c2"

// withA is with(vars...) plus a valid issuer a (introspection), vars set
// over both; an empty value unsets.
func withA(vars ...string) map[string]string {
	base := []string{
		"ISSUERS", "a",
		"ISSUER_A_URL", "https://example.okta.com/oauth2/a",
		"ISSUER_A_CLIENT_ID", "0oa2",
		"ISSUER_A_CLIENT_SECRET", secretA,
	}
	return with(append(base, vars...)...)
}

// issuerA is the issuer withA() loads to.
func issuerA() config.Issuer {
	return config.Issuer{
		Name:               "a",
		URL:                "https://example.okta.com/oauth2/a",
		TokenValidation:    "introspect",
		ClientID:           "0oa2",
		ClientSecret:       secretA,
		AuthMethod:         "client_secret_basic",
		JWTAlgorithms:      []string{"RS256", "ES256"},
		JWTLeeway:          30 * time.Second,
		Timeout:            3 * time.Second,
		BreakerFailures:    5,
		BreakerOpenTimeout: 30 * time.Second,
	}
}

// primary is the primary issuer required() loads to.
func primary() config.Issuer {
	return config.Issuer{
		Name:               "primary",
		URL:                "https://example.okta.com/oauth2/default",
		TokenValidation:    "introspect",
		ClientID:           "0oa1",
		ClientSecret:       secret,
		AuthMethod:         "client_secret_basic",
		JWTAlgorithms:      []string{"RS256", "ES256"},
		JWTLeeway:          30 * time.Second,
		Timeout:            3 * time.Second,
		BreakerFailures:    5,
		BreakerOpenTimeout: 30 * time.Second,
	}
}

func rules(t *testing.T, list ...string) []pathrule.Rule {
	t.Helper()
	r, errs := pathrule.ParseList(list)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return r
}

// TestIssuersWithoutISSUERS: an env file of today (no ISSUERS) loads to
// one issuer, the primary, holding exactly the OKTA_* values Config holds.
func TestIssuersWithoutISSUERS(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(*config.Issuer) // applied to primary()
	}{
		{name: "defaults", env: required()},
		{
			name: "every primary variable set",
			env: with("OKTA_INTROSPECT_URL", "https://example.okta.com/oauth2/default/v1/introspect",
				"OKTA_AUTH_METHOD", "private_key_jwt", "OKTA_CLIENT_SECRET", "",
				"OKTA_PRIVATE_KEY_FILE", "/etc/authgate/key.pem", "OKTA_PRIVATE_KEY_ID", "k1",
				"OKTA_AUDIENCE", "api://default", "OKTA_TIMEOUT", "2s", "TOKEN_VALIDATION", "hybrid",
				"INTROSPECT_PATHS", "POST /admin/*", "OKTA_JWKS_URL", "https://example.okta.com/oauth2/default/v1/keys",
				"JWT_ALGORITHMS", "ES256, PS256,", "JWT_LEEWAY", "5s", "JWT_TYP", "at+jwt",
				"OKTA_MAX_RPS", "7.5", "OKTA_CA_FILE", "/etc/authgate/ca.pem",
				"OKTA_BREAKER_FAILURES", "3", "OKTA_BREAKER_OPEN_TIMEOUT", "10s",
				"OKTA_REVOKE_URL", "https://example.okta.com/oauth2/default/v1/revoke",
				"REVOKE_UPSTREAM", "true", "ADMIN_API_TOKEN", adminToken),
			want: func(i *config.Issuer) {
				i.IntrospectEndpoint = "https://example.okta.com/oauth2/default/v1/introspect"
				i.AuthMethod, i.ClientSecret = "private_key_jwt", ""
				i.PrivateKeyFile, i.PrivateKeyID = "/etc/authgate/key.pem", "k1"
				i.Audience, i.Timeout, i.TokenValidation = "api://default", 2*time.Second, "hybrid"
				i.IntrospectPaths = []pathrule.Rule{{Method: "POST", Path: "/admin/", Prefix: true}}
				i.JWKSURL = "https://example.okta.com/oauth2/default/v1/keys"
				i.JWTAlgorithms, i.JWTLeeway, i.JWTTyp = []string{"ES256", "PS256"}, 5*time.Second, "at+jwt"
				i.MaxRPS, i.CAFile = 7.5, "/etc/authgate/ca.pem"
				i.BreakerFailures, i.BreakerOpenTimeout = 3, 10*time.Second
				i.RevokeURL, i.RevokeUpstream = "https://example.okta.com/oauth2/default/v1/revoke", true
			},
		},
		{
			name: "RESOURCE_URI is the audience when OKTA_AUDIENCE is not set",
			env:  with("RESOURCE_URI", "https://mcp.example.com/mcp"),
			want: func(i *config.Issuer) { i.Audience = "https://mcp.example.com/mcp" },
		},
		{
			name: "ISSUERS empty is none",
			env:  with("ISSUERS", " "),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			c, err := config.Load(lookup(tt.env))
			checkErr(t, err, nil)
			want := primary()
			if tt.want != nil {
				tt.want(&want)
			}
			got := c.Issuers()
			if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Fatalf("Issuers() =\n%+v\nwant [\n%+v]", got, want)
			}
			// The primary's methods agree with Config's, which the request
			// path uses today.
			p := got[0]
			if !p.IsPrimary() || p.IntrospectURL() != c.IntrospectURL() || p.Introspects() != c.Introspects() ||
				p.UsesClientCredentials() != c.UsesClientCredentials() || p.ValidatesJWT() != c.ValidatesJWT() ||
				p.Audience != c.RequiredAudience() || !reflect.DeepEqual(p.JWTAlgorithms, c.Algorithms()) ||
				!reflect.DeepEqual(p.IntrospectPaths, c.IntrospectPathRules) || p.OpaquePaths != nil {
				t.Errorf("the primary's methods differ from Config's: %+v", p)
			}
		})
	}
}

func TestLoadIssuers(t *testing.T) {
	const (
		bHTTP  = "http://idp.example.com/oauth2/b"
		plain  = ": http:// to a host that is not loopback would send the client secret and tokens in clear; use https or set ALLOW_INSECURE_HTTP=true"
		keysMI = ": http:// to a host that is not loopback lets anyone on the path substitute the signing keys; use https or set ALLOW_INSECURE_HTTP=true"
	)
	tests := []struct {
		name    string
		env     map[string]string
		want    func(t *testing.T) []config.Issuer // the issuers after the primary
		wantErr []string
	}{
		{
			name: "one issuer, introspected, the primary's bounds inherited",
			env:  withA(),
			want: func(*testing.T) []config.Issuer { return []config.Issuer{issuerA()} },
		},
		{
			name: "inherited: timeout, budget, breaker, algorithms, leeway; not the audience, CA file or typ",
			env: withA("OKTA_TIMEOUT", "500ms", "OKTA_MAX_RPS", "4", "OKTA_BREAKER_FAILURES", "2", "OKTA_BREAKER_OPEN_TIMEOUT", "5s",
				"JWT_ALGORITHMS", "ES384", "JWT_LEEWAY", "1s", "OKTA_AUDIENCE", "api://default",
				"OKTA_CA_FILE", "/etc/authgate/ca.pem", "JWT_TYP", "at+jwt"),
			want: func(*testing.T) []config.Issuer {
				a := issuerA()
				a.Timeout, a.MaxRPS, a.BreakerFailures, a.BreakerOpenTimeout = 500*time.Millisecond, 4, 2, 5*time.Second
				a.JWTAlgorithms, a.JWTLeeway = []string{"ES384"}, time.Second
				return []config.Issuer{a}
			},
		},
		{
			// ISSUER_A_MAX_RPS=0 is unlimited, not "unset"; an empty value is unset.
			name: "own values win, 0 included",
			env: withA("OKTA_TIMEOUT", "500ms", "OKTA_MAX_RPS", "4", "ISSUER_A_MAX_RPS", "0", "ISSUER_A_TIMEOUT", "",
				"ISSUER_A_BREAKER_FAILURES", "9", "ISSUER_A_BREAKER_OPEN_TIMEOUT", "1m", "ISSUER_A_JWT_ALGORITHMS", "PS256, EdDSA,",
				"ISSUER_A_JWT_LEEWAY", "0s", "ISSUER_A_JWT_TYP", "at+jwt", "ISSUER_A_CA_FILE", "/etc/authgate/a-ca.pem"),
			want: func(*testing.T) []config.Issuer {
				a := issuerA()
				a.Timeout, a.MaxRPS, a.BreakerFailures, a.BreakerOpenTimeout = 500*time.Millisecond, 0, 9, time.Minute
				a.JWTAlgorithms, a.JWTLeeway, a.JWTTyp, a.CAFile = []string{"PS256", "EdDSA"}, 0, "at+jwt", "/etc/authgate/a-ca.pem"
				return []config.Issuer{a}
			},
		},
		{
			name: "an empty ISSUER_A_TIMEOUT in the process environment is unset",
			env:  withA("ISSUER_A_TIMEOUT", ""),
			want: func(*testing.T) []config.Issuer { return []config.Issuer{issuerA()} },
		},
		{
			name: "every setting of an issuer",
			env: withA("ISSUERS", " a , b2 ", "ISSUER_A_TOKEN_VALIDATION", "hybrid", "ISSUER_A_AUDIENCE", "api://a",
				"ISSUER_A_INTROSPECT_URL", "https://example.okta.com/oauth2/a/v1/introspect",
				"ISSUER_A_JWKS_URL", "https://example.okta.com/oauth2/a/v1/keys",
				"ISSUER_A_REVOKE_URL", "https://example.okta.com/oauth2/a/v1/revoke",
				"ISSUER_A_INTROSPECT_PATHS", "POST /pay,/admin/*", "ISSUER_A_OPAQUE_PATHS", "/a/*, GET /a-me",
				"ISSUER_A_AUTH_METHOD", "private_key_jwt", "ISSUER_A_CLIENT_SECRET", "",
				"ISSUER_A_PRIVATE_KEY_FILE", "/etc/authgate/a.pem", "ISSUER_A_PRIVATE_KEY_ID", "a1",
				"ISSUER_B2_URL", "https://partner.example.com", "ISSUER_B2_TOKEN_VALIDATION", "jwt", "ISSUER_B2_AUDIENCE", "https://api.example.com"),
			want: func(t *testing.T) []config.Issuer {
				a := issuerA()
				a.TokenValidation, a.Audience = "hybrid", "api://a"
				a.IntrospectEndpoint = "https://example.okta.com/oauth2/a/v1/introspect"
				a.JWKSURL = "https://example.okta.com/oauth2/a/v1/keys"
				a.RevokeURL = "https://example.okta.com/oauth2/a/v1/revoke"
				a.IntrospectPaths = rules(t, "POST /pay", "/admin/*")
				a.OpaquePaths = rules(t, "/a/*", "GET /a-me")
				a.AuthMethod, a.ClientSecret, a.PrivateKeyFile, a.PrivateKeyID = "private_key_jwt", "", "/etc/authgate/a.pem", "a1"
				b := issuerA()
				b.Name, b.URL, b.TokenValidation, b.Audience, b.ClientID, b.ClientSecret = "b2", "https://partner.example.com", "jwt", "https://api.example.com", "", ""
				return []config.Issuer{a, b}
			},
		},
		{
			name: "a jwt issuer needs no client; RESOURCE_URI is its audience",
			env: withA("ISSUER_A_TOKEN_VALIDATION", "jwt", "ISSUER_A_CLIENT_ID", "", "ISSUER_A_CLIENT_SECRET", "",
				"RESOURCE_URI", "https://mcp.example.com/mcp"),
			want: func(*testing.T) []config.Issuer {
				a := issuerA()
				a.TokenValidation, a.ClientID, a.ClientSecret, a.Audience = "jwt", "", "", "https://mcp.example.com/mcp"
				return []config.Issuer{a}
			},
		},
		{
			name: "plain http to loopback, or with ALLOW_INSECURE_HTTP",
			env: withA("ISSUERS", "a,b", "ISSUER_A_URL", "http://127.0.0.1:9000/oauth2/a", "ISSUER_A_CA_FILE", "",
				"ISSUER_B_URL", bHTTP, "ISSUER_B_CLIENT_ID", "0oa3", "ISSUER_B_CLIENT_SECRET", "s", "ALLOW_INSECURE_HTTP", "true"),
			want: func(*testing.T) []config.Issuer {
				a := issuerA()
				a.URL = "http://127.0.0.1:9000/oauth2/a"
				b := issuerA()
				b.Name, b.URL, b.ClientID, b.ClientSecret = "b", bHTTP, "0oa3", "s"
				return []config.Issuer{a, b}
			},
		},

		// ISSUERS.
		{
			name: "bad names in ISSUERS",
			env:  withA("ISSUERS", "a,,Pay,pay-ments,primary,a,b_c, "),
			wantErr: []string{
				"ISSUERS: an empty name (a comma too many?); names are comma-separated, e.g. payments,org",
				`ISSUERS: "Pay" is not an issuer name: lower-case letters and digits only, e.g. payments`,
				`ISSUERS: "pay-ments" is not an issuer name: lower-case letters and digits only, e.g. payments`,
				`ISSUERS: "primary" is the name of the issuer OKTA_ISSUER configures; choose another`,
				`ISSUERS: "a" is listed twice`,
				`ISSUERS: "b_c" is not an issuer name: lower-case letters and digits only, e.g. payments`,
				"ISSUERS: an empty name (a comma too many?); names are comma-separated, e.g. payments,org",
			},
		},
		{
			name:    "an issuer without its URL",
			env:     withA("ISSUERS", "a,b"),
			wantErr: []string{"ISSUER_B_URL: required, must not be empty", "ISSUER_B_CLIENT_ID: required, must not be empty", "ISSUER_B_CLIENT_SECRET: required, must not be empty"},
		},
		{
			name: "two issuers with the same URL, the primary's included",
			env: withA("ISSUERS", "a,b,c", "ISSUER_A_URL", "https://example.okta.com/oauth2/default/",
				"ISSUER_B_URL", "https://example.okta.com/oauth2/b", "ISSUER_B_CLIENT_ID", "x", "ISSUER_B_CLIENT_SECRET", "s",
				"ISSUER_C_URL", "https://example.okta.com/oauth2/b", "ISSUER_C_CLIENT_ID", "x", "ISSUER_C_CLIENT_SECRET", "s"),
			wantErr: []string{
				"ISSUER_A_URL: the same issuer as OKTA_ISSUER; configure each issuer once",
				"ISSUER_C_URL: the same issuer as ISSUER_B_URL; configure each issuer once",
			},
		},

		// The primary's rules, under the issuer's names.
		{
			name:    "unknown token validation",
			env:     withA("ISSUER_A_TOKEN_VALIDATION", "local"),
			wantErr: []string{`ISSUER_A_TOKEN_VALIDATION: must be introspect, jwt or hybrid, got "local"`},
		},
		{
			name:    "hybrid introspects: credentials required",
			env:     withA("ISSUER_A_TOKEN_VALIDATION", "hybrid", "ISSUER_A_AUDIENCE", "api://a", "ISSUER_A_CLIENT_ID", " ", "ISSUER_A_CLIENT_SECRET", ""),
			wantErr: []string{"ISSUER_A_CLIENT_ID: required, must not be empty", "ISSUER_A_CLIENT_SECRET: required, must not be empty"},
		},
		{
			name: "jwt without an audience; the primary's does not count",
			env:  withA("ISSUER_A_TOKEN_VALIDATION", "jwt", "OKTA_AUDIENCE", "api://default"),
			wantErr: []string{
				"ISSUER_A_AUDIENCE: required when ISSUER_A_TOKEN_VALIDATION is jwt (or RESOURCE_URI): a JWT's aud must be checked (RFC 8725), e.g. api://default",
			},
		},
		{
			name:    "REVOKE_UPSTREAM needs a jwt issuer's client too",
			env:     withA("ISSUER_A_TOKEN_VALIDATION", "jwt", "ISSUER_A_AUDIENCE", "api://a", "ISSUER_A_CLIENT_SECRET", "", "REVOKE_UPSTREAM", "true", "ADMIN_API_TOKEN", adminToken),
			wantErr: []string{"ISSUER_A_CLIENT_SECRET: required, must not be empty"},
		},
		{
			name: "auth method and private key",
			env:  withA("ISSUERS", "a,b", "ISSUER_A_AUTH_METHOD", "private_key_jwt", "ISSUER_B_URL", "https://b.example.com", "ISSUER_B_CLIENT_ID", "x", "ISSUER_B_CLIENT_SECRET", "s", "ISSUER_B_AUTH_METHOD", "client_secret_post", "ISSUER_B_PRIVATE_KEY_FILE", "/k.pem"),
			wantErr: []string{
				"ISSUER_A_PRIVATE_KEY_FILE: required when ISSUER_A_AUTH_METHOD is private_key_jwt",
				"ISSUER_B_PRIVATE_KEY_FILE: set, but ISSUER_B_AUTH_METHOD is client_secret_post (only private_key_jwt signs with a key)",
			},
		},
		{
			name:    "bad auth method",
			env:     withA("ISSUER_A_AUTH_METHOD", "client_secret_jwt"),
			wantErr: []string{`ISSUER_A_AUTH_METHOD: must be client_secret_basic, client_secret_post or private_key_jwt, got "client_secret_jwt"`},
		},
		{
			name: "bad URLs",
			env: withA("ISSUER_A_URL", "ftp://example.okta.com/oauth2/a", "ISSUER_A_INTROSPECT_URL", "https://0oa2:"+secretA+"@example.okta.com/i",
				"ISSUER_A_JWKS_URL", "example.okta.com/keys", "ISSUER_A_REVOKE_URL", "https:///revoke"),
			wantErr: []string{
				`ISSUER_A_URL: must be an http or https URL, got scheme "ftp"`,
				"ISSUER_A_INTROSPECT_URL: must not carry credentials",
				`ISSUER_A_JWKS_URL: must be an http or https URL, got scheme ""`,
				"ISSUER_A_REVOKE_URL: must be an absolute URL with a host",
			},
		},
		{
			name: "plain http to another host",
			env: withA("ISSUER_A_URL", "http://idp.example.com/oauth2/a", "ISSUER_A_INTROSPECT_URL", "http://idp.example.com/i",
				"ISSUER_A_JWKS_URL", "http://idp.example.com/keys", "ISSUER_A_REVOKE_URL", "http://idp.example.com/revoke"),
			wantErr: []string{"ISSUER_A_URL" + plain, "ISSUER_A_INTROSPECT_URL" + plain, "ISSUER_A_JWKS_URL" + keysMI, "ISSUER_A_REVOKE_URL" + plain},
		},
		{
			name:    "a CA file for a plain http issuer",
			env:     withA("ISSUER_A_URL", "http://localhost:9000/oauth2/a", "ISSUER_A_CA_FILE", "/ca.pem"),
			wantErr: []string{"ISSUER_A_CA_FILE: set, but the introspection URL http://localhost:9000/oauth2/a/v1/introspect is not https"},
		},
		{
			name: "bad path rules",
			env:  withA("ISSUER_A_TOKEN_VALIDATION", "hybrid", "ISSUER_A_AUDIENCE", "api://a", "ISSUER_A_INTROSPECT_PATHS", "pay,/x", "ISSUER_A_OPAQUE_PATHS", "get /a,/a/../b"),
			wantErr: []string{
				`ISSUER_A_INTROSPECT_PATHS: "pay": path must start with /`,
				`ISSUER_A_OPAQUE_PATHS: "get /a": method must be upper-case letters, e.g. GET`,
				`ISSUER_A_OPAQUE_PATHS: "/a/../b": path must not contain . or .. segments`,
			},
		},
		{
			name: "INTROSPECT_PATHS outside hybrid, OPAQUE_PATHS on a jwt issuer",
			env: withA("ISSUERS", "a,b", "ISSUER_A_INTROSPECT_PATHS", "/pay",
				"ISSUER_B_URL", "https://b.example.com", "ISSUER_B_TOKEN_VALIDATION", "jwt", "ISSUER_B_AUDIENCE", "api://b", "ISSUER_B_OPAQUE_PATHS", "/b/*"),
			wantErr: []string{
				"ISSUER_A_INTROSPECT_PATHS: set, but ISSUER_A_TOKEN_VALIDATION is introspect (only hybrid chooses by path)",
				"ISSUER_B_OPAQUE_PATHS: set, but ISSUER_B_TOKEN_VALIDATION is jwt: an opaque token can only be introspected",
			},
		},
		{
			// A value that fails to parse is reported once, not again as zero.
			name: "values that do not parse",
			env: withA("ISSUER_A_TIMEOUT", "3", "ISSUER_A_MAX_RPS", "ten", "ISSUER_A_BREAKER_FAILURES", "-1",
				"ISSUER_A_BREAKER_OPEN_TIMEOUT", "soon", "ISSUER_A_JWT_LEEWAY", "1 min"),
			wantErr: []string{
				`ISSUER_A_TIMEOUT: not a duration (examples: 500ms, 3s, 5m): unable to parse duration: time: missing unit in duration "3"`,
				`ISSUER_A_MAX_RPS: not a valid float64: strconv.ParseFloat: parsing "ten": invalid syntax`,
				`ISSUER_A_BREAKER_FAILURES: not a valid uint32: strconv.ParseUint: parsing "-1": invalid syntax`,
				`ISSUER_A_BREAKER_OPEN_TIMEOUT: not a duration (examples: 500ms, 3s, 5m): unable to parse duration: time: invalid duration "soon"`,
				`ISSUER_A_JWT_LEEWAY: not a duration (examples: 500ms, 3s, 5m): unable to parse duration: time: unknown unit " min" in duration "1 min"`,
			},
		},
		{
			name: "values out of range",
			env: withA("ISSUER_A_TIMEOUT", "0s", "ISSUER_A_MAX_RPS", "NaN", "ISSUER_A_BREAKER_FAILURES", "0",
				"ISSUER_A_BREAKER_OPEN_TIMEOUT", "-1s", "ISSUER_A_JWT_LEEWAY", "6m", "ISSUER_A_JWT_ALGORITHMS", "RS256,HS256,none,XS1"),
			wantErr: []string{
				"ISSUER_A_TIMEOUT: must be a positive duration, got 0s",
				"ISSUER_A_BREAKER_OPEN_TIMEOUT: must be a positive duration, got -1s",
				"ISSUER_A_BREAKER_FAILURES: must be at least 1",
				"ISSUER_A_MAX_RPS: must be 0 (unlimited) or a positive number of introspections per second, got NaN",
				`ISSUER_A_JWT_ALGORITHMS: "HS256" is never accepted (RFC 8725: no unsigned tokens, no HMAC with a public key)`,
				`ISSUER_A_JWT_ALGORITHMS: "none" is never accepted (RFC 8725: no unsigned tokens, no HMAC with a public key)`,
				`ISSUER_A_JWT_ALGORITHMS: "XS1" is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`,
				"ISSUER_A_JWT_LEEWAY: must be between 0s and 5m0s, got 6m0s",
			},
		},
		{
			name:    "a blank algorithm list is not the primary's",
			env:     withA("ISSUER_A_JWT_ALGORITHMS", " , "),
			wantErr: []string{"ISSUER_A_JWT_ALGORITHMS: must list at least one algorithm, e.g. RS256,ES256"},
		},
		{
			// The primary's own bad value is reported once, under its name.
			name:    "an inherited bad value is the primary's problem",
			env:     withA("OKTA_TIMEOUT", "-1s", "JWT_LEEWAY", "10m"),
			wantErr: []string{"OKTA_TIMEOUT: must be a positive duration, got -1s", "JWT_LEEWAY: must be between 0s and 5m0s, got 10m0s"},
		},

		// Variables that would configure nothing.
		{
			name: "ISSUER_* variables of no issuer, or of no setting",
			env: withA("ISSUER_B_URL", "https://b.example.com", "ISSUER_A_TIMEOTU", "1s", "ISSUER_A_MAX_RPS_PER_CLIENT", "1",
				"ISSUER_PRIMARY_URL", "https://example.okta.com/oauth2/default", "ISSUER_a_URL", "x", "ISSUER_X", "1", "ISSUER__URL", "x",
				"ISSUER_B_C_URL", "x", "ISSUER_A_", "x", "ISSUER_EMPTY_URL", ""),
			wantErr: []string{
				"ISSUER_A_: not a per-issuer variable: ISSUER_<NAME>_<SETTING>, NAME an ISSUERS name in upper case",
				"ISSUER_A_MAX_RPS_PER_CLIENT: MAX_RPS_PER_CLIENT is not a per-issuer setting (docs/issuers.md lists them, and the variables that stay global)",
				"ISSUER_A_TIMEOTU: TIMEOTU is not a per-issuer setting (docs/issuers.md lists them, and the variables that stay global)",
				"ISSUER_B_C_URL: set, but ISSUERS does not name b",
				"ISSUER_B_URL: set, but ISSUERS does not name b",
				"ISSUER_PRIMARY_URL: set, but ISSUERS does not name primary",
				"ISSUER_X: not a per-issuer variable: ISSUER_<NAME>_<SETTING>, NAME an ISSUERS name in upper case",
				"ISSUER__URL: not a per-issuer variable: ISSUER_<NAME>_<SETTING>, NAME an ISSUERS name in upper case",
				"ISSUER_a_URL: not a per-issuer variable: ISSUER_<NAME>_<SETTING>, NAME an ISSUERS name in upper case",
			},
		},
		{
			name:    "ISSUER_* variables without ISSUERS",
			env:     with("ISSUER_ORG_URL", "https://example.okta.com"),
			wantErr: []string{"ISSUER_ORG_URL: set, but ISSUERS does not name org"},
		},
		{
			name: "every problem at once, in order",
			env: withA("ISSUERS", "a,B,b", "OKTA_CLIENT_ID", "", "ISSUER_A_TIMEOUT", "x", "ISSUER_A_AUTH_METHOD", "none",
				"ISSUER_B_TOKEN_VALIDATION", "jwt", "ISSUER_C_URL", "https://c.example.com"),
			wantErr: []string{
				"OKTA_CLIENT_ID: required, must not be empty",
				`ISSUERS: "B" is not an issuer name: lower-case letters and digits only, e.g. payments`,
				`ISSUER_A_TIMEOUT: not a duration (examples: 500ms, 3s, 5m): unable to parse duration: time: invalid duration "x"`,
				`ISSUER_A_AUTH_METHOD: must be client_secret_basic, client_secret_post or private_key_jwt, got "none"`,
				"ISSUER_B_URL: required, must not be empty",
				"ISSUER_B_AUDIENCE: required when ISSUER_B_TOKEN_VALIDATION is jwt (or RESOURCE_URI): a JWT's aud must be checked (RFC 8725), e.g. api://default",
				"ISSUER_C_URL: set, but ISSUERS does not name c",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			// As in production (lookup is os.LookupEnv), the process
			// environment holds what lookup does: the stray-variable check
			// lists names from os.Environ.
			for k, v := range tt.env {
				if strings.HasPrefix(k, "ISSUER_") {
					t.Setenv(k, v)
				}
			}
			c, err := config.Load(lookup(tt.env))
			checkErr(t, err, tt.wantErr)
			if err != nil {
				if strings.Contains(err.Error(), secretA) {
					t.Errorf("Error() leaks ISSUER_A_CLIENT_SECRET: %q", err)
				}
				return
			}
			got := c.Issuers()
			if len(got) == 0 || got[0].Name != config.PrimaryIssuer {
				t.Fatalf("Issuers() = %+v: the primary is not first", got)
			}
			if want := tt.want(t); !reflect.DeepEqual(got[1:], want) {
				t.Errorf("Issuers()[1:] =\n%+v\nwant\n%+v", got[1:], want)
			}
		})
	}
}

// TestIssuerVariablesFromEnvFileAndProcess: per-issuer variables come from
// the env file and the process environment like every other, the process
// winning (empty there means unset), and a stray one is found in either.
func TestIssuerVariablesFromEnvFileAndProcess(t *testing.T) {
	const file = "ISSUERS=a\n" +
		"ISSUER_A_URL=https://example.okta.com/oauth2/a\n" +
		"ISSUER_A_CLIENT_ID=from-file\n" +
		"ISSUER_A_CLIENT_SECRET=" + secretA + "\n" +
		"ISSUER_A_TIMEOUT=9s\n" +
		"ISSUER_A_MAX_RPS=3\n"
	tests := []struct {
		name    string
		file    string
		env     map[string]string // over required()
		setenv  map[string]string // the real process environment (os.Environ), not in env
		want    func(*config.Issuer)
		wantErr []string
	}{
		{
			name: "from the file",
			file: file,
			want: func(a *config.Issuer) { a.ClientID, a.Timeout, a.MaxRPS = "from-file", 9*time.Second, 3 },
		},
		{
			name: "the process wins; empty there is unset (inherits)",
			file: file,
			env:  map[string]string{"ISSUER_A_CLIENT_ID": "from-env", "ISSUER_A_TIMEOUT": ""},
			want: func(a *config.Issuer) { a.ClientID, a.MaxRPS = "from-env", 3 },
		},
		{
			name:    "empty in the process overrides a required one from the file",
			file:    file,
			env:     map[string]string{"ISSUER_A_URL": ""},
			wantErr: []string{"ISSUER_A_URL: required, must not be empty"},
		},
		{
			name:    "a stray variable in the file",
			file:    file + "ISSUER_ORGG_URL=https://example.okta.com\n",
			wantErr: []string{"ISSUER_ORGG_URL: set, but ISSUERS does not name orgg"},
		},
		{
			name:    "a stray variable in the process environment",
			file:    file,
			env:     map[string]string{"ISSUER_A_TIMEOUTS": "1s"},
			setenv:  map[string]string{"ISSUER_A_TIMEOUTS": "1s"},
			wantErr: []string{"ISSUER_A_TIMEOUTS: TIMEOUTS is not a per-issuer setting (docs/issuers.md lists them, and the variables that stay global)"},
		},
		{
			// Values come through lookup only: a process variable the
			// lookup does not hold is not read (as TestLoadIgnoresProcessEnvironment).
			name:   "a process variable lookup does not hold",
			file:   file,
			setenv: map[string]string{"ISSUER_ZZ_URL": "https://zz.example.com", "ISSUER_A_JWT_LEEWAY": "1h"},
			want:   func(a *config.Issuer) { a.ClientID, a.Timeout, a.MaxRPS = "from-file", 9*time.Second, 3 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			path := filepath.Join(t.TempDir(), "authgate.env")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			env := required()
			env["ENV_FILE"] = path
			for k, v := range tt.env {
				env[k] = v
			}
			for k, v := range tt.setenv {
				t.Setenv(k, v)
			}
			c, err := config.Load(lookup(env))
			checkErr(t, err, tt.wantErr)
			if err != nil {
				if strings.Contains(err.Error(), secretA) {
					t.Errorf("Error() leaks ISSUER_A_CLIENT_SECRET: %q", err)
				}
				return
			}
			want := issuerA()
			tt.want(&want)
			if got := c.Issuers(); len(got) != 2 || !reflect.DeepEqual(got[1], want) {
				t.Errorf("Issuers() =\n%+v\nwant [primary,\n%+v]", got, want)
			}
		})
	}
}

// TestIssuerRulesMirrorPrimary: a value refused in an issuer's variable is
// refused in the primary's twin with the same message, the variable names
// aside, and the other way round: the issuers' checks are the primary's.
func TestIssuerRulesMirrorPrimary(t *testing.T) {
	// twin maps a primary variable to issuer a's.
	twin := map[string]string{}
	a := config.Issuer{Name: "a"}
	p := config.Issuer{Name: config.PrimaryIssuer}
	for _, s := range []string{"URL", "TOKEN_VALIDATION", "INTROSPECT_URL", "CLIENT_ID", "CLIENT_SECRET", "AUTH_METHOD",
		"PRIVATE_KEY_FILE", "PRIVATE_KEY_ID", "AUDIENCE", "JWKS_URL", "JWT_TYP", "INTROSPECT_PATHS", "CA_FILE", "REVOKE_URL",
		"TIMEOUT", "MAX_RPS", "BREAKER_FAILURES", "BREAKER_OPEN_TIMEOUT", "JWT_ALGORITHMS", "JWT_LEEWAY"} {
		twin[p.Var(s)] = a.Var(s)
	}
	name := regexp.MustCompile(`\b[A-Z][A-Z0-9_]*[A-Z0-9]\b`)
	rename := func(msg string) string {
		return name.ReplaceAllStringFunc(msg, func(n string) string {
			if v, ok := twin[n]; ok {
				return v
			}
			return n
		})
	}
	// Each case: settings (suffixes) and values, set once on the primary,
	// once on issuer a.
	cases := [][]string{
		{"URL", ""},
		{"URL", "ftp://example.okta.com/x"},
		{"URL", "https:///x"},
		{"URL", "https://example.okta.com/%zz"},
		{"URL", "http://idp.example.com/oauth2/x"},
		{"TOKEN_VALIDATION", "local"},
		{"TOKEN_VALIDATION", "jwt"},
		{"TOKEN_VALIDATION", "hybrid"},
		{"TOKEN_VALIDATION", "hybrid", "CLIENT_SECRET", ""},
		{"TOKEN_VALIDATION", "jwt", "AUDIENCE", "api://x", "CLIENT_ID", "", "CLIENT_SECRET", ""},
		{"INTROSPECT_URL", "http://idp.example.com/introspect"},
		{"INTROSPECT_URL", "https://u:p@example.okta.com/introspect"},
		{"CLIENT_ID", " "},
		{"CLIENT_SECRET", ""},
		{"AUTH_METHOD", "client_secret_jwt"},
		{"AUTH_METHOD", "private_key_jwt"},
		{"AUTH_METHOD", "private_key_jwt", "CLIENT_SECRET", "", "PRIVATE_KEY_FILE", "/k.pem"},
		{"PRIVATE_KEY_FILE", "/k.pem"},
		{"JWKS_URL", "http://idp.example.com/keys"},
		{"JWKS_URL", "ftp://idp.example.com/keys"},
		{"JWT_ALGORITHMS", "HS256,none,XX,ES256"},
		{"JWT_ALGORITHMS", ","},
		{"JWT_LEEWAY", "10m"},
		{"JWT_LEEWAY", "-1s"},
		{"JWT_LEEWAY", "abc"},
		{"INTROSPECT_PATHS", "pay"},
		{"INTROSPECT_PATHS", "/pay"},
		{"TOKEN_VALIDATION", "hybrid", "AUDIENCE", "api://x", "INTROSPECT_PATHS", "/pay,GET /a/*"},
		{"TIMEOUT", "0s"},
		{"TIMEOUT", "3"},
		{"MAX_RPS", "-1"},
		{"MAX_RPS", "+Inf"},
		{"MAX_RPS", "x"},
		{"BREAKER_FAILURES", "0"},
		{"BREAKER_FAILURES", "-1"},
		{"BREAKER_OPEN_TIMEOUT", "-1ms"},
		{"CA_FILE", "/ca.pem", "URL", "http://127.0.0.1:9000/oauth2/x"},
		{"REVOKE_URL", "http://idp.example.com/revoke"},
		{"REVOKE_URL", "revoke"},
		{"JWT_TYP", "at+jwt"},
	}
	t.Chdir(t.TempDir())
	for _, kv := range cases {
		var onPrimary, onA []string
		for i := 0; i+1 < len(kv); i += 2 {
			onPrimary = append(onPrimary, p.Var(kv[i]), kv[i+1])
			onA = append(onA, a.Var(kv[i]), kv[i+1])
		}
		problems := func(env map[string]string) []string {
			_, err := config.Load(lookup(env))
			var ce *config.Error
			if err == nil {
				return nil
			}
			if !errorsAs(err, &ce) {
				t.Fatalf("%v: %v", kv, err)
			}
			return ce.Problems
		}
		var want []string
		for _, m := range problems(withA(onPrimary...)) {
			want = append(want, rename(m))
		}
		got := problems(withA(onA...))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v:\n  on issuer a: %q\n  on the primary, renamed: %q", kv, got, want)
		}
	}
}

// TestIssuerVar: the variable of each setting, for messages.
func TestIssuerVar(t *testing.T) {
	p := config.Issuer{Name: config.PrimaryIssuer}
	a := config.Issuer{Name: "org2"}
	for _, tt := range []struct{ setting, primary, issuer string }{
		{"URL", "OKTA_ISSUER", "ISSUER_ORG2_URL"},
		{"TOKEN_VALIDATION", "TOKEN_VALIDATION", "ISSUER_ORG2_TOKEN_VALIDATION"},
		{"INTROSPECT_PATHS", "INTROSPECT_PATHS", "ISSUER_ORG2_INTROSPECT_PATHS"},
		{"PRIVATE_KEY_FILE", "OKTA_PRIVATE_KEY_FILE", "ISSUER_ORG2_PRIVATE_KEY_FILE"},
		{"JWT_LEEWAY", "JWT_LEEWAY", "ISSUER_ORG2_JWT_LEEWAY"},
		{"MAX_RPS", "OKTA_MAX_RPS", "ISSUER_ORG2_MAX_RPS"},
		{"OPAQUE_PATHS", "", "ISSUER_ORG2_OPAQUE_PATHS"},
	} {
		if got := p.Var(tt.setting); got != tt.primary {
			t.Errorf("primary Var(%s) = %q, want %q", tt.setting, got, tt.primary)
		}
		if got := a.Var(tt.setting); got != tt.issuer {
			t.Errorf("org2 Var(%s) = %q, want %q", tt.setting, got, tt.issuer)
		}
	}
	if p.Suffix() != "" || a.Suffix() != "_org2" {
		t.Errorf("Suffix() = %q, %q; want \"\" (the primary's names as before ISSUERS), \"_org2\"", p.Suffix(), a.Suffix())
	}
}

// TestIssuersDocsExample: the example env file of docs/issuers.md (an Okta
// org: two custom authorization servers and the org authorization server)
// loads, to the issuers the page describes.
func TestIssuersDocsExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/issuers.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```sh\n# Okta org")
	example, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("docs/issuers.md has no ```sh block starting with # Okta org")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile(".env", []byte("# Okta org"+example), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(lookup(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Issuers()
	type summary struct {
		Name, URL, Validation, IntrospectURL, Audience string
		Opaque                                         []pathrule.Rule
		MaxRPS                                         float64
	}
	var sums []summary
	for _, i := range got {
		sums = append(sums, summary{i.Name, i.URL, i.TokenValidation, i.IntrospectURL(), i.Audience, i.OpaquePaths, i.MaxRPS})
	}
	want := []summary{
		{"primary", "https://example.okta.com/oauth2/aus1payments", "hybrid", "https://example.okta.com/oauth2/aus1payments/v1/introspect", "api://payments", nil, 10},
		{"orders", "https://example.okta.com/oauth2/aus2orders", "jwt", "https://example.okta.com/oauth2/aus2orders/v1/introspect", "api://orders", nil, 10},
		{"org", "https://example.okta.com", "introspect", "https://example.okta.com/oauth2/v1/introspect", "",
			rules(t, "/admin/*", "GET /me"), 4},
	}
	if !reflect.DeepEqual(sums, want) {
		t.Errorf("docs example loads to\n%+v\nwant\n%+v", sums, want)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// TestCAFileMessageHidesPassword: the CA-file message quotes the
// introspection URL, which may carry a secret (refused too, by its own
// message): the primary's and an issuer's quote it without.
func TestCAFileMessageHidesPassword(t *testing.T) {
	t.Chdir(t.TempDir())
	_, err := config.Load(lookup(withA("OKTA_INTROSPECT_URL", "http://0oa1:"+secret+"@127.0.0.1/i", "OKTA_CA_FILE", "/ca.pem",
		"ISSUER_A_INTROSPECT_URL", "http://0oa2:"+secretA+"@127.0.0.1/i", "ISSUER_A_CA_FILE", "/ca.pem")))
	checkErr(t, err, []string{
		"OKTA_INTROSPECT_URL: must not carry credentials",
		"OKTA_CA_FILE: set, but the introspection URL http://0oa1:xxxxx@127.0.0.1/i is not https",
		"ISSUER_A_INTROSPECT_URL: must not carry credentials",
		"ISSUER_A_CA_FILE: set, but the introspection URL http://0oa2:xxxxx@127.0.0.1/i is not https",
	})
	if strings.Contains(err.Error(), secretA) {
		t.Errorf("Error() leaks ISSUER_A_CLIENT_SECRET: %q", err)
	}
}
