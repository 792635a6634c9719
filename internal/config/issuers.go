package config

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/authgate/authgate/internal/pathrule"
)

// PrimaryIssuer is the name of the issuer OKTA_ISSUER configures (the
// OKTA_*, JWT_*, TOKEN_VALIDATION and INTROSPECT_PATHS variables): the
// issuer label of its metrics and log lines. ISSUERS may not use it.
const PrimaryIssuer = "primary"

// issuerVarPrefix starts every per-issuer variable: ISSUER_<NAME>_<SETTING>,
// NAME being an ISSUERS name in upper case. Names hold no "_", so a
// variable's name and setting are unambiguous.
const issuerVarPrefix = "ISSUER_"

// Issuer is one authorization server whose tokens authgate accepts, every
// setting parsed and validated: the primary one (OKTA_ISSUER and its
// variables, as before ISSUERS existed) or one of ISSUERS. Strategy
// (introspection, local JWT validation or hybrid), credentials, endpoints,
// budget, breaker and JWT rules are the issuer's own; see docs/issuers.md
// for which variables are per issuer and which stay global.
type Issuer struct {
	// Name is PrimaryIssuer or the issuer's ISSUERS name ([a-z0-9]+).
	Name string
	// URL is the issuer identifier (ISSUER_N_URL, OKTA_ISSUER) as written:
	// a JWT's iss must equal it exactly.
	URL string
	// TokenValidation is ValidationIntrospect, ValidationJWT or
	// ValidationHybrid (ISSUER_N_TOKEN_VALIDATION, TOKEN_VALIDATION).
	TokenValidation string
	// IntrospectEndpoint is ISSUER_N_INTROSPECT_URL (OKTA_INTROSPECT_URL)
	// as configured; "" means discovery (jwt and hybrid), else the default
	// IntrospectURL gives.
	IntrospectEndpoint string
	// ClientID, ClientSecret, AuthMethod, PrivateKeyFile and PrivateKeyID
	// authenticate authgate to the issuer (introspection, revocation); the
	// private key file is named, not read (the wiring reads it, naming
	// Var("PRIVATE_KEY_FILE") in its errors).
	ClientID       string
	ClientSecret   string
	AuthMethod     string
	PrivateKeyFile string
	PrivateKeyID   string
	// Audience is the aud every token of this issuer must carry:
	// ISSUER_N_AUDIENCE (OKTA_AUDIENCE), else RESOURCE_URI; "" = not
	// checked. Never another issuer's audience.
	Audience string
	// JWKSURL is ISSUER_N_JWKS_URL (OKTA_JWKS_URL); "" means the jwks_uri
	// of the issuer's metadata (discovery).
	JWKSURL string
	// JWTAlgorithms (without blanks), JWTLeeway and JWTTyp are the local
	// JWT rules.
	JWTAlgorithms []string
	JWTLeeway     time.Duration
	JWTTyp        string
	// IntrospectPaths (hybrid only) are matched generously, OpaquePaths
	// exactly (like PUBLIC_PATHS): the requests whose opaque token goes to
	// this issuer. The primary has no OpaquePaths: it takes every opaque
	// token no other issuer's rules claim.
	IntrospectPaths []pathrule.Rule
	OpaquePaths     []pathrule.Rule
	// Timeout bounds one call to the issuer (introspection, JWKS,
	// discovery, revocation).
	Timeout time.Duration
	// MaxRPS is this issuer's introspection budget per second; 0 = unlimited.
	MaxRPS float64
	// CAFile is PEM CA certificates trusted for this issuer in addition to
	// the system roots; "" = none.
	CAFile string
	// BreakerFailures and BreakerOpenTimeout configure the breaker of this
	// issuer's endpoints.
	BreakerFailures    uint32
	BreakerOpenTimeout time.Duration
	// RevokeURL is ISSUER_N_REVOKE_URL (OKTA_REVOKE_URL); "" means the
	// revocation_endpoint of the issuer's metadata.
	RevokeURL string
	// RevokeUpstream is REVOKE_UPSTREAM (global), copied here because it
	// decides whether the issuer's client credentials are needed.
	RevokeUpstream bool
}

// IsPrimary reports whether i is the issuer OKTA_ISSUER configures.
func (i *Issuer) IsPrimary() bool { return i.Name == PrimaryIssuer }

