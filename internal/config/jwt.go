package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate/internal/pathrule"
)

// Token validation modes (TOKEN_VALIDATION).
const (
	ValidationIntrospect = "introspect" // every token is introspected (RFC 7662)
	ValidationJWT        = "jwt"        // every token must be a JWT signed by a key of the issuer's JWKS
	ValidationHybrid     = "hybrid"     // JWTs of OKTA_ISSUER locally, the rest (and INTROSPECT_PATHS) introspected
)

// MaxJWTLeeway bounds JWT_LEEWAY: a larger skew would accept tokens long
// expired.
const MaxJWTLeeway = 5 * time.Minute

// jwtAlgorithms are the JWS algorithms JWT_ALGORITHMS may list: asymmetric
// signatures only. RFC 8725 3.1-3.2: never none, and never an HMAC, whose
// "secret" would be the issuer's public key.
var jwtAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// Introspects reports whether authgate ever calls the introspection
// endpoint, i.e. needs client credentials.
func (c *Config) Introspects() bool { return c.TokenValidation != ValidationJWT }

// UsesClientCredentials reports whether authgate authenticates to the
// authorization server as a client: to introspect, or to revoke at its RFC
// 7009 endpoint (REVOKE_UPSTREAM, in every mode, jwt too).
func (c *Config) UsesClientCredentials() bool { return c.Introspects() || c.RevokeUpstream }

// ValidatesJWT reports whether authgate validates JWTs locally, i.e. needs
// the issuer's keys.
func (c *Config) ValidatesJWT() bool {
	return c.TokenValidation == ValidationJWT || c.TokenValidation == ValidationHybrid
}

// Algorithms returns JWT_ALGORITHMS without blanks; Load has validated it.
func (c *Config) Algorithms() []string {
	var out []string
	for _, a := range c.JWTAlgorithms {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// jwtProblems checks the token-validation variables.
func (c *Config) jwtProblems() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	switch c.TokenValidation {
	case ValidationIntrospect, ValidationJWT, ValidationHybrid:
	default:
		add("TOKEN_VALIDATION: must be introspect, jwt or hybrid, got %q", c.TokenValidation)
	}
	if c.ValidatesJWT() && strings.TrimSpace(c.RequiredAudience()) == "" {
		add("OKTA_AUDIENCE: required when TOKEN_VALIDATION is %s (or RESOURCE_URI): a JWT's aud must be checked (RFC 8725), e.g. api://default", c.TokenValidation)
	}
	if c.OktaJWKSURL != "" {
		if err := checkURL(c.OktaJWKSURL); err != nil {
			add("OKTA_JWKS_URL: %v", err)
		} else if !c.AllowInsecureHTTP && PlainHTTPNonLoopback(c.OktaJWKSURL) {
			add("OKTA_JWKS_URL: http:// to a host that is not loopback lets anyone on the path substitute the signing keys; use https or set ALLOW_INSECURE_HTTP=true")
		}
	}
	algs := c.Algorithms()
	if len(algs) == 0 {
		add("JWT_ALGORITHMS: must list at least one algorithm, e.g. RS256,ES256")
	}
	for _, a := range algs {
		switch {
		case jwtAlgorithms[a]:
		case strings.EqualFold(a, "none"), strings.HasPrefix(strings.ToUpper(a), "HS"):
			add("JWT_ALGORITHMS: %q is never accepted (RFC 8725: no unsigned tokens, no HMAC with a public key)", a)
		default:
			add("JWT_ALGORITHMS: %q is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", a)
		}
	}
	if c.JWTLeeway < 0 || c.JWTLeeway > MaxJWTLeeway {
		add("JWT_LEEWAY: must be between 0s and %s, got %s", MaxJWTLeeway, c.JWTLeeway)
	}
	var errs []error
	c.IntrospectPathRules, errs = pathrule.ParseList(c.IntrospectPaths)
	for _, err := range errs {
		add("INTROSPECT_PATHS: %v", err)
	}
	if len(c.IntrospectPathRules) > 0 && c.TokenValidation != ValidationHybrid {
		add("INTROSPECT_PATHS: set, but TOKEN_VALIDATION is %s (only hybrid chooses by path)", c.TokenValidation)
	}
	switch {
	case c.OktaAuthMethod == AuthPrivateKeyJWT && c.UsesClientCredentials() && c.OktaPrivateKeyFile == "":
		add("OKTA_PRIVATE_KEY_FILE: required when OKTA_AUTH_METHOD is private_key_jwt")
	case c.OktaAuthMethod != AuthPrivateKeyJWT && c.OktaPrivateKeyFile != "":
		add("OKTA_PRIVATE_KEY_FILE: set, but OKTA_AUTH_METHOD is %s (only private_key_jwt signs with a key)", c.OktaAuthMethod)
	}
	return p
}
