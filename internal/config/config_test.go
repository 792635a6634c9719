package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/config"
)

// secret is OKTA_CLIENT_SECRET in every test: no error message may contain it.
const secret = "MARKER-client-secret-5d1e"

// required is the smallest valid environment.
func required() map[string]string {
	return map[string]string{
		"OKTA_ISSUER":        "https://example.okta.com/oauth2/default",
		"OKTA_CLIENT_ID":     "0oa1",
		"OKTA_CLIENT_SECRET": secret,
		"OPA_AUTHZ_URL":      "http://localhost:8181/v1/data/demoapi/authz/allow",
	}
}

// with is required() with vars set over it; an empty value unsets.
func with(vars ...string) map[string]string {
	m := required()
	for i := 0; i+1 < len(vars); i += 2 {
		if vars[i+1] == "" {
			delete(m, vars[i])
			continue
		}
		m[vars[i]] = vars[i+1]
	}
	return m
}

// lookup is m as the process environment, read as os.LookupEnv reads it.
func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// defaults is the configuration required() loads to.
func defaults() config.Config {
	return config.Config{
		OktaIssuer:             "https://example.okta.com/oauth2/default",
		OktaClientID:           "0oa1",
		OktaClientSecret:       secret,
		OktaAuthMethod:         "client_secret_basic",
		OktaTimeout:            3 * time.Second,
		OPAAuthzURL:            "http://localhost:8181/v1/data/demoapi/authz/allow",
		OPATimeout:             time.Second,
		ListenAddr:             "127.0.0.1:8086",
		AdminAddr:              "127.0.0.1:9086",
		MetricsAddr:            "127.0.0.1:9090",
		CacheSize:              100000,
		CacheTTL:               5 * time.Minute,
		CacheNegativeTTL:       30 * time.Second,
		OktaBreakerFailures:    5,
		OktaBreakerOpenTimeout: 30 * time.Second,
		OPABreakerFailures:     5,
		OPABreakerOpenTimeout:  30 * time.Second,
		ShutdownTimeout:        15 * time.Second,
		ReadHeaderTimeout:      10 * time.Second,
		UpstreamTimeout:        30 * time.Second,
		UpstreamUpgrades:       []string{"websocket"},
		IdentityHeaderSubject:  "X-Auth-Subject",
		IdentityHeaderClientID: "X-Auth-Client-Id",
		IdentityHeaderScopes:   "X-Auth-Scopes",
		LogLevel:               "info",
		LogFormat:              "json",
		TokenValidation:        "introspect",
		JWTAlgorithms:          []string{"RS256", "ES256"},
		JWTLeeway:              30 * time.Second,
		RedisTimeout:           100 * time.Millisecond,
		RedisKeyPrefix:         "authgate:",
		DPoPMode:               "allowed",
		DPoPAlgorithms:         []string{"ES256", "RS256", "PS256", "EdDSA"},
		DPoPProofMaxAge:        time.Minute,
		ClientCertHeader:       "Client-Cert",
	}
}

// checkErr compares err with the exact problem list and checks that no
// message leaks the secret or names a Go field instead of a variable.
func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Load succeeded, want problems:\n  %s", strings.Join(want, "\n  "))
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T %v is not *config.Error", err, err)
	}
	if !reflect.DeepEqual(ce.Problems, want) {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(ce.Problems, "\n  "), strings.Join(want, "\n  "))
	}
	msg := err.Error()
	if wantMsg := "invalid configuration:\n  " + strings.Join(want, "\n  "); msg != wantMsg {
		t.Errorf("Error() = %q, want %q", msg, wantMsg)
	}
	if strings.Contains(msg, secret) {
		t.Errorf("Error() leaks the client secret: %q", msg)
	}
	for _, f := range reflect.VisibleFields(reflect.TypeOf(config.Config{})) {
		if strings.Contains(msg, f.Name) {
			t.Errorf("Error() names the Go field %s: %q", f.Name, msg)
		}
	}
}

