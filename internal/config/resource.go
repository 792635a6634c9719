package config

import (
	"fmt"
	"net/url"
	"strings"
)

// AuthorizationServers is RESOURCE_AUTHORIZATION_SERVERS without blank
// entries, or, when it names none, every issuer's URL (OKTA_ISSUER, then
// each ISSUER_N_URL in ISSUERS order): the issuers a client may get a token
// for this resource from (RFC 9728 authorization_servers).
func (c *Config) AuthorizationServers() []string {
	var out []string
	for _, s := range c.ResourceAuthorizationServers {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 && c.ResourceURI != "" {
		for _, iss := range c.Issuers() {
			out = append(out, iss.URL)
		}
	}
	return out
}

// ResourceScopeList is RESOURCE_SCOPES split on commas and white space:
// operators write scope lists both ways.
func (c *Config) ResourceScopeList() []string {
	s := strings.FieldsFunc(c.ResourceScopes, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(s) == 0 {
		return nil
	}
	return s
}

// RequiredAudience is the audience every token must carry (RFC 8707
// audience binding): OKTA_AUDIENCE when set, else RESOURCE_URI, else ""
// (no audience check). OKTA_AUDIENCE wins so that an authorization server
// whose tokens name the resource differently (Okta's api://... audiences)
// still works with metadata on. Token validation of every kind
// (introspection, and local JWT validation) must check this one value.
func (c *Config) RequiredAudience() string {
	if c.OktaAudience != "" {
		return c.OktaAudience
	}
	return c.ResourceURI
}

// resourceProblems checks the protected-resource variables.
func (c *Config) resourceProblems() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if c.ResourceURI == "" {
		for _, v := range []struct {
			name string
			set  bool
		}{
			{"RESOURCE_AUTHORIZATION_SERVERS", len(c.ResourceAuthorizationServers) > 0},
			{"RESOURCE_SCOPES", c.ResourceScopes != ""},
			{"RESOURCE_NAME", c.ResourceName != ""},
			{"RESOURCE_DOCUMENTATION", c.ResourceDocumentation != ""},
		} {
			if v.set {
				add("%s: set, but RESOURCE_URI is empty (protected-resource metadata is off)", v.name)
			}
		}
		return p
	}
	if err := checkResourceURI(c.ResourceURI, c.AllowInsecureHTTP); err != nil {
		add("RESOURCE_URI: %v", err)
	}
	for _, s := range c.AuthorizationServers() {
		if err := checkURL(s); err != nil {
			add("RESOURCE_AUTHORIZATION_SERVERS: %q: %v", s, err)
		}
	}
	for _, s := range c.ResourceScopeList() {
		if !scopeToken(s) {
			add("RESOURCE_SCOPES: %q is not an RFC 6749 scope token", s)
		}
	}
	if c.ResourceDocumentation != "" {
		if err := checkURL(c.ResourceDocumentation); err != nil {
			add("RESOURCE_DOCUMENTATION: %v", err)
		}
	}
	if strings.ContainsFunc(c.ResourceName, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		add("RESOURCE_NAME: must be printable, without line breaks")
	}
	return p
}

// checkResourceURI checks a resource identifier (RFC 9728 section 1.2, RFC
// 8707 section 2): an absolute https URL without query or fragment. Its
// path is routed as is (the metadata's path-inserted form) and compared
// exactly with the tokens' aud, so it must be written in its one clean
// form.
func checkResourceURI(s string, allowInsecure bool) error {
	if err := checkURL(s); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	switch {
	case strings.EqualFold(u.Scheme, "http") && PlainHTTPNonLoopback(s) && !allowInsecure:
		return fmt.Errorf("must be an https URL (RFC 9728); http:// only for a loopback host or with ALLOW_INSECURE_HTTP=true")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("must not have a query or a fragment")
	case strings.Contains(u.Path, "//") || strings.ContainsAny(s[len(u.Scheme)+3:], "%;") || hasDotSegment(u.Path):
		return fmt.Errorf("path must be clean: no //, no . or .. segments, no ; and nothing percent-encoded")
	}
	return nil
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// scopeToken reports whether s is an RFC 6749 section 3.3 scope-token:
// %x21 / %x23-5B / %x5D-7E, at least one.
func scopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
