package e2e

import (
	"strings"
	"syscall"
	"testing"
	"text/template"
)

// nginxConf is the README's nginx configuration ("Forward-auth with nginx"),
// wrapped in what a throw-away nginx needs: no daemon, one process, every
// path in a temp dir, one loopback port.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`daemon off;
master_process off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log stderr info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path {{.Dir}}/client_body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    server {
        listen {{.Listen}};

        location / {
            auth_request /_authgate;{{if .DPoP}}
            # DPoP nonces (DPOP_NONCE=true): authgate's DPoP-Nonce to the
            # client, on a 401 and on a 200 alike.
            auth_request_set $auth_nonce $upstream_http_dpop_nonce;
            add_header DPoP-Nonce $auth_nonce always;{{end}}
            # Copy authgate's identity headers to the upstream. Setting them
            # here also drops any copy the client sent.
            auth_request_set $auth_subject   $upstream_http_x_auth_subject;
            auth_request_set $auth_client_id $upstream_http_x_auth_client_id;
            auth_request_set $auth_scopes    $upstream_http_x_auth_scopes;
            auth_request_set $authz_scope    $upstream_http_x_authz_scope;
            proxy_set_header X-Auth-Subject   $auth_subject;
            proxy_set_header X-Auth-Client-Id $auth_client_id;
            proxy_set_header X-Auth-Scopes    $auth_scopes;
            proxy_set_header X-Authz-Scope    $authz_scope;
            proxy_pass http://{{.Upstream}};
        }

        location = /_authgate {
            internal;
            proxy_pass http://{{.Authgate}}/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI    $request_uri;
            # nginx passes the client's other headers on: drop the ones that
            # could describe another request (authgate refuses a conflict).
            proxy_set_header X-Forwarded-Method "";
            proxy_set_header X-Forwarded-Uri    "";
            proxy_set_header X-Forwarded-Host  {{if .DPoP}}$http_host{{else}}$host{{end}};
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For   $remote_addr;
        }
    }
}
`))

// nginxBinary finds nginx. Without it the test skips on a developer's
// machine, but fails in CI (CI=true), where make test installs it.
func nginxBinary(t *testing.T) string {
	t.Helper()
	return debianBinary(t, "nginx", "nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
}

// startNginx runs nginx with nginxConf in front of upstream, asking authgate
// at authgate (host:port); it returns nginx's base URL.
//
// With dpop, nginx describes the host with its port ($http_host: a DPoP
// proof signs the URL the client used) and passes authgate's DPoP-Nonce on.
func startNginx(t *testing.T, authgate, upstream string, dpop ...bool) string {
	t.Helper()
	return proxyProcess(t, proxySpec{
		name: "nginx", bin: nginxBinary(t), conf: nginxConf, file: "nginx.conf",
		args: func(dir, conf string) []string { return []string{"-p", dir, "-c", conf, "-e", "stderr"} },
		stop: syscall.SIGQUIT, // graceful shutdown
		dpop: len(dpop) > 0 && dpop[0],
	}, authgate, upstream)
}

// TestNginxForwardAuth puts real nginx, with auth_request pointing at
// authgate's /verify, in front of a test upstream.
func TestNginxForwardAuth(t *testing.T) {
	nginxBinary(t) // skip (or fail in CI) before starting anything
	fa := startForwardAuthStack(t)
	ngx := startNginx(t, fa.adminAddr(), fa.upstreamAddr())
	up, reader := fa.up, fa.reader

	t.Run("allow, identity copied to the upstream", func(t *testing.T) {
		forged := with(bearer(reader), "X-Auth-Subject", "admin", "X-Auth-Scopes", "admin", "X_Auth_Subject", "admin")
		r := do(t, "GET", ngx+"/api/items?x=1", forged, nil)
		if r.Status != 200 || !strings.Contains(r.Body, `"upstream":"ok"`) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		s := up.seen()
		for name, want := range map[string]string{"X-Auth-Subject": "demo", "X-Auth-Client-Id": "demo", "X-Auth-Scopes": "api_read", "X-Authz-Scope": "api_read"} {
			if headerCount(s.Header, name) != 1 || s.Header.Get(name) != want {
				t.Errorf("upstream %s: %q, want only %q", name, s.Header.Values(name), want)
			}
		}
		if s.Path != "/api/items" || s.Query != "x=1" {
			t.Errorf("upstream got %s?%s", s.Path, s.Query)
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
		{name: "deny", method: "POST", path: "/api/items", header: bearer(reader), status: 403},
		{name: "deny, whatever the client claims the request is", method: "POST", path: "/api/items",
			header: with(bearer(reader), "X-Forwarded-Uri", "/api/items", "X-Forwarded-Method", "GET", "X-Original-URI", "/api/items", "X-Original-Method", "GET"), status: 403},
		{name: "deny outside the API", method: "GET", path: "/admin", header: bearer(reader), status: 403},
		// nginx passes only 401 and 403 from auth_request: the policy's 404
		// becomes 500 (README, "Forward-auth").
		{name: "policy 404 becomes nginx 500", method: "GET", path: "/api/internal/keys", header: bearer(reader), status: 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := up.hits.Load()
			r := do(t, tc.method, ngx+tc.path, tc.header, nil)
			if r.Status != tc.status {
				t.Errorf("%d %s, want %d", r.Status, r.Body, tc.status)
			}
			if got := r.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if up.hits.Load() != before {
				t.Errorf("a denied request reached the upstream")
			}
		})
	}
}