func TestLoad(t *testing.T) {
	const opaHint = "OPA_AUTHZ_URL: path must be a decision under /v1/data/, e.g. http://localhost:8181/v1/data/demoapi/authz/allow"
	tests := []struct {
		name    string
		env     map[string]string
		want    func(*config.Config) // applied to defaults()
		wantErr []string
	}{
		{
			name: "defaults",
			env:  required(),
		},
		{
			name: "every variable set",
			env: with(
				"OKTA_INTROSPECT_URL", "https://example.okta.com/oauth2/v1/introspect",
				"OKTA_AUTH_METHOD", "client_secret_post",
				"OKTA_AUDIENCE", "api://default",
				"OKTA_TIMEOUT", "500ms",
				"OPA_TIMEOUT", "250ms",
				"OPA_SEND_TOKEN", "true",
				"LISTEN_ADDR", ":8080",
				"ADMIN_ADDR", "127.0.0.1:9090",
				"METRICS_ADDR", "[::1]:9100",
				"CACHE_SIZE", "10",
				"CACHE_TTL", "1m",
				"CACHE_NEGATIVE_TTL", "5s",
				"OKTA_BREAKER_FAILURES", "3",
				"OKTA_BREAKER_OPEN_TIMEOUT", "10s",
				"OPA_BREAKER_FAILURES", "2",
				"OPA_BREAKER_OPEN_TIMEOUT", "20s",
				"SHUTDOWN_TIMEOUT", "1m30s",
				"DECISION_CACHE_TTL", "2s",
			),
			want: func(c *config.Config) {
				c.OktaIntrospectURL = "https://example.okta.com/oauth2/v1/introspect"
				c.OktaAuthMethod = "client_secret_post"
				c.OktaAudience = "api://default"
				c.OktaTimeout = 500 * time.Millisecond
				c.OPATimeout = 250 * time.Millisecond
				c.OPASendToken = true
				c.ListenAddr, c.AdminAddr, c.MetricsAddr = ":8080", "127.0.0.1:9090", "[::1]:9100"
				c.CacheSize, c.CacheTTL, c.CacheNegativeTTL = 10, time.Minute, 5*time.Second
				c.OktaBreakerFailures, c.OktaBreakerOpenTimeout = 3, 10*time.Second
				c.OPABreakerFailures, c.OPABreakerOpenTimeout = 2, 20*time.Second
				c.ShutdownTimeout = 90 * time.Second
				c.DecisionCacheTTL = 2 * time.Second
			},
		},
		{
			name: "every listener on port 0",
			env:  with("LISTEN_ADDR", "127.0.0.1:0", "ADMIN_ADDR", "127.0.0.1:0", "METRICS_ADDR", "127.0.0.1:0"),
			want: func(c *config.Config) {
				c.ListenAddr, c.AdminAddr, c.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
			},
		},
		{
			name: "every required variable missing",
			env:  map[string]string{},
			wantErr: []string{
				"OKTA_ISSUER: required, must not be empty",
				"OKTA_CLIENT_ID: required, must not be empty",
				"OKTA_CLIENT_SECRET: required, must not be empty",
				"OPA_AUTHZ_URL: required, must not be empty",
			},
		},
		{
			name:    "blank client id",
			env:     with("OKTA_CLIENT_ID", "  "),
			wantErr: []string{"OKTA_CLIENT_ID: required, must not be empty"},
		},
		{
			name:    "bad duration names the variable",
			env:     with("OKTA_TIMEOUT", "abc"),
			wantErr: []string{`OKTA_TIMEOUT: not a duration (examples: 500ms, 3s, 5m): unable to parse duration: time: invalid duration "abc"`},
		},
		{
			name:    "duration without unit",
			env:     with("CACHE_TTL", "300"),
			wantErr: []string{`CACHE_TTL: not a duration (examples: 500ms, 3s, 5m): unable to parse duration: time: missing unit in duration "300"`},
		},
		{
			name:    "bad bool",
			env:     with("OPA_SEND_TOKEN", "maybe"),
			wantErr: []string{`OPA_SEND_TOKEN: not a boolean (true or false): strconv.ParseBool: parsing "maybe": invalid syntax`},
		},
		{
			name:    "bad int",
			env:     with("CACHE_SIZE", "ten"),
			wantErr: []string{`CACHE_SIZE: not a valid int: strconv.ParseInt: parsing "ten": invalid syntax`},
		},
		{
			name:    "negative uint",
			env:     with("OKTA_BREAKER_FAILURES", "-1"),
			wantErr: []string{`OKTA_BREAKER_FAILURES: not a valid uint32: strconv.ParseUint: parsing "-1": invalid syntax`},
		},
		{
			name:    "bad auth method",
			env:     with("OKTA_AUTH_METHOD", "client_secret_jwt"),
			wantErr: []string{`OKTA_AUTH_METHOD: must be client_secret_basic, client_secret_post or private_key_jwt, got "client_secret_jwt"`},
		},
		{
			name:    "OPA URL is a policy, not a decision",
			env:     with("OPA_AUTHZ_URL", "http://localhost:8181/v1/policies/authz"),
			wantErr: []string{opaHint},
		},
		{
			name:    "OPA URL is the data root",
			env:     with("OPA_AUTHZ_URL", "http://localhost:8181/v1/data/"),
			wantErr: []string{opaHint},
		},
		{
			name:    "OPA URL without scheme",
			env:     with("OPA_AUTHZ_URL", "localhost:8181/v1/data/demoapi/authz/allow"),
			wantErr: []string{`OPA_AUTHZ_URL: must be an http or https URL, got scheme "localhost"`},
		},
		{
			name:    "ftp issuer",
			env:     with("OKTA_ISSUER", "ftp://example.okta.com/oauth2/default"),
			wantErr: []string{`OKTA_ISSUER: must be an http or https URL, got scheme "ftp"`},
		},
		{
			name:    "issuer without host",
			env:     with("OKTA_ISSUER", "https:///oauth2/default"),
			wantErr: []string{"OKTA_ISSUER: must be an absolute URL with a host"},
		},
		{
			name:    "issuer not a URL",
			env:     with("OKTA_ISSUER", "https://example.okta.com/%zz"),
			wantErr: []string{"OKTA_ISSUER: not a URL"},
		},
		{
			name:    "credentials in the introspection URL",
			env:     with("OKTA_INTROSPECT_URL", "https://0oa1:"+secret+"@example.okta.com/oauth2/v1/introspect"),
			wantErr: []string{"OKTA_INTROSPECT_URL: must not carry credentials"},
		},
		{
			name: "negative and zero durations",
			env: with("OKTA_TIMEOUT", "-1s", "OPA_TIMEOUT", "0s", "CACHE_TTL", "-5m", "CACHE_NEGATIVE_TTL", "0",
				"OKTA_BREAKER_OPEN_TIMEOUT", "-1ms", "OPA_BREAKER_OPEN_TIMEOUT", "0s", "SHUTDOWN_TIMEOUT", "-15s",
				"DECISION_CACHE_TTL", "-1s"),
			wantErr: []string{
				"OKTA_TIMEOUT: must be a positive duration, got -1s",
				"OPA_TIMEOUT: must be a positive duration, got 0s",
				"CACHE_TTL: must be a positive duration, got -5m0s",
				"CACHE_NEGATIVE_TTL: must be a positive duration, got 0s",
				"OKTA_BREAKER_OPEN_TIMEOUT: must be a positive duration, got -1ms",
				"OPA_BREAKER_OPEN_TIMEOUT: must be a positive duration, got 0s",
				"SHUTDOWN_TIMEOUT: must be a positive duration, got -15s",
				"DECISION_CACHE_TTL: must be 0 (off) or a positive duration, got -1s",
			},
		},
		{
			name:    "CACHE_SIZE=0",
			env:     with("CACHE_SIZE", "0"),
			wantErr: []string{"CACHE_SIZE: must be at least 1, got 0"},
		},
		{
			name:    "CACHE_SIZE negative",
			env:     with("CACHE_SIZE", "-5"),
			wantErr: []string{"CACHE_SIZE: must be at least 1, got -5"},
		},
		{
			name:    "breaker failures zero",
			env:     with("OPA_BREAKER_FAILURES", "0"),
			wantErr: []string{"OPA_BREAKER_FAILURES: must be at least 1"},
		},
		{
			name:    "LISTEN_ADDR equals ADMIN_ADDR",
			env:     with("LISTEN_ADDR", "127.0.0.1:8086", "ADMIN_ADDR", "127.0.0.1:8086"),
			wantErr: []string{"ADMIN_ADDR: must differ from LISTEN_ADDR (127.0.0.1:8086)"},
		},
		{
			name:    "METRICS_ADDR equals ADMIN_ADDR",
			env:     with("ADMIN_ADDR", "127.0.0.1:9090"),
			wantErr: []string{"METRICS_ADDR: must differ from ADMIN_ADDR (127.0.0.1:9090)"},
		},
		{
			name:    "METRICS_ADDR equals LISTEN_ADDR",
			env:     with("METRICS_ADDR", "127.0.0.1:8086"),
			wantErr: []string{"METRICS_ADDR: must differ from LISTEN_ADDR (127.0.0.1:8086)"},
		},
		{
			name:    "METRICS_ADDR without port",
			env:     with("METRICS_ADDR", "127.0.0.1"),
			wantErr: []string{`METRICS_ADDR: must be host:port, got "127.0.0.1"`},
		},
		{
			name:    "address without port",
			env:     with("LISTEN_ADDR", "localhost"),
			wantErr: []string{`LISTEN_ADDR: must be host:port, got "localhost"`},
		},
		{
			// A value that fails to parse is reported once, not again by the
			// range checks as if it were zero.
			name: "every problem at once, in order",
			env: with("OKTA_ISSUER", "ftp://x", "OKTA_CLIENT_ID", "", "OKTA_TIMEOUT", "abc", "OPA_AUTHZ_URL", "http://opa/v1/x",
				"OKTA_AUTH_METHOD", "none", "CACHE_SIZE", "many", "OPA_TIMEOUT", "-1s", "OPA_BREAKER_FAILURES", "x"),
			wantErr: []string{
				`OKTA_TIMEOUT: not a duration (examples: 500ms, 3s, 5m): unable to parse duration: time: invalid duration "abc"`,
				`CACHE_SIZE: not a valid int: strconv.ParseInt: parsing "many": invalid syntax`,
				`OPA_BREAKER_FAILURES: not a valid uint32: strconv.ParseUint: parsing "x": invalid syntax`,
				"OKTA_CLIENT_ID: required, must not be empty",
				`OKTA_ISSUER: must be an http or https URL, got scheme "ftp"`,
				opaHint,
				`OKTA_AUTH_METHOD: must be client_secret_basic, client_secret_post or private_key_jwt, got "none"`,
				"OPA_TIMEOUT: must be a positive duration, got -1s",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // no stray .env
			c, err := config.Load(lookup(tt.env))
			checkErr(t, err, tt.wantErr)
			if tt.wantErr != nil {
				if c != nil {
					t.Errorf("Load returned %+v with an error", c)
				}
				return
			}
			want := defaults()
			if tt.want != nil {
				tt.want(&want)
			}
			if !reflect.DeepEqual(*c, want) {
				t.Errorf("Load =\n%+v\nwant\n%+v", *c, want)
			}
		})
	}
}

