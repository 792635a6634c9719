package e2e

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/authgate/authgate/internal/stacktest"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestProxy runs authgate as a reverse proxy (UPSTREAM_URL) in front of a
// test service, with the README's example policy (opa-policies/gateway).
func TestProxy(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	up := startUpstream(t)
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
	env["UPSTREAM_URL"] = up.srv.URL
	env["UPSTREAM_TIMEOUT"] = "500ms"
	env["PUBLIC_PATHS"] = "GET /health, OPTIONS /*"
	gw := stacktest.StartGateway(t, env)
	reader := i.Token(t, "api_read")
	writer := i.Token(t, "api_read api_write")

	t.Run("allow passes with identity and policy headers", func(t *testing.T) {
		r := do(t, "GET", gw.Traffic+"/api/items?b=2&a=1", bearer(reader), nil)
		if r.Status != 200 || !strings.Contains(r.Body, `"upstream":"ok"`) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		s := up.seen()
		for name, want := range map[string]string{
			"X-Auth-Subject": "demo", "X-Auth-Client-Id": "demo", "X-Auth-Scopes": "api_read",
			"X-Authz-Scope": "api_read", "Authorization": "Bearer " + reader,
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": strings.TrimPrefix(gw.Traffic, "http://"),
		} {
			if got := s.Header.Get(name); got != want {
				t.Errorf("upstream %s: %q, want %q", name, got, want)
			}
		}
		if s.Path != "/api/items" || s.Query != "b=2&a=1" || s.Method != "GET" {
			t.Errorf("upstream got %s %s ? %s", s.Method, s.Path, s.Query)
		}
		if s.Host != strings.TrimPrefix(up.srv.URL, "http://") {
			t.Errorf("upstream Host %q", s.Host)
		}
	})

	t.Run("forged identity headers are stripped", func(t *testing.T) {
		forged := with(bearer(reader), "X-Auth-Subject", "admin", "X_Auth_Subject", "admin", "x-auth-scopes", "admin",
			"X-Auth-Client-Id", "root", "X-Authz-Scope", "everything", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.example",
			"Forwarded", "for=6.6.6.6")
		if r := do(t, "GET", gw.Traffic+"/api/items", forged, nil); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		s := up.seen()
		for name, want := range map[string]string{"X-Auth-Subject": "demo", "X-Auth-Scopes": "api_read", "X-Auth-Client-Id": "demo", "X-Authz-Scope": "api_read"} {
			if headerCount(s.Header, name) != 1 || s.Header.Get(name) != want {
				t.Errorf("upstream %s: %q, want only %q (headers %v)", name, s.Header.Values(name), want, s.Header)
			}
		}
		// Nor can it have its identity dropped as a hop-by-hop header.
		if r := raw(t, gw.Traffic, "GET", "/api/items", with(bearer(reader), "Connection", "keep-alive, X-Auth-Subject, x-authz-scope")); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if s := up.seen(); s.Header.Get("X-Auth-Subject") != "demo" || s.Header.Get("X-Authz-Scope") != "api_read" {
			t.Errorf("identity listed in Connection was dropped: %v", s.Header)
		}
		if got := s.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For from an untrusted client believed: %q", got)
		}
		if got := s.Header.Get("X-Forwarded-Host"); got == "evil.example" {
			t.Errorf("X-Forwarded-Host from an untrusted client believed")
		}
		if s.Header.Get("Forwarded") != "" {
			t.Errorf("Forwarded from an untrusted client passed")
		}
		// On a public path too, nobody vouches for an identity.
		if r := do(t, "GET", gw.Traffic+"/health", map[string]string{"X-Auth-Subject": "admin"}, nil); r.Status != 200 {
			t.Fatalf("public: %d %s", r.Status, r.Body)
		}
		if s := up.seen(); headerCount(s.Header, "X-Auth-Subject") != 0 {
			t.Errorf("forged identity reached the upstream on a public path: %v", s.Header)
		}
	})

	t.Run("public paths need no token", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{{"GET", "/health"}, {"HEAD", "/health"}, {"OPTIONS", "/api/items"}} {
			before := up.hits.Load()
			if r := do(t, c.method, gw.Traffic+c.path, nil, nil); r.Status != 200 {
				t.Errorf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
			}
			if up.hits.Load() != before+1 {
				t.Errorf("%s %s did not reach the upstream", c.method, c.path)
			}
		}
	})

	t.Run("denied requests never reach the upstream", func(t *testing.T) {
		cases := []struct {
			name, method, path string
			header             map[string]string
			status             int
			code, challenge    string
		}{
			{name: "no token", method: "GET", path: "/api/items", status: 401, code: "unauthorized", challenge: `Bearer realm="authgate"`},
			{name: "no token on a non-public method", method: "POST", path: "/health", status: 401, code: "unauthorized", challenge: `Bearer realm="authgate"`},
			{name: "unknown token", method: "GET", path: "/api/items", header: bearer("bm90LWEtdG9rZW4"), status: 401, code: "invalid_token",
				challenge: `Bearer realm="authgate", error="invalid_token", error_description="token is not active"`},
			{name: "missing scope: the policy's 403", method: "POST", path: "/api/items", header: bearer(reader), status: 403, code: "insufficient_scope",
				challenge: `Bearer realm="authgate", error="insufficient_scope", scope="api_write"`},
			{name: "hidden resource: the policy's 404", method: "GET", path: "/api/internal/keys", header: bearer(writer), status: 404, code: "not_found"},
			{name: "outside the API: plain deny", method: "GET", path: "/admin", header: bearer(writer), status: 403, code: "access_denied"},
			{name: "WebSocket without a token", method: "GET", path: "/api/ws", header: map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"}, status: 401, code: "unauthorized", challenge: `Bearer realm="authgate"`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := up.hits.Load()
				r := do(t, tc.method, gw.Traffic+tc.path, tc.header, nil)
				if r.Status != tc.status || r.ErrorCode(t) != tc.code {
					t.Errorf("%d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
				}
				if got := r.Header.Get("WWW-Authenticate"); got != tc.challenge {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
				}
				if up.hits.Load() != before {
					t.Errorf("a denied request reached the upstream")
				}
			})
		}
	})

	t.Run("path confusion", func(t *testing.T) {
		cases := []struct {
			target string
			token  string
			status int
		}{
			{"/health/../api/items", "", 400},
			{"/health/%2e%2e/api/items", "", 400},
			{"/health/%2E%2e/api/items", "", 400},
			{"/health/..;/api/items", "", 400},
			{"/health/.%2e/api/internal/keys", reader, 400},
			{"/api/items/../internal/keys", reader, 400},
			{"/api%2finternal/keys", reader, 400},
			{"/api/%252e%252e/internal", reader, 400},
			{"/api\\..\\internal", reader, 400},
			{"/api/%5c..%5cinternal", reader, 400},
			{"/api/items%00", reader, 400},
			{"/api/internal;x/keys", reader, 400},
			{"/api/internal%3bx/keys", reader, 400},
			{"/health;/../api/items", "", 400},
			{"/api%2Finternal/keys{", reader, 400},
			{"/health%2fx`", "", 400},
			{"/api%5Cinternal|", reader, 400},
			{"/api%25internal^", reader, 400},
			// Normalised, then judged as what they are: /api/internal/keys.
			{"//api//internal//keys", reader, 404},
			{"/api/%69nternal/keys", reader, 404},
			{"/%61pi/internal/keys", reader, 404},
			// Normalised /health is public; a GET of /health/x is not.
			{"//health", "", 200},
			{"/%68ealth", "", 200},
			{"/health/x", "", 401},
		}
		for _, tc := range cases {
			before := up.hits.Load()
			h := map[string]string{}
			if tc.token != "" {
				h = bearer(tc.token)
			}
			r := raw(t, gw.Traffic, "GET", tc.target, h)
			if r.Status != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.target, r.Status, r.Body, tc.status)
				continue
			}
			reached := up.hits.Load() != before
			if reached != (tc.status == 200) {
				t.Errorf("%s: reached the upstream: %v", tc.target, reached)
			}
			if reached {
				if s := up.seen(); s.Path != "/health" || s.RawPath != "" {
					t.Errorf("%s: upstream path %q (raw %q), want /health", tc.target, s.Path, s.RawPath)
				}
			}
		}
	})

	t.Run("request body streamed", func(t *testing.T) {
		payload := make([]byte, 4<<20)
		rand.Read(payload)
		sum := sha256.Sum256(append([]byte("hello"), payload...))
		pr, pw := io.Pipe()
		type result struct {
			r   stacktest.Response
			err error
		}
		done := make(chan result, 1)
		go func() {
			req, _ := http.NewRequest("POST", gw.Traffic+"/api/stream-up", pr)
			req.Header.Set("Authorization", "Bearer "+writer)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			done <- result{r: stacktest.Response{Status: resp.StatusCode, Body: string(b)}, err: err}
		}()
		pw.Write([]byte("hello"))
		select {
		case <-up.gotFirst:
		case <-time.After(10 * time.Second):
			t.Fatal("the upstream did not get the first bytes before the body ended: not streamed")
		}
		pw.Write(payload)
		pw.Close()
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		if want := fmt.Sprintf("%d %s", len(payload)+5, hex.EncodeToString(sum[:])); res.r.Status != 200 || res.r.Body != want {
			t.Errorf("%d %q, want %q", res.r.Status, res.r.Body, want)
		}
	})

	t.Run("stacktest.Response body streamed", func(t *testing.T) {
		req, _ := http.NewRequest("GET", gw.Traffic+"/api/stream-down", nil)
		req.Header.Set("Authorization", "Bearer "+reader)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		first := make(chan string, 1)
		go func() { l, _ := br.ReadString('\n'); first <- l }()
		select {
		case l := <-first:
			if l != "first\n" {
				t.Fatalf("first line %q", l)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the first line did not arrive before the upstream finished: not streamed")
		}
		close(up.release)
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != strings.Repeat("x", 1<<20)+"\nlast\n" {
			t.Errorf("rest of the body: %d bytes, err %v", len(rest), err)
		}
	})

	t.Run("WebSocket upgrade passes", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(gw.Traffic, "http://"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "GET /api/ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", reader)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status %d", resp.StatusCode)
		}
		for _, msg := range []string{"ping\n", "pong\n"} {
			io.WriteString(conn, msg)
			if got, err := br.ReadString('\n'); err != nil || got != "echo "+msg {
				t.Fatalf("echo: %q %v", got, err)
			}
		}
	})

	t.Run("upstream timeout is 504", func(t *testing.T) {
		start := time.Now()
		r := do(t, "GET", gw.Traffic+"/api/slow", bearer(reader), nil)
		if r.Status != 504 || r.ErrorCode(t) != "gateway_timeout" {
			t.Errorf("%d %s", r.Status, r.Body)
		}
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Errorf("took %v with UPSTREAM_TIMEOUT=500ms", d)
		}
	})

	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	gw.AssertNoLeaks(t, reader, writer, stacktest.GatewaySecret, stacktest.DemoSecret)
}

