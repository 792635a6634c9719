package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/app"
	"github.com/authgate/authgate/internal/devidp"
	"github.com/authgate/authgate/internal/opatest"
)

// Clients of the development authorization server used by the tests.
const (
	gatewayClient = "authgate"
	gatewaySecret = "gateway-secret-e2e-7f3a"
	demoClient    = "demo"
	demoSecret    = "demo-secret-e2e-91bc"
	decisionPath  = "/v1/data/demoapi/authz/allow"
)

// idp is the development authorization server on a loopback port.
type idp struct {
	*devidp.Server
	srv    *httptest.Server
	issuer string
}

func startIDP(t *testing.T, latency time.Duration) *idp {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/oauth2/default"
	s, err := devidp.New(devidp.Config{
		Issuer: issuer,
		Clients: []devidp.Client{
			{ID: gatewayClient, Secret: gatewaySecret},
			{ID: demoClient, Secret: demoSecret, Scopes: []string{"read_sayhello", "read_saysecret"}},
		},
		Latency: latency,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = s.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return &idp{Server: s, srv: srv, issuer: issuer}
}

// token fetches an access token from the token endpoint, as a user would.
func (i *idp) token(t *testing.T, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	req, _ := http.NewRequest(http.MethodPost, i.issuer+"/v1/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(demoClient, demoSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("token endpoint: status %d, err %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// logSink collects authgate's log lines and lets a test wait for one.
type logSink struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor returns the first log line whose "msg" is msg.
func (l *logSink) waitFor(t *testing.T, msg string, done <-chan error) map[string]any {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		text, changed := l.buf.String(), l.changed
		l.mu.Unlock()
		for _, line := range strings.Split(text, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
				return m
			}
		}
		select {
		case <-changed:
		case err := <-done:
			t.Fatalf("authgate exited before %q: %v\n%s", msg, err, text)
		case <-deadline:
			t.Fatalf("no %q log line:\n%s", msg, text)
		}
	}
}

// gateway is authgate run in-process through app.Run.
type gateway struct {
	traffic, admin string // base URLs
	logs           *logSink
	stop           func() error
}

// startGateway runs authgate with env on free loopback ports.
func startGateway(t *testing.T, env map[string]string) *gateway {
	t.Helper()
	full := map[string]string{
		"ENV_FILE":    filepath.Join(t.TempDir(), "none.env"),
		"LISTEN_ADDR": "127.0.0.1:0",
		"ADMIN_ADDR":  "127.0.0.1:0",
	}
	for k, v := range env {
		full[k] = v
	}
	// An empty env file, so that a developer's .env never leaks into a test.
	if err := os.WriteFile(full["ENV_FILE"], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogSink()
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, nil, func(k string) string { return full[k] }, logs) }()
	line := logs.waitFor(t, "authgate listening", done)
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("authgate Run: %v", err)
		}
	})
	return &gateway{traffic: "http://" + line["traffic"].(string), admin: "http://" + line["admin"].(string), logs: logs, stop: stop}
}

// stackEnv is the configuration for authgate in front of i and o.
func stackEnv(i *idp, o *opatest.Server) map[string]string {
	return map[string]string{
		"OKTA_ISSUER":        i.issuer,
		"OKTA_CLIENT_ID":     gatewayClient,
		"OKTA_CLIENT_SECRET": gatewaySecret,
		"OPA_AUTHZ_URL":      o.URL + decisionPath,
	}
}

// assertNoLeaks fails if any of secrets appears in authgate's logs.
func (g *gateway) assertNoLeaks(t *testing.T, secrets ...string) {
	t.Helper()
	logs := g.logs.String()
	if logs == "" {
		t.Fatal("no logs collected")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("a token or secret appears in the logs:\n%s", logs)
		}
	}
}

// response is a finished request.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var b struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &b); err != nil {
		t.Fatalf("error body is not JSON: %q", r.body)
	}
	return b.Error
}

func get(t *testing.T, url, token string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// eventually polls f until it reports true, for at most d.
func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for readiness
	}
}
