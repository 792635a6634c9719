package e2e

// Real proxies in front of authgate's /verify (docs/proxies.md): what they
// share. Each proxy's test (caddy_test.go, haproxy_test.go, nginx_test.go)
// writes the configuration the docs show and starts the proxy with
// proxyProcess in front of startForwardAuthStack; Caddy's and HAProxy's
// run checkForwardAuth (nginx's keeps its own cases: it answers a 403 and
// the policy's 404 its own way).

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/authgate/authgate/internal/opatest"
	"github.com/authgate/authgate/internal/stacktest"
)

// debianBinary finds the program name of Debian package pkg on PATH or in
// paths. Without it the test skips on a developer's machine, but fails in
// CI (CI=true), where make test installs the package.
func debianBinary(t *testing.T, name, pkg string, paths ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI=true: make test installs it (apt-get install %s) when run as root", name, pkg)
	}
	t.Skipf("%s is not installed (apt-get install %s): skipping the forward-auth test through real %s", name, pkg, name)
	return ""
}

// proxySpec says how to run one proxy for a test.
type proxySpec struct {
	name string
	bin  string
	conf *template.Template // executed with proxyConf
	file string             // the configuration's file name
	// args are the command line, given the temp dir and the configuration's path.
	args func(dir, conf string) []string
	env  func(dir string) []string // added to a minimal environment; may be nil
	// stop is the signal for a graceful stop (SIGTERM when zero).
	stop syscall.Signal
	dpop bool // the configuration's DPoP variant (proxyConf.DPoP)
}

// proxyConf is what a configuration template is executed with.
type proxyConf struct {
	Dir      string // a temp dir of the proxy's own
	Listen   string // host:port the proxy listens on
	Upstream string // host:port of the test upstream
	Authgate string // host:port of authgate's ADMIN_ADDR
	Repo     string // the repository's root (deploy/ holds files a proxy loads)
	DPoP     bool   // pass what DPoP needs (nginx: the host with its port, DPoP-Nonce)
}

// proxyProcess starts the proxy s in front of upstream, asking authgate;
// it returns the proxy's base URL. The proxy is stopped when the test ends,
// and its output logged if the test failed.
func proxyProcess(t *testing.T, s proxySpec, authgate, upstream string) string {
	t.Helper()
	if s.stop == 0 {
		s.stop = syscall.SIGTERM
	}
	var lastErr error
	for range 3 { // a free port may be taken before the proxy binds it
		dir := t.TempDir()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listen := l.Addr().String()
		l.Close()
		var conf bytes.Buffer
		if err := s.conf.Execute(&conf, proxyConf{Dir: dir, Listen: listen, Upstream: upstream, Authgate: authgate, Repo: opatest.RepoRoot(t), DPoP: s.dpop}); err != nil {
			t.Fatal(err)
		}
		confPath := filepath.Join(dir, s.file)
		if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		out := stacktest.NewLogSink()
		cmd := exec.Command(s.bin, s.args(dir, confPath)...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		if s.env != nil {
			cmd.Env = append(cmd.Env, s.env(dir)...)
		}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cmd.Process.Signal(s.stop)
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					cmd.Process.Kill()
					<-exited
				}
			})
		}
		if lastErr = pollListening(s.name, listen, exited); lastErr == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("%s configuration:\n%s\n%s output:\n%s", s.name, conf.String(), s.name, out.String())
				}
			})
			return "http://" + listen
		}
		stop()
		lastErr = fmt.Errorf("%v\n%s", lastErr, out.String())
	}
	t.Fatalf("%s did not start: %v", s.name, lastErr)
	return ""
}

// pollListening waits until something accepts connections on addr, or the
// process exits, or 20 s pass.
func pollListening(name, addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("%s exited", name)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	return fmt.Errorf("nothing listening on %s", addr)
}

// forwardAuthStack is authgate (gateway.authz decision, /api/public public,
// the proxy on 127.0.0.1 trusted) and a test upstream, with a token of the
// demo client holding api_read.
type forwardAuthStack struct {
	gw     *stacktest.Gateway
	up     *upstream
	reader string
}

func startForwardAuthStack(t *testing.T) *forwardAuthStack {
	t.Helper()
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	up := startUpstream(t)
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
	env["TRUSTED_PROXIES"] = "127.0.0.1"
	env["PUBLIC_PATHS"] = "GET /api/public"
	gw := stacktest.StartGateway(t, env)
	return &forwardAuthStack{gw: gw, up: up, reader: i.Token(t, "api_read")}
}

func (s *forwardAuthStack) adminAddr() string    { return strings.TrimPrefix(s.gw.Admin, "http://") }
func (s *forwardAuthStack) upstreamAddr() string { return strings.TrimPrefix(s.up.srv.URL, "http://") }

