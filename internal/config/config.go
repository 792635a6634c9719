// Package config loads authgate's configuration from the environment and an
// optional env file, and validates it in one place.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"
	"github.com/joho/godotenv"

	"github.com/authgate/authgate/internal/forwarded"
	"github.com/authgate/authgate/internal/pathrule"
)

// Auth methods for the introspection endpoint (RFC 7591 names, as Okta uses them).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt" // RFC 7523: a signed assertion instead of a secret
)

// Config is authgate's whole configuration. Each field names its environment
// variable; the default sits next to it. .env.example documents every one.
type Config struct {
	OktaIssuer        string        `env:"OKTA_ISSUER"`
	OktaClientID      string        `env:"OKTA_CLIENT_ID"`
	OktaClientSecret  string        `env:"OKTA_CLIENT_SECRET" secret:"true"`
	OktaIntrospectURL string        `env:"OKTA_INTROSPECT_URL"` // default {OKTA_ISSUER}/v1/introspect
	OktaAuthMethod    string        `env:"OKTA_AUTH_METHOD" envDefault:"client_secret_basic"`
	OktaAudience      string        `env:"OKTA_AUDIENCE"`
	OktaTimeout       time.Duration `env:"OKTA_TIMEOUT" envDefault:"3s"`

	OPAAuthzURL  string        `env:"OPA_AUTHZ_URL"`
	OPATimeout   time.Duration `env:"OPA_TIMEOUT" envDefault:"1s"`
	OPASendToken bool          `env:"OPA_SEND_TOKEN" envDefault:"false"`
	// OPAInputHeaders, when set, are the only request headers put in the
	// OPA input (names, case-insensitive). Default: every header but
	// Authorization, Proxy-Authorization and Cookie.
	OPAInputHeaders []string `env:"OPA_INPUT_HEADERS" envSeparator:","`

	ListenAddr string `env:"LISTEN_ADDR" envDefault:"127.0.0.1:8086"`
	AdminAddr  string `env:"ADMIN_ADDR" envDefault:"127.0.0.1:9086"`
	// /metrics and pprof: not on ADMIN_ADDR, which a proxy must reach for /verify.
	MetricsAddr string `env:"METRICS_ADDR" envDefault:"127.0.0.1:9090"`

	CacheSize        int           `env:"CACHE_SIZE" envDefault:"100000"`
	CacheTTL         time.Duration `env:"CACHE_TTL" envDefault:"5m"`
	CacheNegativeTTL time.Duration `env:"CACHE_NEGATIVE_TTL" envDefault:"30s"`

	OktaBreakerFailures    uint32        `env:"OKTA_BREAKER_FAILURES" envDefault:"5"`
	OktaBreakerOpenTimeout time.Duration `env:"OKTA_BREAKER_OPEN_TIMEOUT" envDefault:"30s"`
	OPABreakerFailures     uint32        `env:"OPA_BREAKER_FAILURES" envDefault:"5"`
	OPABreakerOpenTimeout  time.Duration `env:"OPA_BREAKER_OPEN_TIMEOUT" envDefault:"30s"`

	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"15s"`

	// Performance.
	DecisionCacheTTL time.Duration `env:"DECISION_CACHE_TTL" envDefault:"0s"` // 0 = off

	// Reliability and security: see security.go.
	OktaMaxRPS        float64       `env:"OKTA_MAX_RPS" envDefault:"0"`          // introspections per second; 0 = unlimited
	CacheStaleIfError time.Duration `env:"CACHE_STALE_IF_ERROR" envDefault:"0s"` // 0 = off
	AllowInsecureHTTP bool          `env:"ALLOW_INSECURE_HTTP" envDefault:"false"`
	OktaCAFile        string        `env:"OKTA_CA_FILE"`
	OPACAFile         string        `env:"OPA_CA_FILE"`
	OPAClientCertFile string        `env:"OPA_CLIENT_CERT_FILE"`
	OPAClientKeyFile  string        `env:"OPA_CLIENT_KEY_FILE"`
	ReadHeaderTimeout time.Duration `env:"READ_HEADER_TIMEOUT" envDefault:"10s"`
	// Introspections per second for one client (remote_addr, IPv6 by /64),
	// checked before OKTA_MAX_RPS; 0 = off.
	OktaMaxRPSPerClient float64 `env:"OKTA_MAX_RPS_PER_CLIENT" envDefault:"0"`

	// Token validation (docs/token-validation.md): see jwt.go.
	TokenValidation    string        `env:"TOKEN_VALIDATION" envDefault:"introspect"` // introspect, jwt or hybrid
	IntrospectPaths    []string      `env:"INTROSPECT_PATHS" envSeparator:","`        // hybrid: always introspected
	OktaJWKSURL        string        `env:"OKTA_JWKS_URL"`                            // default: jwks_uri from discovery
	JWTAlgorithms      []string      `env:"JWT_ALGORITHMS" envSeparator:"," envDefault:"RS256,ES256"`
	JWTLeeway          time.Duration `env:"JWT_LEEWAY" envDefault:"30s"`
	JWTTyp             string        `env:"JWT_TYP"`               // e.g. at+jwt; empty = not checked
	OktaPrivateKeyFile string        `env:"OKTA_PRIVATE_KEY_FILE"` // private_key_jwt: PEM, RSA or EC
	OktaPrivateKeyID   string        `env:"OKTA_PRIVATE_KEY_ID"`   // private_key_jwt: the assertion's kid
	// Further issuers (docs/issuers.md): see issuers.go. Their
	// ISSUER_<NAME>_* variables are read by Load; Issuers() lists them.
	IssuerNames  []string `env:"ISSUERS" envSeparator:","`
	extraIssuers []Issuer

	// Gateway modes (docs/modes.md). UPSTREAM_URL set means reverse
	// proxy mode: the demo routes are off and every request is proxied.
	UpstreamURL                string        `env:"UPSTREAM_URL"`
	UpstreamStripAuthorization bool          `env:"UPSTREAM_STRIP_AUTHORIZATION" envDefault:"false"`
	UpstreamTimeout            time.Duration `env:"UPSTREAM_TIMEOUT" envDefault:"30s"`
	// Upgrade protocols a client may switch to through the proxy; set but
	// empty means none (see Load).
	UpstreamUpgrades       []string `env:"UPSTREAM_UPGRADES" envSeparator:"," envDefault:"websocket"`
	PublicPaths            []string `env:"PUBLIC_PATHS" envSeparator:","`
	TrustedProxies         []string `env:"TRUSTED_PROXIES" envSeparator:","`
	IdentityHeaderSubject  string   `env:"IDENTITY_HEADER_SUBJECT" envDefault:"X-Auth-Subject"`
	IdentityHeaderClientID string   `env:"IDENTITY_HEADER_CLIENT_ID" envDefault:"X-Auth-Client-Id"`
	IdentityHeaderScopes   string   `env:"IDENTITY_HEADER_SCOPES" envDefault:"X-Auth-Scopes"`
	// Protected resource (RFC 9728 metadata, audience binding;
	// docs/mcp.md): see resource.go. Empty RESOURCE_URI = off.
	ResourceURI                  string   `env:"RESOURCE_URI"`
	ResourceAuthorizationServers []string `env:"RESOURCE_AUTHORIZATION_SERVERS" envSeparator:","` // default [OKTA_ISSUER]
	ResourceScopes               string   `env:"RESOURCE_SCOPES"`                                 // comma- or space-separated
	ResourceName                 string   `env:"RESOURCE_NAME"`
	ResourceDocumentation        string   `env:"RESOURCE_DOCUMENTATION"`
	// Observability.
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`  // debug, info, warn, error
	LogFormat string `env:"LOG_FORMAT" envDefault:"json"` // json or text
	PProf     bool   `env:"PPROF" envDefault:"false"`     // /debug/pprof/ on METRICS_ADDR
	// Tracing is on when either OTLP endpoint is set (OTLP over HTTP). The
	// other standard OTEL_* variables (headers, timeout, sampler, service
	// name, ...) are read by the OpenTelemetry SDK from the process environment.
	OTelEndpoint       string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	OTelTracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	OTelSDKDisabled    bool   `env:"OTEL_SDK_DISABLED" envDefault:"false"`
	OTelTracesExporter string `env:"OTEL_TRACES_EXPORTER"` // otlp (default) or none
	// Only OTLP over HTTP is built in; these are checked, not chosen.
	OTelProtocol       string `env:"OTEL_EXPORTER_OTLP_PROTOCOL"`
	OTelTracesProtocol string `env:"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"`

	// Sender-constrained tokens (docs/sender-constrained.md): see dpop.go.
	DPoPMode         string        `env:"DPOP_MODE" envDefault:"allowed"` // allowed or required
	DPoPAlgorithms   []string      `env:"DPOP_ALGORITHMS" envSeparator:"," envDefault:"ES256,RS256,PS256,EdDSA"`
	DPoPProofMaxAge  time.Duration `env:"DPOP_PROOF_MAX_AGE" envDefault:"60s"`
	DPoPNonce        bool          `env:"DPOP_NONCE" envDefault:"false"`
	ClientCertHeader string        `env:"CLIENT_CERT_HEADER" envDefault:"Client-Cert"`

	// Several replicas (docs/fleet.md): see fleet.go.
	RedisURL       string        `env:"REDIS_URL" secret:"true"` // may carry a password; "" = no shared tier
	RedisTimeout   time.Duration `env:"REDIS_TIMEOUT" envDefault:"100ms"`
	RedisKeyPrefix string        `env:"REDIS_KEY_PREFIX" envDefault:"authgate:"`
	FleetKey       string        `env:"FLEET_KEY" secret:"true"`          // required with REDIS_URL
	FleetKeyPrev   string        `env:"FLEET_KEY_PREVIOUS" secret:"true"` // rotation: also accepted for reading
	AdminAPIToken  string        `env:"ADMIN_API_TOKEN" secret:"true"`    // "" = POST /revoke answers 404
	RevokeUpstream bool          `env:"REVOKE_UPSTREAM" envDefault:"false"`
	OktaRevokeURL  string        `env:"OKTA_REVOKE_URL"` // default: discovered from OKTA_ISSUER

	// Parsed by Load from the variables above, once: the rest of authgate
	// reads these, never the raw lists.
	PublicPathRules      []pathrule.Rule // PUBLIC_PATHS; matched exactly (they remove checking)
	IntrospectPathRules  []pathrule.Rule // INTROSPECT_PATHS; matched generously (they add checking)
	TrustedProxyPrefixes forwarded.Trust // TRUSTED_PROXIES; a bare address stands for itself (/32 or /128)
}

