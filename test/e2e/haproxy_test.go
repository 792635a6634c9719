package e2e

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"text/template"
)

// haproxyConf is docs/proxies.md's HAProxy configuration, loading the
// repository's deploy/haproxy/authgate.lua, wrapped in what a throw-away
// HAProxy needs: one loopback port, no chroot, no user switch.
var haproxyConf = template.Must(template.New("haproxy.cfg").Parse(`global
    lua-load {{.Repo}}/deploy/haproxy/authgate.lua

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend www
    bind {{.Listen}}
    http-request lua.authgate http://{{.Authgate}}/verify
    # Method-override headers would reach the upstream (see modes.md).
    http-request del-header X-HTTP-Method-Override
    http-request del-header X-HTTP-Method
    http-request del-header X-Method-Override
    default_backend app

backend app
    server app {{.Upstream}}
`))

// haproxyBinary finds HAProxy (the test skips without it, but fails in CI).
func haproxyBinary(t *testing.T) string {
	t.Helper()
	return debianBinary(t, "haproxy", "haproxy", "/usr/sbin/haproxy")
}

// startHAProxy runs HAProxy with haproxyConf in front of upstream, asking
// authgate at authgate (host:port); it returns HAProxy's base URL.
func startHAProxy(t *testing.T, authgate, upstream string) string {
	t.Helper()
	return proxyProcess(t, proxySpec{
		name: "haproxy", bin: haproxyBinary(t), conf: haproxyConf, file: "haproxy.cfg",
		args: func(dir, conf string) []string { return []string{"-f", conf, "-db"} },
		stop: syscall.SIGUSR1, // soft stop: finish what is in flight
	}, authgate, upstream)
}

// TestHAProxyForwardAuth puts real HAProxy, with deploy/haproxy/authgate.lua
// asking authgate's /verify, in front of a test upstream.
func TestHAProxyForwardAuth(t *testing.T) {
	haproxyBinary(t) // skip (or fail in CI) before starting anything
	s := startForwardAuthStack(t)
	haproxy := startHAProxy(t, s.adminAddr(), s.upstreamAddr())
	// The Lua action passes authgate's refusals to the client as they are.
	checkForwardAuth(t, haproxy, s, 404, true)

	t.Run("method-override headers do not reach the upstream", func(t *testing.T) {
		r := do(t, "GET", haproxy+"/api/items", with(bearer(s.reader), "X-HTTP-Method-Override", "DELETE", "X-Method-Override", "DELETE"), nil)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		got := s.up.seen().Header
		for _, name := range []string{"X-Http-Method-Override", "X-Method-Override"} {
			if vs := headerValues(got, name); len(vs) != 0 {
				t.Errorf("upstream got %s: %q", name, vs)
			}
		}
	})
}

// TestHAProxyAuthgateDown: with authgate unreachable the Lua action refuses
// with 503 and nothing reaches the upstream.
func TestHAProxyAuthgateDown(t *testing.T) {
	haproxyBinary(t)
	up := startUpstream(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String() // nothing listens there once closed
	l.Close()
	haproxy := startHAProxy(t, closed, strings.TrimPrefix(up.srv.URL, "http://"))
	r := do(t, "GET", haproxy+"/api/items", bearer("some-token"), nil)
	if r.Status != 503 {
		t.Errorf("%d %s, want 503", r.Status, r.Body)
	}
	if up.hits.Load() != 0 {
		t.Errorf("a request reached the upstream while authgate was down")
	}
}