// Suffix ends the names of the issuer's breakers and /readyz entries
// ("idp", "jwks", "signing_keys", "redis"): "" for the primary, whose
// names stay those from before ISSUERS, "_<name>" for another.
func (i *Issuer) Suffix() string {
	if i.IsPrimary() {
		return ""
	}
	return "_" + i.Name
}

// IntrospectURL is IntrospectEndpoint, or the Okta default under the issuer.
func (i *Issuer) IntrospectURL() string {
	if i.IntrospectEndpoint != "" {
		return i.IntrospectEndpoint
	}
	return strings.TrimSuffix(i.URL, "/") + "/v1/introspect"
}

// Introspects reports whether authgate ever calls this issuer's
// introspection endpoint.
func (i *Issuer) Introspects() bool { return i.TokenValidation != ValidationJWT }

// UsesClientCredentials reports whether authgate authenticates to this
// issuer as a client: to introspect, or to revoke (REVOKE_UPSTREAM).
func (i *Issuer) UsesClientCredentials() bool { return i.Introspects() || i.RevokeUpstream }

// ValidatesJWT reports whether authgate validates this issuer's JWTs
// locally, i.e. needs its keys.
func (i *Issuer) ValidatesJWT() bool {
	return i.TokenValidation == ValidationJWT || i.TokenValidation == ValidationHybrid
}

// Var is the variable that configures setting (a per-issuer suffix such as
// "PRIVATE_KEY_FILE" or "JWKS_URL") for this issuer, for messages:
// ISSUER_<NAME>_<setting>, or the primary's twin (OKTA_PRIVATE_KEY_FILE,
// OKTA_ISSUER for URL, JWT_LEEWAY, TOKEN_VALIDATION...). The primary has no
// OPAQUE_PATHS: "" then.
func (i *Issuer) Var(setting string) string {
	if !i.IsPrimary() {
		return issuerVar(i.Name, setting)
	}
	for _, s := range issuerSettings() {
		if s.suffix == setting {
			return s.primary
		}
	}
	return ""
}

// Issuers returns every configured issuer: the primary first, built from
// the OKTA_* variables exactly as authgate has always read them, then the
// issuers of ISSUERS in their order. Load has validated them.
func (c *Config) Issuers() []Issuer {
	return append([]Issuer{c.primaryIssuer()}, c.extraIssuers...)
}

func (c *Config) primaryIssuer() Issuer {
	return Issuer{
		Name:               PrimaryIssuer,
		URL:                c.OktaIssuer,
		TokenValidation:    c.TokenValidation,
		IntrospectEndpoint: c.OktaIntrospectURL,
		ClientID:           c.OktaClientID,
		ClientSecret:       c.OktaClientSecret,
		AuthMethod:         c.OktaAuthMethod,
		PrivateKeyFile:     c.OktaPrivateKeyFile,
		PrivateKeyID:       c.OktaPrivateKeyID,
		Audience:           c.RequiredAudience(),
		JWKSURL:            c.OktaJWKSURL,
		JWTAlgorithms:      c.Algorithms(),
		JWTLeeway:          c.JWTLeeway,
		JWTTyp:             c.JWTTyp,
		IntrospectPaths:    c.IntrospectPathRules,
		Timeout:            c.OktaTimeout,
		MaxRPS:             c.OktaMaxRPS,
		CAFile:             c.OktaCAFile,
		BreakerFailures:    c.OktaBreakerFailures,
		BreakerOpenTimeout: c.OktaBreakerOpenTimeout,
		RevokeURL:          c.OktaRevokeURL,
		RevokeUpstream:     c.RevokeUpstream,
	}
}