// forgedIdentity are identity headers a client writes to pass for someone
// else, in spellings an upstream may read as X-Auth-*.
var forgedIdentity = []string{"X-Auth-Subject", "admin", "X-Auth-Scopes", "admin", "X-Auth-Client-Id", "admin",
	"X_Auth_Subject", "admin", "x-auth-client-id", "admin"}

// checkForwardAuth runs the forward-auth cases through the proxy at base:
// allow with authgate's identity replacing forged headers, a public path
// whose (empty) identity still drops them, 401 with its challenge, 403, and
// the policy's 404 as the proxy passes it (notFound). policyHeader says
// whether the proxy copies the policy's X-Authz-Scope too (and drops a
// client's copy).
func checkForwardAuth(t *testing.T, base string, s *forwardAuthStack, notFound int, policyHeader bool) {
	t.Helper()
	identity := []string{"X-Auth-Subject", "X-Auth-Client-Id", "X-Auth-Scopes"}
	forged := forgedIdentity
	want := map[string]string{"X-Auth-Subject": "demo", "X-Auth-Client-Id": "demo", "X-Auth-Scopes": "api_read"}
	if policyHeader {
		identity = append(identity, "X-Authz-Scope")
		forged = append(slices.Clone(forged), "X-Authz-Scope", "admin", "X_Authz_Scope", "admin")
		want["X-Authz-Scope"] = "api_read"
	}

	t.Run("allow, identity replaces forged headers", func(t *testing.T) {
		r := do(t, "GET", base+"/api/items?x=1", with(bearer(s.reader), forged...), nil)
		if r.Status != 200 || !strings.Contains(r.Body, `"upstream":"ok"`) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		got := s.up.seen()
		for name, want := range want {
			if vs := headerValues(got.Header, name); len(vs) != 1 || vs[0] != want {
				t.Errorf("upstream %s (any spelling): %q, want only %q", name, vs, want)
			}
		}
		if got.Path != "/api/items" || got.Query != "x=1" {
			t.Errorf("upstream got %s?%s", got.Path, got.Query)
		}
	})

	// /verify answers a public path 200 with all three identity headers
	// empty: the proxy must still drop the client's copies (an empty value
	// is where a proxy that copies only non-empty headers lets them through).
	t.Run("public path, empty identity replaces forged headers", func(t *testing.T) {
		r := do(t, "GET", base+"/api/public", with(nil, forged...), nil)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		got := s.up.seen()
		if got.Path != "/api/public" {
			t.Fatalf("upstream got %s", got.Path)
		}
		for _, name := range identity {
			for _, v := range headerValues(got.Header, name) {
				if v != "" {
					t.Errorf("upstream %s (any spelling): %q, want none or empty", name, headerValues(got.Header, name))
					break
				}
			}
		}
	})

	cases := []struct {
		name, method, path string
		header             map[string]string
		status             int
		challenge          string
	}{
		{name: "no token", method: "GET", path: "/api/items", status: 401, challenge: `Bearer realm="authgate"`},
		{name: "unknown token", method: "GET", path: "/api/items", header: bearer("bm9wZQ"), status: 401,
			challenge: `Bearer realm="authgate", error="invalid_token", error_description="token is not active"`},
		{name: "deny", method: "POST", path: "/api/items", header: bearer(s.reader), status: 403,
			challenge: `Bearer realm="authgate", error="insufficient_scope", scope="api_write"`},
		{name: "deny, whatever the client claims the request is", method: "POST", path: "/api/items",
			header: with(bearer(s.reader), "X-Forwarded-Uri", "/api/items", "X-Forwarded-Method", "GET",
				"X-Original-URI", "/api/items", "X-Original-Method", "GET"), status: 403,
			challenge: `Bearer realm="authgate", error="insufficient_scope", scope="api_write"`},
		{name: "deny outside the API", method: "GET", path: "/admin", header: bearer(s.reader), status: 403},
		{name: "policy 404", method: "GET", path: "/api/internal/keys", header: bearer(s.reader), status: notFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.up.hits.Load()
			r := do(t, tc.method, base+tc.path, tc.header, nil)
			if r.Status != tc.status {
				t.Errorf("%d %s, want %d", r.Status, r.Body, tc.status)
			}
			if got := r.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if s.up.hits.Load() != before {
				t.Errorf("a refused request reached the upstream")
			}
		})
	}
}

// headerValues are the values of every header line whose name is name once
// "_" is read as "-", case-insensitively.
func headerValues(h map[string][]string, name string) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), name) {
			out = append(out, vs...)
		}
	}
	return out
}