func TestProxyUpstreamDown(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	up := startUpstream(t)
	up.srv.Close()
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
	env["UPSTREAM_URL"] = up.srv.URL
	gw := stacktest.StartGateway(t, env)
	r := do(t, "GET", gw.Traffic+"/api/items", bearer(i.Token(t, "api_read")), nil)
	if r.Status != 502 || r.ErrorCode(t) != "bad_gateway" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("%d %q %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	// A deny is still a deny, whatever the upstream's state.
	if r := do(t, "GET", gw.Traffic+"/api/items", nil, nil); r.Status != 401 {
		t.Errorf("no token with the upstream down: %d", r.Status)
	}
}

// TestProxyOnePath proves, with a policy that echoes its input to the
// upstream, that OPA and the upstream see the same path, and that
// TRUSTED_PROXIES governs host, scheme and remote_addr.
func TestProxyOnePath(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	up := startUpstream(t)
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + echoDecision
	env["UPSTREAM_URL"] = up.srv.URL
	env["TRUSTED_PROXIES"] = "10.0.0.0/8, 127.0.0.1"
	env["UPSTREAM_STRIP_AUTHORIZATION"] = "true"
	gw := stacktest.StartGateway(t, env)
	tok := i.Token(t, "api_read")

	for _, target := range []string{"/a/b", "//a//b/", "/a/%62", "/a%20b/c", "/%E2%82%AC/x", "/a:v=1/b", "/.well-known/x", "/a?q=%2F"} {
		r := raw(t, gw.Traffic, "GET", target, bearer(tok))
		if r.Status != 200 {
			t.Errorf("%s: %d %s", target, r.Status, r.Body)
			continue
		}
		s := up.seen()
		if s.Path != s.Header.Get("X-Seen-Path") {
			t.Errorf("%s: upstream path %q, OPA's %q", target, s.Path, s.Header.Get("X-Seen-Path"))
		}
	}

	t.Run("trusted proxy headers", func(t *testing.T) {
		h := with(bearer(tok), "X-Forwarded-For", "6.6.6.6, 198.51.100.7", "X-Forwarded-Host", "public.example", "X-Forwarded-Proto", "https")
		if r := do(t, "GET", gw.Traffic+"/x", h, nil); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		s := up.seen()
		for name, want := range map[string]string{
			"X-Seen-Remote": "198.51.100.7", "X-Seen-Host": "public.example", "X-Seen-Scheme": "https", "X-Seen-Mode": "proxy",
			"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 127.0.0.1", "X-Forwarded-Host": "public.example", "X-Forwarded-Proto": "https",
			"Authorization": "",
		} {
			if got := s.Header.Get(name); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
	})

	t.Run("a deny never carries a success or redirect status", func(t *testing.T) {
		for _, p := range []string{"/odd/ok-status", "/odd/redirect", "/odd/string-allowed"} {
			before := up.hits.Load()
			r := do(t, "GET", gw.Traffic+p, bearer(tok), nil)
			if r.Status != 403 || up.hits.Load() != before {
				t.Errorf("%s: %d %s (reached upstream: %v)", p, r.Status, r.Body, up.hits.Load() != before)
			}
		}
		logs := gw.Logs.String()
		for _, want := range []string{"a deny must have a 4xx or 5xx http_status", "no boolean allowed"} {
			if !strings.Contains(logs, want) {
				t.Errorf("no %q in the logs", want)
			}
		}
	})
}

// TestProxyForwardingHeaders: a client (not a trusted proxy) that sends
// forwarding headers in any spelling, or names headers hop-by-hop in
// Connection, gets none of them to the upstream or to the policy, which
// echoes the header names it saw.
func TestProxyForwardingHeaders(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	up := startUpstream(t)
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + echoDecision
	env["UPSTREAM_URL"] = up.srv.URL
	gw := stacktest.StartGateway(t, env)
	tok := i.Token(t, "api_read")
	forged := []string{
		"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Uri", "X-Forwarded-Method",
		"X-Forwarded-Ssl", "X-Real-Ip", "X-Original-URL", "X-Rewrite-URL", "True-Client-IP", "X-Client-IP",
		"CF-Connecting-IP", "Forwarded", "X_Forwarded_Host", "X_Forwarded_For", "X_Real_Ip", "x_original_url",
		"X-Hop",
	}
	h := with(bearer(tok), "Connection", "keep-alive, X-Hop", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.example")
	for _, k := range forged {
		h[k] = "6.6.6.6"
	}
	if r := raw(t, gw.Traffic, "GET", "/api/items", h); r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	s := up.seen()
	policy := "," + s.Header.Get("X-Seen-Header-Names") + ","
	if policy == ",," {
		t.Fatalf("the policy echoed no header names: %v", s.Header)
	}
	for _, k := range forged {
		if headerCount(s.Header, k) != 0 {
			t.Errorf("upstream got %s: %q", k, s.Header.Values(k))
		}
		if n := strings.ToLower(k); strings.Contains(policy, ","+n+",") {
			t.Errorf("the policy saw %s (%s)", n, policy)
		}
	}
	for _, k := range []string{"x-forwarded-for", "x-forwarded-host"} {
		if strings.Contains(policy, ","+k+",") {
			t.Errorf("the policy saw the client's %s", k)
		}
	}
	for k, want := range map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": strings.TrimPrefix(gw.Traffic, "http://")} {
		if got := s.Header.Get(k); got != want {
			t.Errorf("upstream %s: %q, want authgate's %q", k, got, want)
		}
	}
}