// issuerEnv is one issuer's variables as read, without the
// ISSUER_<NAME>_ prefix. primary names the primary's twin; inherit marks
// the settings an issuer takes from its twin when its own is unset (or
// empty): bounds and algorithm lists, never a URL, a credential, a trust
// anchor or an audience, which belong to one authorization server.
type issuerEnv struct {
	URL             string   `env:"URL" primary:"OKTA_ISSUER"`
	TokenValidation string   `env:"TOKEN_VALIDATION" envDefault:"introspect" primary:"TOKEN_VALIDATION"`
	IntrospectURL   string   `env:"INTROSPECT_URL" primary:"OKTA_INTROSPECT_URL"`
	ClientID        string   `env:"CLIENT_ID" primary:"OKTA_CLIENT_ID"`
	ClientSecret    string   `env:"CLIENT_SECRET" primary:"OKTA_CLIENT_SECRET" secret:"true"`
	AuthMethod      string   `env:"AUTH_METHOD" envDefault:"client_secret_basic" primary:"OKTA_AUTH_METHOD"`
	PrivateKeyFile  string   `env:"PRIVATE_KEY_FILE" primary:"OKTA_PRIVATE_KEY_FILE"`
	PrivateKeyID    string   `env:"PRIVATE_KEY_ID" primary:"OKTA_PRIVATE_KEY_ID"`
	Audience        string   `env:"AUDIENCE" primary:"OKTA_AUDIENCE"`
	JWKSURL         string   `env:"JWKS_URL" primary:"OKTA_JWKS_URL"`
	JWTTyp          string   `env:"JWT_TYP" primary:"JWT_TYP"`
	IntrospectPaths []string `env:"INTROSPECT_PATHS" envSeparator:"," primary:"INTROSPECT_PATHS"`
	OpaquePaths     []string `env:"OPAQUE_PATHS" envSeparator:","`
	CAFile          string   `env:"CA_FILE" primary:"OKTA_CA_FILE"`
	RevokeURL       string   `env:"REVOKE_URL" primary:"OKTA_REVOKE_URL"`

	Timeout            time.Duration `env:"TIMEOUT" primary:"OKTA_TIMEOUT" inherit:"true"`
	MaxRPS             float64       `env:"MAX_RPS" primary:"OKTA_MAX_RPS" inherit:"true"`
	BreakerFailures    uint32        `env:"BREAKER_FAILURES" primary:"OKTA_BREAKER_FAILURES" inherit:"true"`
	BreakerOpenTimeout time.Duration `env:"BREAKER_OPEN_TIMEOUT" primary:"OKTA_BREAKER_OPEN_TIMEOUT" inherit:"true"`
	JWTAlgorithms      []string      `env:"JWT_ALGORITHMS" envSeparator:"," primary:"JWT_ALGORITHMS" inherit:"true"`
	JWTLeeway          time.Duration `env:"JWT_LEEWAY" primary:"JWT_LEEWAY" inherit:"true"`
}

// issuerSetting describes one per-issuer variable.
type issuerSetting struct {
	field   string // issuerEnv's field
	suffix  string // ISSUER_<NAME>_<suffix>
	primary string // the primary's twin; "" for OPAQUE_PATHS
	inherit bool   // unset: the primary's value (its Config field's, of the same type)
}

// issuerSettings lists the per-issuer variables, read from issuerEnv's tags.
func issuerSettings() []issuerSetting {
	t := reflect.TypeFor[issuerEnv]()
	out := make([]issuerSetting, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		out = append(out, issuerSetting{field: f.Name, suffix: f.Tag.Get("env"), primary: f.Tag.Get("primary"),
			inherit: f.Tag.Get("inherit") == "true"})
	}
	return out
}

// envField is the field of struct type t that reads variable name.
func envField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("env") == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// issuerVar is the variable of setting for the issuer named name.
func issuerVar(name, setting string) string {
	return issuerVarPrefix + strings.ToUpper(name) + "_" + setting
}

