package e2e

import (
	"path/filepath"
	"testing"
	"text/template"
)

// caddyfile is docs/proxies.md's Caddy configuration, wrapped in what a
// throw-away Caddy needs: no admin endpoint, no HTTPS, one loopback port.
var caddyfile = template.Must(template.New("Caddyfile").Parse(`{
	admin off
	auto_https off
	storage file_system {{.Dir}}/data
}

http://{{.Listen}} {
	# route keeps the order as written: Caddy's own directive order runs
	# request_header after forward_auth, which would delete the identity
	# forward_auth has just copied.
	route {
		# The client's identity headers go first, in any spelling, so that
		# none survives where authgate's answer has an empty value (some
		# Caddy versions copy only non-empty ones).
		request_header -X-Auth-*
		request_header -X_Auth_*
		forward_auth {{.Authgate}} {
			uri /verify
			# Caddy sets X-Forwarded-Method/-Uri; a client's X-Original-*
			# would describe another request (authgate refuses a conflict).
			header_up -X-Original-*
			# Only headers every 2xx carries: Caddy 2.6 sets a header the
			# answer lacks to the placeholder's text.
			copy_headers X-Auth-Subject X-Auth-Client-Id X-Auth-Scopes
		}
		reverse_proxy {{.Upstream}}
	}
}
`))

// caddyBinary finds Caddy (the test skips without it, but fails in CI).
func caddyBinary(t *testing.T) string {
	t.Helper()
	return debianBinary(t, "caddy", "caddy", "/usr/bin/caddy")
}

// startCaddy runs Caddy with caddyfile in front of upstream, asking
// authgate at authgate (host:port); it returns Caddy's base URL.
func startCaddy(t *testing.T, authgate, upstream string) string {
	t.Helper()
	return proxyProcess(t, proxySpec{
		name: "caddy", bin: caddyBinary(t), conf: caddyfile, file: "Caddyfile",
		args: func(dir, conf string) []string { return []string{"run", "--config", conf, "--adapter", "caddyfile"} },
		env: func(dir string) []string {
			return []string{"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
		},
	}, authgate, upstream)
}

// TestCaddyForwardAuth puts real Caddy, with forward_auth pointing at
// authgate's /verify, in front of a test upstream.
func TestCaddyForwardAuth(t *testing.T) {
	caddyBinary(t) // skip (or fail in CI) before starting anything
	s := startForwardAuthStack(t)
	caddy := startCaddy(t, s.adminAddr(), s.upstreamAddr())
	// Caddy passes authgate's non-2xx answers to the client as they are.
	checkForwardAuth(t, caddy, s, 404, false)
}
