package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/authgate/authgate/internal/pathrule"
)

// UpgradeProtocols returns UPSTREAM_UPGRADES lower-cased, blanks dropped;
// Load has validated it.
func (c *Config) UpgradeProtocols() []string {
	var out []string
	for _, s := range c.UpstreamUpgrades {
		if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// OPAInputHeaderNames returns OPA_INPUT_HEADERS, trimmed, without empty
// entries; nil when unset (every header but the credentials). Load has
// validated it.
func (c *Config) OPAInputHeaderNames() []string {
	var out []string
	for _, s := range c.OPAInputHeaders {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// modeProblems checks the gateway-mode variables.
func (c *Config) modeProblems() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if c.UpstreamURL != "" {
		if err := checkURL(c.UpstreamURL); err != nil {
			add("UPSTREAM_URL: %v", err)
		} else if u, _ := url.Parse(c.UpstreamURL); u.RawQuery != "" || u.Fragment != "" {
			add("UPSTREAM_URL: must not have a query or a fragment")
		} else if u.Host == c.ListenAddr || u.Host == c.AdminAddr || u.Host == c.MetricsAddr {
			add("UPSTREAM_URL: points at authgate itself (%s): every request would loop", u.Host)
		}
	}
	if c.UpstreamTimeout <= 0 {
		add("UPSTREAM_TIMEOUT: must be a positive duration, got %s", c.UpstreamTimeout)
	}
	for _, s := range c.UpstreamUpgrades {
		switch s = strings.TrimSpace(s); {
		case s == "":
		case !isToken(s):
			add("UPSTREAM_UPGRADES: %q is not a protocol name (an HTTP token such as websocket)", s)
		case strings.EqualFold(s, "h2c"):
			// Requests inside an HTTP/2 connection never pass the check
			// (GHSA-w4v4-9rw7-5326 in Traefik).
			add("UPSTREAM_UPGRADES: h2c cannot be allowed: the requests inside an h2c connection would reach the upstream unchecked")
		}
	}
	var errs []error
	c.PublicPathRules, errs = pathrule.ParseList(c.PublicPaths)
	for _, err := range errs {
		add("PUBLIC_PATHS: %v", err)
	}
	c.TrustedProxyPrefixes = nil
	for _, s := range c.TrustedProxies {
		if strings.TrimSpace(s) == "" {
			continue
		}
		p, err := parsePrefix(s)
		if err != nil {
			add("TRUSTED_PROXIES: %q is not a CIDR (10.0.0.0/8) or an IP address", strings.TrimSpace(s))
			continue
		}
		c.TrustedProxyPrefixes = append(c.TrustedProxyPrefixes, p)
	}
	seen := map[string]string{}
	for _, h := range []struct{ name, val string }{
		{"IDENTITY_HEADER_SUBJECT", c.IdentityHeaderSubject},
		{"IDENTITY_HEADER_CLIENT_ID", c.IdentityHeaderClientID},
		{"IDENTITY_HEADER_SCOPES", c.IdentityHeaderScopes},
	} {
		if err := checkHeaderName(h.val); err != nil {
			add("%s: %v", h.name, err)
			continue
		}
		key := strings.ToLower(h.val)
		if other, ok := seen[key]; ok {
			add("%s: same header as %s (%s)", h.name, other, h.val)
		}
		seen[key] = h.name
	}
	for _, h := range c.OPAInputHeaderNames() {
		switch {
		case !isToken(h):
			add("OPA_INPUT_HEADERS: %q is not a header name", h)
		case credentialHeaders[strings.ToLower(h)]:
			add("OPA_INPUT_HEADERS: %q carries credentials and never goes into the input (OPA_SEND_TOKEN sends the token)", h)
		}
	}
	return p
}

// credentialHeaders never go into the OPA input, whatever OPA_INPUT_HEADERS says.
var credentialHeaders = map[string]bool{"authorization": true, "proxy-authorization": true, "cookie": true}

// reservedHeaders cannot carry identity: HTTP itself or authgate needs them.
var reservedHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "host": true,
	"connection": true, "content-length": true, "content-type": true, "transfer-encoding": true,
	"upgrade": true, "te": true, "trailer": true, "keep-alive": true, "proxy-connection": true,
	"x-forwarded-for": true, "x-forwarded-host": true, "x-forwarded-proto": true, "forwarded": true,
	"http2-settings": true,
}

// isToken reports whether s is an RFC 9110 token (a protocol or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func checkHeaderName(s string) error {
	if s == "" {
		return errors.New("must be a header name, got an empty value")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%q is not a header name (letters, digits, - and _)", s)
		}
	}
	if reservedHeaders[strings.ToLower(s)] {
		return fmt.Errorf("%q is reserved by HTTP or authgate", s)
	}
	return nil
}