// validIssuerName reports whether s is an ISSUERS name: [a-z0-9]+.
func validIssuerName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// loadIssuers reads and checks the issuers ISSUERS names (c is the rest of
// the configuration, parsed). Their variables' values come from lookup,
// else from file (Load's map, which holds every variable of the env file),
// as every other variable's do.
// The problems name their variable; no message quotes a secret.
func (c *Config) loadIssuers(lookup func(string) (string, bool), file map[string]string) ([]Issuer, []string) {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	value := func(k string) string {
		if v, ok := lookup(k); ok {
			return v
		}
		return file[k]
	}

	var names []string
	if strings.TrimSpace(strings.Join(c.IssuerNames, "")) == "" {
		c.IssuerNames = nil // ISSUERS=" ": none, as ISSUERS=
	}
	for _, s := range c.IssuerNames {
		switch s = strings.TrimSpace(s); {
		case s == "":
			add("ISSUERS: an empty name (a comma too many?); names are comma-separated, e.g. payments,org")
		case !validIssuerName(s):
			add("ISSUERS: %q is not an issuer name: lower-case letters and digits only, e.g. payments", s)
		case s == PrimaryIssuer:
			add("ISSUERS: %q is the name of the issuer OKTA_ISSUER configures; choose another", s)
		case slices.Contains(names, s):
			add("ISSUERS: %q is listed twice", s)
		default:
			names = append(names, s)
		}
	}

	settings := issuerSettings()
	// Where each issuer URL is configured, to refuse a second issuer with
	// the same iss (trailing "/" ignored: the same server, surely a mistake).
	urls := map[string]string{}
	if c.OktaIssuer != "" {
		urls[strings.TrimSuffix(strings.TrimSpace(c.OktaIssuer), "/")] = "OKTA_ISSUER"
	}
	var out []Issuer
	for _, name := range names {
		environ := map[string]string{}
		for _, s := range settings {
			if v := value(issuerVar(name, s.suffix)); v != "" {
				environ[issuerVar(name, s.suffix)] = v
			}
		}
		iss, problems := c.loadIssuer(name, environ, settings)
		p = append(p, problems...)
		if key := strings.TrimSuffix(strings.TrimSpace(iss.URL), "/"); iss.URL != "" && checkURL(iss.URL) == nil {
			if other, ok := urls[key]; ok {
				add("%s: the same issuer as %s; configure each issuer once", iss.Var("URL"), other)
			} else {
				urls[key] = iss.Var("URL")
			}
		}
		out = append(out, iss)
	}
	p = append(p, strayIssuerVars(names, settings, value, file)...)
	return out, p
}