// IntrospectURL is OKTA_INTROSPECT_URL, or the Okta default under the issuer.
func (c *Config) IntrospectURL() string {
	if c.OktaIntrospectURL != "" {
		return c.OktaIntrospectURL
	}
	return strings.TrimSuffix(c.OktaIssuer, "/") + "/v1/introspect"
}

// Level is LOG_LEVEL as a slog level.
func (c *Config) Level() slog.Level {
	switch strings.ToLower(c.LogLevel) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// TracesURL is the OTLP/HTTP URL spans are sent to, or "" when tracing is
// off: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else
// OTEL_EXPORTER_OTLP_ENDPOINT with the signal path /v1/traces appended, as
// the OpenTelemetry specification says.
func (c *Config) TracesURL() string {
	switch {
	case c.OTelSDKDisabled, c.OTelTracesExporter == "none":
		return ""
	case c.OTelTracesEndpoint != "":
		return c.OTelTracesEndpoint
	case c.OTelEndpoint != "":
		return strings.TrimSuffix(c.OTelEndpoint, "/") + "/v1/traces"
	}
	return ""
}

// Load reads the configuration. lookup is the process environment, read as
// os.LookupEnv reads it; the env file named by ENV_FILE (default ".env", only
// when present) fills in what the process environment does not set. A
// variable set in the process wins even when empty, so that X= in the
// environment can override the file: it then takes its default, or stays
// empty (and a required one is reported). The issuers of ISSUERS are read
// the same way (see loadIssuers). The error names every bad variable.
func Load(lookup func(string) (string, bool)) (*Config, error) {
	var c Config
	keys, err := envKeys(&c)
	if err != nil {
		return nil, err
	}
	environ, err := readEnvFile(lookup)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if v, ok := lookup(k); ok {
			environ[k] = v
		}
	}
	// caarlos0/env gives a variable set but empty its default; for these
	// lists, empty means none.
	emptyMeansNone := map[string]*[]string{"UPSTREAM_UPGRADES": &c.UpstreamUpgrades}
	var problems []string
	unparsed := map[string]bool{}
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		for _, p := range parseProblems(err, reflect.TypeFor[Config](), "") {
			name, _, _ := strings.Cut(p, ":")
			unparsed[name] = true
			problems = append(problems, p)
		}
	}
	for k, field := range emptyMeansNone {
		if v, ok := environ[k]; ok && strings.TrimSpace(v) == "" {
			*field = nil
		}
	}
	// A variable that failed to parse is left zero: do not report it a
	// second time as if it had been set to zero.
	for _, p := range c.problems() {
		if name, _, _ := strings.Cut(p, ":"); !unparsed[name] {
			problems = append(problems, p)
		}
	}
	extra, issuerProblems := c.loadIssuers(lookup, environ)
	c.extraIssuers = extra
	problems = append(problems, issuerProblems...)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return &c, nil
}

