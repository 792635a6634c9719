package config

import (
	"fmt"
	"net/url"
	"strings"
)

// MinAdminAPITokenLen is the shortest ADMIN_API_TOKEN accepted: the token
// guards POST /revoke, which anyone reaching ADMIN_ADDR may call.
const MinAdminAPITokenLen = 32

// fleetProblems checks the settings of several replicas: the shared tier on
// Redis and push revocation. No message quotes REDIS_URL (it may hold a
// password) or ADMIN_API_TOKEN.
func (c *Config) fleetProblems() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		switch {
		case err != nil:
			add("REDIS_URL: not a URL")
		case u.Scheme != "redis" && u.Scheme != "rediss":
			add("REDIS_URL: must be a redis:// or rediss:// (TLS) URL, got scheme %q", u.Scheme)
		case u.Host == "":
			add("REDIS_URL: must name a host, e.g. redis://127.0.0.1:6379/0")
		}
	}
	if c.RedisTimeout <= 0 {
		add("REDIS_TIMEOUT: must be a positive duration, got %s", c.RedisTimeout)
	}
	if strings.ContainsAny(c.RedisKeyPrefix, "{}") {
		add("REDIS_KEY_PREFIX: must not contain { or } (authgate adds its own hash tags), got %q", c.RedisKeyPrefix)
	}
	if n := len(c.AdminAPIToken); n > 0 && n < MinAdminAPITokenLen {
		add("ADMIN_API_TOKEN: must be at least %d characters, got %d", MinAdminAPITokenLen, n)
	}
	if c.RevokeUpstream && c.AdminAPIToken == "" {
		add("REVOKE_UPSTREAM: true, but ADMIN_API_TOKEN is not set (POST /revoke is off)")
	}
	if c.OktaRevokeURL != "" {
		if err := checkURL(c.OktaRevokeURL); err != nil {
			add("OKTA_REVOKE_URL: %v", err)
		} else if !c.AllowInsecureHTTP && PlainHTTPNonLoopback(c.OktaRevokeURL) {
			add("OKTA_REVOKE_URL: http:// to a host that is not loopback would send the client secret and tokens in clear; use https or set ALLOW_INSECURE_HTTP=true")
		}
	}
	return p
}

// Shared reports whether the replicas share a tier in Redis (REDIS_URL).
func (c *Config) Shared() bool { return c.RedisURL != "" }