// loadIssuer parses and checks the issuer name from environ (its set
// variables only), with the primary's rules and messages.
func (c *Config) loadIssuer(name string, environ map[string]string, settings []issuerSetting) (Issuer, []string) {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	prefix := issuerVar(name, "")
	var raw issuerEnv
	unparsed := map[string]bool{}
	if err := env.ParseWithOptions(&raw, env.Options{Environment: environ, Prefix: prefix}); err != nil {
		for _, s := range parseProblems(err, reflect.TypeFor[issuerEnv](), prefix) {
			v, _, _ := strings.Cut(s, ":")
			unparsed[v] = true
			p = append(p, s)
		}
	}
	// set: given for this issuer (and parsed); otherwise an inheriting
	// setting takes the primary's value, which the primary's own checks
	// have judged.
	set := func(suffix string) bool {
		k := prefix + suffix
		_, ok := environ[k]
		return ok && !unparsed[k]
	}
	// An inheriting setting not set takes its twin's value from c.
	cv, rv := reflect.ValueOf(c).Elem(), reflect.ValueOf(&raw).Elem()
	for _, s := range settings {
		if s.inherit && !set(s.suffix) {
			f, _ := envField(cv.Type(), s.primary)
			rv.FieldByName(s.field).Set(cv.FieldByIndex(f.Index))
		}
	}
	iss := Issuer{
		Name:               name,
		URL:                raw.URL,
		TokenValidation:    raw.TokenValidation,
		IntrospectEndpoint: raw.IntrospectURL,
		ClientID:           raw.ClientID,
		ClientSecret:       raw.ClientSecret,
		AuthMethod:         raw.AuthMethod,
		PrivateKeyFile:     raw.PrivateKeyFile,
		PrivateKeyID:       raw.PrivateKeyID,
		Audience:           raw.Audience,
		JWKSURL:            raw.JWKSURL,
		JWTTyp:             raw.JWTTyp,
		CAFile:             raw.CAFile,
		RevokeURL:          raw.RevokeURL,
		RevokeUpstream:     c.RevokeUpstream,
		Timeout:            raw.Timeout,
		MaxRPS:             raw.MaxRPS,
		BreakerFailures:    raw.BreakerFailures,
		BreakerOpenTimeout: raw.BreakerOpenTimeout,
		JWTLeeway:          raw.JWTLeeway,
	}
	if iss.Audience == "" {
		iss.Audience = c.ResourceURI
	}
	// Set but blank (" , ") is this issuer's own, empty list: refused
	// below, as JWT_ALGORITHMS would be.
	for _, a := range raw.JWTAlgorithms {
		if a = strings.TrimSpace(a); a != "" {
			iss.JWTAlgorithms = append(iss.JWTAlgorithms, a)
		}
	}
	v := iss.Var

	// The primary's checks, in its order (config.go, security.go, jwt.go,
	// fleet.go), each under this issuer's variable.
	for _, r := range []struct {
		suffix, val string
		needed      bool
	}{
		{"URL", iss.URL, true},
		{"CLIENT_ID", iss.ClientID, iss.UsesClientCredentials()},
		{"CLIENT_SECRET", iss.ClientSecret, iss.UsesClientCredentials() && iss.AuthMethod != AuthPrivateKeyJWT},
	} {
		if r.needed && strings.TrimSpace(r.val) == "" {
			add("%s: required, must not be empty", v(r.suffix))
		}
	}
	for _, u := range []struct{ suffix, val string }{{"URL", iss.URL}, {"INTROSPECT_URL", iss.IntrospectEndpoint}} {
		if u.val != "" {
			if err := checkURL(u.val); err != nil {
				add("%s: %v", v(u.suffix), err)
			}
		}
	}
	switch iss.AuthMethod {
	case AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT:
	default:
		add("%s: must be %s, %s or %s, got %q", v("AUTH_METHOD"), AuthClientSecretBasic, AuthClientSecretPost, AuthPrivateKeyJWT, iss.AuthMethod)
	}
	for _, d := range []struct {
		suffix string
		val    time.Duration
	}{{"TIMEOUT", iss.Timeout}, {"BREAKER_OPEN_TIMEOUT", iss.BreakerOpenTimeout}} {
		if set(d.suffix) && d.val <= 0 {
			add("%s: must be a positive duration, got %s", v(d.suffix), d.val)
		}
	}
	if set("BREAKER_FAILURES") && iss.BreakerFailures < 1 {
		add("%s: must be at least 1", v("BREAKER_FAILURES"))
	}

	// security.go
	if set("MAX_RPS") && (iss.MaxRPS < 0 || math.IsNaN(iss.MaxRPS) || math.IsInf(iss.MaxRPS, 0)) {
		add("%s: must be 0 (unlimited) or a positive number of introspections per second, got %v", v("MAX_RPS"), iss.MaxRPS)
	}
	if !c.AllowInsecureHTTP {
		for _, u := range []struct{ suffix, val string }{{"URL", iss.URL}, {"INTROSPECT_URL", iss.IntrospectEndpoint}} {
			if PlainHTTPNonLoopback(u.val) {
				add("%s: http:// to a host that is not loopback would send the client secret and tokens in clear; use https or set ALLOW_INSECURE_HTTP=true", v(u.suffix))
			}
		}
	}
	if iss.CAFile != "" && !isHTTPS(iss.IntrospectURL()) {
		add("%s: set, but the introspection URL %s is not https", v("CA_FILE"), redacted(iss.IntrospectURL()))
	}

	// jwt.go
	switch iss.TokenValidation {
	case ValidationIntrospect, ValidationJWT, ValidationHybrid:
	default:
		add("%s: must be introspect, jwt or hybrid, got %q", v("TOKEN_VALIDATION"), iss.TokenValidation)
	}
	if iss.ValidatesJWT() && strings.TrimSpace(iss.Audience) == "" {
		add("%s: required when %s is %s (or RESOURCE_URI): a JWT's aud must be checked (RFC 8725), e.g. api://default", v("AUDIENCE"), v("TOKEN_VALIDATION"), iss.TokenValidation)
	}
	if iss.JWKSURL != "" {
		if err := checkURL(iss.JWKSURL); err != nil {
			add("%s: %v", v("JWKS_URL"), err)
		} else if !c.AllowInsecureHTTP && PlainHTTPNonLoopback(iss.JWKSURL) {
			add("%s: http:// to a host that is not loopback lets anyone on the path substitute the signing keys; use https or set ALLOW_INSECURE_HTTP=true", v("JWKS_URL"))
		}
	}
	if set("JWT_ALGORITHMS") {
		if len(iss.JWTAlgorithms) == 0 {
			add("%s: must list at least one algorithm, e.g. RS256,ES256", v("JWT_ALGORITHMS"))
		}
		for _, a := range iss.JWTAlgorithms {
			switch {
			case jwtAlgorithms[a]:
			case strings.EqualFold(a, "none"), strings.HasPrefix(strings.ToUpper(a), "HS"):
				add("%s: %q is never accepted (RFC 8725: no unsigned tokens, no HMAC with a public key)", v("JWT_ALGORITHMS"), a)
			default:
				add("%s: %q is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", v("JWT_ALGORITHMS"), a)
			}
		}
	}
	if set("JWT_LEEWAY") && (iss.JWTLeeway < 0 || iss.JWTLeeway > MaxJWTLeeway) {
		add("%s: must be between 0s and %s, got %s", v("JWT_LEEWAY"), MaxJWTLeeway, iss.JWTLeeway)
	}
	rules, errs := pathrule.ParseList(raw.IntrospectPaths)
	for _, err := range errs {
		add("%s: %v", v("INTROSPECT_PATHS"), err)
	}
	iss.IntrospectPaths = rules
	if len(rules) > 0 && iss.TokenValidation != ValidationHybrid {
		add("%s: set, but %s is %s (only hybrid chooses by path)", v("INTROSPECT_PATHS"), v("TOKEN_VALIDATION"), iss.TokenValidation)
	}
	rules, errs = pathrule.ParseList(raw.OpaquePaths)
	for _, err := range errs {
		add("%s: %v", v("OPAQUE_PATHS"), err)
	}
	iss.OpaquePaths = rules
	if len(rules) > 0 && iss.TokenValidation == ValidationJWT {
		add("%s: set, but %s is jwt: an opaque token can only be introspected", v("OPAQUE_PATHS"), v("TOKEN_VALIDATION"))
	}
	switch {
	case iss.AuthMethod == AuthPrivateKeyJWT && iss.UsesClientCredentials() && iss.PrivateKeyFile == "":
		add("%s: required when %s is private_key_jwt", v("PRIVATE_KEY_FILE"), v("AUTH_METHOD"))
	case iss.AuthMethod != AuthPrivateKeyJWT && iss.PrivateKeyFile != "":
		add("%s: set, but %s is %s (only private_key_jwt signs with a key)", v("PRIVATE_KEY_FILE"), v("AUTH_METHOD"), iss.AuthMethod)
	}

	// fleet.go
	if iss.RevokeURL != "" {
		if err := checkURL(iss.RevokeURL); err != nil {
			add("%s: %v", v("REVOKE_URL"), err)
		} else if !c.AllowInsecureHTTP && PlainHTTPNonLoopback(iss.RevokeURL) {
			add("%s: http:// to a host that is not loopback would send the client secret and tokens in clear; use https or set ALLOW_INSECURE_HTTP=true", v("REVOKE_URL"))
		}
	}
	return iss, p
}

