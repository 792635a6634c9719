package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// MinAdminAPITokenLen is the shortest ADMIN_API_TOKEN accepted: the token
// guards POST /revoke, which anyone reaching ADMIN_ADDR may call.
const MinAdminAPITokenLen = 32

// MinFleetKeyLen is the shortest FLEET_KEY (and FLEET_KEY_PREVIOUS)
// accepted: whoever holds the key can write answers every replica
// believes.
const MinFleetKeyLen = 32

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
	switch n := len(c.FleetKey); {
	case c.RedisURL != "" && n == 0:
		add("FLEET_KEY: required when REDIS_URL is set: a random string of at least %d characters shared by every replica (e.g. openssl rand -base64 48)", MinFleetKeyLen)
	case n > 0 && n < MinFleetKeyLen:
		add("FLEET_KEY: must be at least %d characters, got %d", MinFleetKeyLen, n)
	}
	switch n := len(c.FleetKeyPrev); {
	case n > 0 && n < MinFleetKeyLen:
		add("FLEET_KEY_PREVIOUS: must be at least %d characters, got %d", MinFleetKeyLen, n)
	case n > 0 && c.FleetKey == "":
		add("FLEET_KEY_PREVIOUS: set, but FLEET_KEY is not (FLEET_KEY is the key replicas write with)")
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

// PlainRedisNonLoopback reports whether REDIS_URL reaches a host that is
// not loopback without TLS (redis://): answers, locks and revocations then
// cross the network in clear (sealed, but an observer sees which keys are
// used, and can reach the server to write to it). A Cluster's or
// Sentinel's addr= parameters count too.
func (c *Config) PlainRedisNonLoopback() bool {
	u, err := url.Parse(c.RedisURL)
	if err != nil || !strings.EqualFold(u.Scheme, "redis") {
		return false
	}
	hosts := []string{u.Hostname()}
	for _, a := range u.Query()["addr"] {
		h, _, err := net.SplitHostPort(a)
		if err != nil {
			h = a
		}
		hosts = append(hosts, h)
	}
	for _, h := range hosts {
		if strings.EqualFold(h, "localhost") {
			continue
		}
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return true
		}
	}
	return false
}
