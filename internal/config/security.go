package config

import (
	"fmt"
	"math"
	"net/url"
	"strings"

	"github.com/authgate/authgate/pkg/introspect"
)

// securityProblems checks the reliability and security settings: the
// introspection budgets, stale-if-error, plain-http URLs and TLS files.
func (c *Config) securityProblems() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if c.OktaMaxRPS < 0 || math.IsNaN(c.OktaMaxRPS) || math.IsInf(c.OktaMaxRPS, 0) {
		add("OKTA_MAX_RPS: must be 0 (unlimited) or a positive number of introspections per second, got %v", c.OktaMaxRPS)
	}
	if c.OktaMaxRPSPerClient < 0 || math.IsNaN(c.OktaMaxRPSPerClient) || math.IsInf(c.OktaMaxRPSPerClient, 0) {
		add("OKTA_MAX_RPS_PER_CLIENT: must be 0 (off) or a positive number of introspections per second, got %v", c.OktaMaxRPSPerClient)
	}
	if c.CacheStaleIfError < 0 {
		add("CACHE_STALE_IF_ERROR: must be 0 (off) or a positive duration, got %s", c.CacheStaleIfError)
	}
	if c.ReadHeaderTimeout <= 0 {
		add("READ_HEADER_TIMEOUT: must be a positive duration, got %s", c.ReadHeaderTimeout)
	}
	// The client secret and users' tokens must not cross a network in clear.
	if !c.AllowInsecureHTTP {
		for _, u := range []struct{ name, val string }{{"OKTA_ISSUER", c.OktaIssuer}, {"OKTA_INTROSPECT_URL", c.OktaIntrospectURL}} {
			if PlainHTTPNonLoopback(u.val) {
				add("%s: http:// to a host that is not loopback would send the client secret and tokens in clear; use https or set ALLOW_INSECURE_HTTP=true", u.name)
			}
		}
	}
	if c.OktaCAFile != "" && !isHTTPS(c.IntrospectURL()) {
		add("OKTA_CA_FILE: set, but the introspection URL %s is not https", redacted(c.IntrospectURL()))
	}
	for _, f := range []struct{ name, val string }{{"OPA_CA_FILE", c.OPACAFile}, {"OPA_CLIENT_CERT_FILE", c.OPAClientCertFile}} {
		if f.val != "" && c.OPAAuthzURL != "" && !isHTTPS(c.OPAAuthzURL) {
			add("%s: set, but OPA_AUTHZ_URL is not https", f.name)
		}
	}
	if (c.OPAClientCertFile == "") != (c.OPAClientKeyFile == "") {
		add("OPA_CLIENT_CERT_FILE, OPA_CLIENT_KEY_FILE: set both (mTLS to OPA) or neither")
	}
	return p
}

// PlainHTTPNonLoopback reports whether raw is an http:// URL whose host is
// neither "localhost" nor a loopback address. It is the rule discovery
// applies to the endpoints an issuer's metadata names (package
// introspect), so that both stay one.
func PlainHTTPNonLoopback(raw string) bool { return introspect.PlainHTTPNonLoopback(raw) }

func isHTTPS(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && strings.EqualFold(u.Scheme, "https")
}