// Error lists every configuration problem, each naming its variable.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

func readEnvFile(lookup func(string) (string, bool)) (map[string]string, error) {
	path, _ := lookup("ENV_FILE")
	explicit := true
	if path == "" {
		path, explicit = ".env", false
	}
	m, err := godotenv.Read(path)
	var pe *fs.PathError
	switch {
	case err == nil:
		return m, nil
	case !explicit && errors.Is(err, fs.ErrNotExist):
		return map[string]string{}, nil
	case errors.As(err, &pe):
		return nil, &Error{Problems: []string{fmt.Sprintf("ENV_FILE: cannot read %q: %v", path, err)}}
	default:
		// godotenv's parse errors quote the rest of the file, which may
		// hold OKTA_CLIENT_SECRET.
		return nil, &Error{Problems: []string{fmt.Sprintf("ENV_FILE: cannot parse %q: malformed line (parser message withheld: it may quote a secret)", path)}}
	}
}

// envKeys lists the variable names Config reads, so that a lookup function
// (rather than a whole environment) is enough to load it.
func envKeys(c *Config) ([]string, error) {
	params, err := env.GetFieldParams(c)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(params))
	for i, p := range params {
		keys[i] = p.Key
	}
	return keys, nil
}

// parseProblems turns caarlos0/env's errors, which name the Go fields of
// t, into messages that name the environment variable (prefix, then the
// field's env tag: an issuer's variables have ISSUER_N_ before it).
func parseProblems(err error, t reflect.Type, prefix string) []string {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			out = append(out, e.Error())
			continue
		}
		f, _ := t.FieldByName(pe.Name)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		name = prefix + name
		if f.Tag.Get("secret") == "true" {
			out = append(out, name+": invalid value")
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s", name, describe(pe.Type, pe.Err)))
	}
	return out
}