// strayIssuerVars finds the ISSUER_* variables set (not empty) that belong
// to no issuer of ISSUERS or configure nothing: a misspelt name or setting
// would otherwise do nothing, silently. The names come from the env file
// and the process environment (os.Environ); a value counts only as value
// (lookup, else the file) gives it, so a lookup that does not hold a
// process variable hides it, as for every other variable.
func strayIssuerVars(names []string, settings []issuerSetting, value func(string) string, file map[string]string) []string {
	candidates := map[string]bool{}
	for k := range file {
		candidates[k] = true
	}
	for _, kv := range os.Environ() {
		if k, _, ok := strings.Cut(kv, "="); ok {
			candidates[k] = true
		}
	}
	var vars []string
	for k := range candidates {
		if strings.HasPrefix(k, issuerVarPrefix) && value(k) != "" {
			vars = append(vars, k)
		}
	}
	sort.Strings(vars)
	var p []string
	for _, k := range vars {
		upper, suffix, found := strings.Cut(strings.TrimPrefix(k, issuerVarPrefix), "_")
		name := strings.ToLower(upper)
		switch {
		case !found || suffix == "" || upper != strings.ToUpper(name) || !validIssuerName(name):
			p = append(p, fmt.Sprintf("%s: not a per-issuer variable: ISSUER_<NAME>_<SETTING>, NAME an ISSUERS name in upper case", k))
		case !slices.Contains(names, name):
			p = append(p, fmt.Sprintf("%s: set, but ISSUERS does not name %s", k, name))
		case !slices.ContainsFunc(settings, func(s issuerSetting) bool { return s.suffix == suffix }):
			p = append(p, fmt.Sprintf("%s: %s is not a per-issuer setting (docs/issuers.md lists them, and the variables that stay global)", k, suffix))
		}
	}
	return p
}

// redacted is raw with the password of its userinfo, if any, replaced by
// "xxxxx": for messages about a URL checkURL may refuse for carrying
// credentials.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not a URL)"
	}
	return u.Redacted()
}
