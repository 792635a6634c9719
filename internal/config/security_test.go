package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/config"
)

// loadWith loads a valid configuration changed by env ("" unsets a variable).
func loadWith(t *testing.T, env map[string]string) (*config.Config, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{
		"ENV_FILE":           file,
		"OKTA_ISSUER":        "https://example.okta.com/oauth2/default",
		"OKTA_CLIENT_ID":     "authgate",
		"OKTA_CLIENT_SECRET": "s3cret",
		"OPA_AUTHZ_URL":      "http://localhost:8181/v1/data/demoapi/authz/allow",
	}
	for k, v := range env {
		full[k] = v
	}
	return config.Load(func(k string) (string, bool) { v, ok := full[k]; return v, ok })
}

func TestSecurityDefaults(t *testing.T) {
	c, err := loadWith(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.OktaMaxRPS != 0 || c.OktaMaxRPSPerClient != 0 || c.CacheStaleIfError != 0 || c.AllowInsecureHTTP || c.ReadHeaderTimeout != 10*time.Second ||
		c.OktaCAFile != "" || c.OPACAFile != "" || c.OPAClientCertFile != "" || c.OPAClientKeyFile != "" ||
		c.OPAInputHeaderNames() != nil {
		t.Errorf("defaults: %+v", c)
	}
}

func TestSecurityProblems(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []string // exact problems; nil means valid
	}{
		{name: "rate and stale", env: map[string]string{"OKTA_MAX_RPS": "8.5", "CACHE_STALE_IF_ERROR": "30s"}},
		{name: "negative rate", env: map[string]string{"OKTA_MAX_RPS": "-1"},
			want: []string{"OKTA_MAX_RPS: must be 0 (unlimited) or a positive number of introspections per second, got -1"}},
		{name: "NaN rate", env: map[string]string{"OKTA_MAX_RPS": "NaN"},
			want: []string{"OKTA_MAX_RPS: must be 0 (unlimited) or a positive number of introspections per second, got NaN"}},
		{name: "rate not a number", env: map[string]string{"OKTA_MAX_RPS": "ten"},
			want: []string{`OKTA_MAX_RPS: not a valid float64: strconv.ParseFloat: parsing "ten": invalid syntax`}},
		{name: "per-client rate", env: map[string]string{"OKTA_MAX_RPS": "10", "OKTA_MAX_RPS_PER_CLIENT": "0.5"}},
		{name: "per-client rate without a global one", env: map[string]string{"OKTA_MAX_RPS_PER_CLIENT": "2"}},
		{name: "negative per-client rate", env: map[string]string{"OKTA_MAX_RPS_PER_CLIENT": "-0.5"},
			want: []string{"OKTA_MAX_RPS_PER_CLIENT: must be 0 (off) or a positive number of introspections per second, got -0.5"}},
		{name: "infinite per-client rate", env: map[string]string{"OKTA_MAX_RPS_PER_CLIENT": "+Inf"},
			want: []string{"OKTA_MAX_RPS_PER_CLIENT: must be 0 (off) or a positive number of introspections per second, got +Inf"}},
		{name: "per-client rate not a number", env: map[string]string{"OKTA_MAX_RPS_PER_CLIENT": "2/s"},
			want: []string{`OKTA_MAX_RPS_PER_CLIENT: not a valid float64: strconv.ParseFloat: parsing "2/s": invalid syntax`}},
		{name: "negative stale", env: map[string]string{"CACHE_STALE_IF_ERROR": "-1s"},
			want: []string{"CACHE_STALE_IF_ERROR: must be 0 (off) or a positive duration, got -1s"}},
		{name: "zero read header timeout", env: map[string]string{"READ_HEADER_TIMEOUT": "0s"},
			want: []string{"READ_HEADER_TIMEOUT: must be a positive duration, got 0s"}},
		{name: "http loopback issuer", env: map[string]string{"OKTA_ISSUER": "http://127.0.0.1:9000/oauth2/default"}},
		{name: "http localhost issuer", env: map[string]string{"OKTA_ISSUER": "http://LocalHost:9000/oauth2/default"}},
		{name: "http ::1 issuer", env: map[string]string{"OKTA_ISSUER": "http://[::1]:9000/oauth2/default"}},
		{name: "http 127.0.0.2 issuer", env: map[string]string{"OKTA_ISSUER": "http://127.0.0.2/oauth2/default"}},
		{name: "http remote issuer", env: map[string]string{"OKTA_ISSUER": "http://example.okta.com/oauth2/default"},
			want: []string{"OKTA_ISSUER: http:// to a host that is not loopback would send the client secret and tokens in clear; use https or set ALLOW_INSECURE_HTTP=true"}},
		{name: "http name that resolves nowhere special", env: map[string]string{"OKTA_ISSUER": "http://localhost.example.com/x"},
			want: []string{"OKTA_ISSUER: http:// to a host that is not loopback would send the client secret and tokens in clear; use https or set ALLOW_INSECURE_HTTP=true"}},
		{name: "http remote introspect URL", env: map[string]string{"OKTA_INTROSPECT_URL": "http://10.0.0.5/introspect"},
			want: []string{"OKTA_INTROSPECT_URL: http:// to a host that is not loopback would send the client secret and tokens in clear; use https or set ALLOW_INSECURE_HTTP=true"}},
		{name: "http remote allowed", env: map[string]string{"OKTA_ISSUER": "http://idp.internal/oauth2/default", "ALLOW_INSECURE_HTTP": "true"}},
		{name: "http remote OPA is allowed", env: map[string]string{"OPA_AUTHZ_URL": "http://opa:8181/v1/data/a/allow"}},
		{name: "ALLOW_INSECURE_HTTP not a boolean", env: map[string]string{"ALLOW_INSECURE_HTTP": "yes"},
			want: []string{`ALLOW_INSECURE_HTTP: not a boolean (true or false): strconv.ParseBool: parsing "yes": invalid syntax`}},
		{name: "OKTA_CA_FILE with http", env: map[string]string{"OKTA_ISSUER": "http://127.0.0.1/o", "OKTA_CA_FILE": "/ca.pem"},
			want: []string{"OKTA_CA_FILE: set, but the introspection URL http://127.0.0.1/o/v1/introspect is not https"}},
		{name: "OPA TLS with http", env: map[string]string{"OPA_CA_FILE": "/ca.pem", "OPA_CLIENT_CERT_FILE": "/c.pem", "OPA_CLIENT_KEY_FILE": "/k.pem"},
			want: []string{"OPA_CA_FILE: set, but OPA_AUTHZ_URL is not https", "OPA_CLIENT_CERT_FILE: set, but OPA_AUTHZ_URL is not https"}},
		{name: "cert without key", env: map[string]string{"OPA_AUTHZ_URL": "https://opa/v1/data/a/allow", "OPA_CLIENT_CERT_FILE": "/c.pem"},
			want: []string{"OPA_CLIENT_CERT_FILE, OPA_CLIENT_KEY_FILE: set both (mTLS to OPA) or neither"}},
		{name: "key without cert", env: map[string]string{"OPA_AUTHZ_URL": "https://opa/v1/data/a/allow", "OPA_CLIENT_KEY_FILE": "/k.pem"},
			want: []string{"OPA_CLIENT_CERT_FILE, OPA_CLIENT_KEY_FILE: set both (mTLS to OPA) or neither"}},
		{name: "full TLS", env: map[string]string{"OPA_AUTHZ_URL": "https://opa/v1/data/a/allow", "OPA_CA_FILE": "/ca.pem",
			"OPA_CLIENT_CERT_FILE": "/c.pem", "OPA_CLIENT_KEY_FILE": "/k.pem", "OKTA_CA_FILE": "/ca.pem"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadWith(t, tc.env)
			var got []string
			if err != nil {
				ce, ok := err.(*config.Error)
				if !ok {
					t.Fatalf("error %T %v", err, err)
				}
				got = ce.Problems
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestEnvExampleDocumentsSecuritySettings: .env.example loads and sets the
// reliability and security variables to their defaults.
func TestEnvExampleDocumentsSecuritySettings(t *testing.T) {
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
	d, err := loadWith(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.OktaMaxRPS != d.OktaMaxRPS || c.OktaMaxRPSPerClient != d.OktaMaxRPSPerClient || c.CacheStaleIfError != d.CacheStaleIfError || c.AllowInsecureHTTP != d.AllowInsecureHTTP ||
		c.ReadHeaderTimeout != d.ReadHeaderTimeout || c.OktaCAFile != "" || c.OPACAFile != "" || c.OPAClientCertFile != "" || c.OPAClientKeyFile != "" ||
		c.OPAInputHeaderNames() != nil {
		t.Errorf(".env.example %+v differs from the defaults %+v", c, d)
	}
	b, _ := os.ReadFile(example)
	for _, v := range []string{"OKTA_MAX_RPS", "OKTA_MAX_RPS_PER_CLIENT", "CACHE_STALE_IF_ERROR", "ALLOW_INSECURE_HTTP", "OKTA_CA_FILE", "OPA_CA_FILE",
		"OPA_CLIENT_CERT_FILE", "OPA_CLIENT_KEY_FILE", "READ_HEADER_TIMEOUT", "OPA_INPUT_HEADERS"} {
		if !strings.Contains(string(b), "\n"+v+"=") {
			t.Errorf(".env.example lacks %s", v)
		}
	}
}