func describe(t reflect.Type, err error) string {
	switch t {
	case reflect.TypeOf(time.Duration(0)):
		return "not a duration (examples: 500ms, 3s, 5m): " + err.Error()
	case reflect.TypeOf(false):
		return "not a boolean (true or false): " + err.Error()
	}
	return fmt.Sprintf("not a valid %s: %v", t, err)
}

// problems checks values that parsed but make no sense together, and keeps
// the lists it parses to check them (PublicPathRules, IntrospectPathRules,
// TrustedProxyPrefixes): the one parse.
func (c *Config) problems() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	for _, r := range []struct {
		name, val string
		needed    bool
	}{
		{"OKTA_ISSUER", c.OktaIssuer, true},
		// TOKEN_VALIDATION=jwt never introspects (but REVOKE_UPSTREAM
		// authenticates); private_key_jwt signs instead of a secret.
		{"OKTA_CLIENT_ID", c.OktaClientID, c.UsesClientCredentials()},
		{"OKTA_CLIENT_SECRET", c.OktaClientSecret, c.UsesClientCredentials() && c.OktaAuthMethod != AuthPrivateKeyJWT},
		{"OPA_AUTHZ_URL", c.OPAAuthzURL, true},
	} {
		if r.needed && strings.TrimSpace(r.val) == "" {
			add("%s: required, must not be empty", r.name)
		}
	}
	if c.OktaIssuer != "" {
		if err := checkURL(c.OktaIssuer); err != nil {
			add("OKTA_ISSUER: %v", err)
		}
	}
	if c.OktaIntrospectURL != "" {
		if err := checkURL(c.OktaIntrospectURL); err != nil {
			add("OKTA_INTROSPECT_URL: %v", err)
		}
	}
	if c.OPAAuthzURL != "" {
		if err := checkURL(c.OPAAuthzURL); err != nil {
			add("OPA_AUTHZ_URL: %v", err)
		} else if u, _ := url.Parse(c.OPAAuthzURL); !strings.HasPrefix(u.Path, "/v1/data/") || len(u.Path) == len("/v1/data/") {
			add("OPA_AUTHZ_URL: path must be a decision under /v1/data/, e.g. http://localhost:8181/v1/data/demoapi/authz/allow")
		}
	}
	switch c.OktaAuthMethod {
	case AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT:
	default:
		add("OKTA_AUTH_METHOD: must be %s, %s or %s, got %q", AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT, c.OktaAuthMethod)
	}
	for _, a := range []struct{ name, val string }{{"LISTEN_ADDR", c.ListenAddr}, {"ADMIN_ADDR", c.AdminAddr}, {"METRICS_ADDR", c.MetricsAddr}} {
		if _, _, err := net.SplitHostPort(a.val); err != nil {
			add("%s: must be host:port, got %q", a.name, a.val)
		}
	}
	// Port 0 (tests) gets a fresh port for each listener.
	if c.ListenAddr == c.AdminAddr && !strings.HasSuffix(c.ListenAddr, ":0") {
		add("ADMIN_ADDR: must differ from LISTEN_ADDR (%s)", c.ListenAddr)
	}
	for _, other := range []struct{ name, val string }{{"LISTEN_ADDR", c.ListenAddr}, {"ADMIN_ADDR", c.AdminAddr}} {
		if c.MetricsAddr == other.val && !strings.HasSuffix(c.MetricsAddr, ":0") {
			add("METRICS_ADDR: must differ from %s (%s)", other.name, other.val)
		}
	}
	for _, d := range []struct {
		name string
		val  time.Duration
	}{
		{"OKTA_TIMEOUT", c.OktaTimeout}, {"OPA_TIMEOUT", c.OPATimeout},
		{"CACHE_TTL", c.CacheTTL}, {"CACHE_NEGATIVE_TTL", c.CacheNegativeTTL},
		{"OKTA_BREAKER_OPEN_TIMEOUT", c.OktaBreakerOpenTimeout}, {"OPA_BREAKER_OPEN_TIMEOUT", c.OPABreakerOpenTimeout},
		{"SHUTDOWN_TIMEOUT", c.ShutdownTimeout},
	} {
		if d.val <= 0 {
			add("%s: must be a positive duration, got %s", d.name, d.val)
		}
	}
	if c.DecisionCacheTTL < 0 {
		add("DECISION_CACHE_TTL: must be 0 (off) or a positive duration, got %s", c.DecisionCacheTTL)
	}
	if c.CacheSize < 1 {
		add("CACHE_SIZE: must be at least 1, got %d", c.CacheSize)
	}
	for _, f := range []struct {
		name string
		val  uint32
	}{{"OKTA_BREAKER_FAILURES", c.OktaBreakerFailures}, {"OPA_BREAKER_FAILURES", c.OPABreakerFailures}} {
		if f.val < 1 {
			add("%s: must be at least 1", f.name)
		}
	}
	p = append(p, c.securityProblems()...)
	p = append(p, c.modeProblems()...)
	p = append(p, c.resourceProblems()...)
	p = append(p, c.jwtProblems()...)
	p = append(p, c.fleetProblems()...)
	p = append(p, c.dpopProblems()...)

	// Observability.
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		add("LOG_LEVEL: must be debug, info, warn or error, got %q", c.LogLevel)
	}
	switch strings.ToLower(c.LogFormat) {
	case "json", "text":
	default:
		add("LOG_FORMAT: must be json or text, got %q", c.LogFormat)
	}
	for _, e := range []struct{ name, val string }{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", c.OTelEndpoint}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.OTelTracesEndpoint},
	} {
		if e.val != "" {
			if err := checkURL(e.val); err != nil {
				add("%s: %v", e.name, err)
			}
		}
	}
	switch c.OTelTracesExporter {
	case "", "otlp", "none":
	default:
		add("OTEL_TRACES_EXPORTER: must be otlp or none, got %q", c.OTelTracesExporter)
	}
	for _, e := range []struct{ name, val string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", c.OTelProtocol}, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", c.OTelTracesProtocol},
	} {
		if e.val != "" && e.val != "http/protobuf" {
			add("%s: only http/protobuf is supported (OTLP over HTTP, port 4318), got %q", e.name, e.val)
		}
	}
	return p
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must be an http or https URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("must be an absolute URL with a host")
	}
	if u.User != nil {
		return errors.New("must not carry credentials")
	}
	return nil
}