// TestLoadIgnoresProcessEnvironment checks that only lookup is consulted.
func TestLoadIgnoresProcessEnvironment(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("OKTA_CLIENT_ID", "from-os")
	t.Setenv("OKTA_TIMEOUT", "9s")
	c, err := config.Load(lookup(with("OKTA_CLIENT_ID", "from-lookup")))
	if err != nil {
		t.Fatal(err)
	}
	if c.OktaClientID != "from-lookup" || c.OktaTimeout != 3*time.Second {
		t.Errorf("OktaClientID, OktaTimeout = %q, %v; want from-lookup, 3s", c.OktaClientID, c.OktaTimeout)
	}
}

func TestLoadEnvFile(t *testing.T) {
	const file = "OKTA_ISSUER=https://file.example.com/oauth2/default\n" +
		"OKTA_CLIENT_ID=from-file\n" +
		"OKTA_CLIENT_SECRET=" + secret + "\n" +
		"# a comment\n" +
		"OPA_AUTHZ_URL=http://localhost:8181/v1/data/file/allow\n" +
		"OKTA_TIMEOUT=7s\n" +
		"CACHE_SIZE=42\n"
	fromFile := func(c *config.Config) {
		c.OktaIssuer = "https://file.example.com/oauth2/default"
		c.OktaClientID = "from-file"
		c.OPAAuthzURL = "http://localhost:8181/v1/data/file/allow"
		c.OktaTimeout = 7 * time.Second
		c.CacheSize = 42
	}
	tests := []struct {
		name    string
		dotenv  string            // written to .env in the working directory when not empty
		envFile string            // written to a file named by ENV_FILE when not empty
		env     map[string]string // the process environment (ENV_FILE added)
		want    func(*config.Config)
		wantErr func(envFile string) []string
	}{
		{
			name:    "ENV_FILE supplies everything",
			envFile: file,
			env:     map[string]string{},
			want:    fromFile,
		},
		{
			name:    "process environment wins over the file",
			envFile: file,
			env:     map[string]string{"OKTA_CLIENT_ID": "from-env", "CACHE_SIZE": "7"},
			want: func(c *config.Config) {
				fromFile(c)
				c.OktaClientID = "from-env"
				c.CacheSize = 7
			},
		},
		{
			// Set but empty in the process is not absent: the file's 7s
			// gives way to the default.
			name:    "empty in the process overrides the file",
			envFile: file,
			env:     map[string]string{"OKTA_TIMEOUT": ""},
			want: func(c *config.Config) {
				fromFile(c)
				c.OktaTimeout = 3 * time.Second
			},
		},
		{
			name:    "empty in the process overrides a required variable from the file",
			envFile: file,
			env:     map[string]string{"OKTA_CLIENT_ID": ""},
			wantErr: func(string) []string {
				return []string{"OKTA_CLIENT_ID: required, must not be empty"}
			},
		},
		{
			name:   ".env in the working directory is read",
			dotenv: file,
			env:    map[string]string{},
			want:   fromFile,
		},
		{
			name:    "ENV_FILE replaces .env",
			dotenv:  "OKTA_CLIENT_ID=from-dotenv\nOPA_TIMEOUT=9s\n",
			envFile: file,
			env:     map[string]string{},
			want:    fromFile,
		},
		{
			name: ".env absent is fine",
			env:  required(),
		},
		{
			name: "ENV_FILE missing is an error",
			env:  map[string]string{"ENV_FILE": "missing.env"},
			wantErr: func(string) []string {
				return []string{`ENV_FILE: cannot read "missing.env": open missing.env: no such file or directory`}
			},
		},
		{
			name:   "ENV_FILE missing is an error even with .env present",
			dotenv: file,
			env:    map[string]string{"ENV_FILE": "missing.env"},
			wantErr: func(string) []string {
				return []string{`ENV_FILE: cannot read "missing.env": open missing.env: no such file or directory`}
			},
		},
		{
			name: "ENV_FILE is a directory",
			env:  map[string]string{"ENV_FILE": "."},
			wantErr: func(string) []string {
				return []string{`ENV_FILE: cannot read ".": read .: is a directory`}
			},
		},
		{
			// godotenv's parse errors quote the rest of the file, secrets
			// included: they must not reach the message.
			name:    "malformed ENV_FILE",
			envFile: "BAD-NAME=1\nOKTA_CLIENT_SECRET=" + secret + "\n",
			env:     map[string]string{},
			wantErr: func(path string) []string {
				return []string{fmt.Sprintf("ENV_FILE: cannot parse %q: malformed line (parser message withheld: it may quote a secret)", path)}
			},
		},
		{
			name:    "unterminated quote in ENV_FILE",
			envFile: "OKTA_CLIENT_SECRET=\"" + secret + "\n",
			env:     map[string]string{},
			wantErr: func(path string) []string {
				return []string{fmt.Sprintf("ENV_FILE: cannot parse %q: malformed line (parser message withheld: it may quote a secret)", path)}
			},
		},
		{
			name:   "malformed .env",
			dotenv: "OKTA_CLIENT_SECRET='" + secret,
			env:    map[string]string{},
			wantErr: func(string) []string {
				return []string{`ENV_FILE: cannot parse ".env": malformed line (parser message withheld: it may quote a secret)`}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = v
			}
			if tt.dotenv != "" {
				if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(tt.dotenv), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var path string
			if tt.envFile != "" {
				path = filepath.Join(t.TempDir(), "authgate.env")
				if err := os.WriteFile(path, []byte(tt.envFile), 0o600); err != nil {
					t.Fatal(err)
				}
				env["ENV_FILE"] = path
			}
			c, err := config.Load(lookup(env))
			if tt.wantErr != nil {
				checkErr(t, err, tt.wantErr(path))
				return
			}
			checkErr(t, err, nil)
			want := defaults()
			if tt.want != nil {
				tt.want(&want)
			}
			if !reflect.DeepEqual(*c, want) {
				t.Errorf("Load =\n%+v\nwant\n%+v", *c, want)
			}
		})
	}
}

// TestSecretNeverInErrors provokes every kind of problem with the client
// secret set, and set as the value of other variables.
func TestSecretNeverInErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	envs := []map[string]string{
		with("OKTA_TIMEOUT", "abc", "OPA_SEND_TOKEN", "x", "CACHE_SIZE", "x", "OKTA_AUTH_METHOD", "x",
			"OKTA_ISSUER", "ftp://x", "OPA_AUTHZ_URL", "http://x/", "LISTEN_ADDR", "x", "CACHE_TTL", "-1s"),
		with("OKTA_ISSUER", "https://0oa1:"+secret+"@example.okta.com/oauth2/default"),
		with("OKTA_INTROSPECT_URL", "https://example.okta.com/"+secret+"%zz"),
		with("ENV_FILE", "/nonexistent/authgate.env"),
	}
	for _, env := range envs {
		_, err := config.Load(lookup(env))
		if err == nil {
			t.Fatalf("Load(%v) succeeded", env)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Load(%v) error leaks the secret: %q", env, err)
		}
	}
}

func TestIntrospectURL(t *testing.T) {
	tests := []struct {
		issuer, override, want string
	}{
		{"https://example.okta.com/oauth2/default", "", "https://example.okta.com/oauth2/default/v1/introspect"},
		{"https://example.okta.com/oauth2/default/", "", "https://example.okta.com/oauth2/default/v1/introspect"},
		{"https://example.okta.com/oauth2", "", "https://example.okta.com/oauth2/v1/introspect"},
		{"https://example.okta.com/oauth2/default", "https://idp.example.com/introspect", "https://idp.example.com/introspect"},
	}
	for _, tt := range tests {
		c := config.Config{OktaIssuer: tt.issuer, OktaIntrospectURL: tt.override}
		if got := c.IntrospectURL(); got != tt.want {
			t.Errorf("IntrospectURL(issuer %q, override %q) = %q, want %q", tt.issuer, tt.override, got, tt.want)
		}
	}

	// And through Load.
	t.Chdir(t.TempDir())
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{required(), "https://example.okta.com/oauth2/default/v1/introspect"},
		{with("OKTA_INTROSPECT_URL", "https://example.okta.com/oauth2/v1/introspect"), "https://example.okta.com/oauth2/v1/introspect"},
	} {
		c, err := config.Load(lookup(tt.env))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.IntrospectURL(); got != tt.want {
			t.Errorf("IntrospectURL() = %q, want %q", got, tt.want)
		}
	}
}
