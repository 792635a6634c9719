// Package stacktest runs the pieces of an authgate stack in-process for
// tests: the development authorization server on a loopback port, the real
// OPA binary (through opatest) and authgate itself through app.Run. It is
// imported only by tests (test/e2e, test/fault, test/soak).
package stacktest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/app"
	"github.com/authgate/authgate/internal/devidp"
	"github.com/authgate/authgate/internal/gateway"
	"github.com/authgate/authgate/internal/opatest"
)

// Clients of the development authorization server used by the tests.
const (
	GatewayClient = "authgate"
	GatewaySecret = "gateway-secret-e2e-7f3a"
	DemoClient    = "demo"
	DemoSecret    = "demo-secret-e2e-91bc"
	DecisionPath  = "/v1/data/demoapi/authz/allow"
)

// StartOPA runs the real OPA binary with the repository's opa-policies/.
func StartOPA(tb testing.TB) *opatest.Server {
	tb.Helper()
	return opatest.Start(tb, opatest.RepoRoot(tb)+"/opa-policies")
}

// IDP is the development authorization server on a loopback port.
type IDP struct {
	*devidp.Server
	Srv    *httptest.Server
	Issuer string
	// GatewayKeyFile is a PEM private key registered for GatewayClient
	// (private_key_jwt), under the kid GatewayKeyID.
	GatewayKeyFile string
}

// GatewayKeyID is the kid of GatewayClient's registered key.
const GatewayKeyID = "authgate-e2e-key"

// WriteECKey writes a new P-256 private key as PEM into a file of tb's and
// returns the key and the file's path.
func WriteECKey(tb testing.TB) (*ecdsa.PrivateKey, string) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return k, path
}

// StartIDP starts the development authorization server; latency is added to
// every introspection.
func StartIDP(tb testing.TB, latency time.Duration) *IDP {
	tb.Helper()
	return StartIDPAt(tb, latency, "/oauth2/default")
}

// StartIDPAt is StartIDP with the issuer's path (such as "/oauth2/orders"):
// several of them are several authorization servers, each with its own
// tokens, keys and counters. edit, when given, changes the server's
// configuration (a RateLimit, say).
func StartIDPAt(tb testing.TB, latency time.Duration, path string, edit ...func(*devidp.Config)) *IDP {
	tb.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + path
	key, keyFile := WriteECKey(tb)
	cfg := devidp.Config{
		Issuer: issuer,
		Clients: []devidp.Client{
			{ID: GatewayClient, Secret: GatewaySecret, Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: GatewayKeyID}}},
			{ID: DemoClient, Secret: DemoSecret, Scopes: []string{"read_sayhello", "read_saysecret", "api_read", "api_write"}},
		},
		Latency: latency,
	}
	for _, e := range edit {
		e(&cfg)
	}
	s, err := devidp.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv.Config.Handler = s.Handler()
	srv.Start()
	tb.Cleanup(srv.Close)
	return &IDP{Server: s, Srv: srv, Issuer: issuer, GatewayKeyFile: keyFile}
}

// Restart closes the server's listener and connections, calls down (the
// outage; may be nil), then serves the same server (same tokens) again on
// the same address.
func (i *IDP) Restart(tb testing.TB, down func()) {
	tb.Helper()
	addr := i.Srv.Listener.Addr().String()
	i.Srv.Close()
	if down != nil {
		down()
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after Close
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("stacktest: relisten on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(i.Server.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	tb.Cleanup(srv.Close)
	i.Srv = srv
}

// Token fetches an access token from the token endpoint, as a user would.
func (i *IDP) Token(tb testing.TB, scope string) string {
	tb.Helper()
	return i.TokenFor(tb, scope, "")
}

// TokenFor is Token for the given resource (RFC 8707 resource parameter,
// the token's aud); "" asks for none.
func (i *IDP) TokenFor(tb testing.TB, scope, resource string) string {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if resource != "" {
		form.Set("resource", resource)
	}
	req, _ := http.NewRequest(http.MethodPost, i.Issuer+"/v1/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(DemoClient, DemoSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		tb.Fatalf("token endpoint: status %d, err %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// LogSink collects authgate's log lines (or any process's output, written
// while the test reads it) and lets a test wait for one.
type LogSink struct {
	mu         sync.Mutex
	buf        bytes.Buffer
	changed    chan struct{}
	dropAccess bool
}

// accessLine marks an access-log line (one Write per line).
var accessLine = []byte(`"msg":"` + gateway.AccessLogMsg + `"`)

// DropAccessLog stops keeping access-log lines (they are still written and
// formatted): a long run would otherwise hold every one of them in memory,
// and a test that measures the heap would measure them.
func (l *LogSink) DropAccessLog() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropAccess = true
}

// NewLogSink returns an empty sink.
func NewLogSink() *LogSink { return &LogSink{changed: make(chan struct{})} }

// Write records p and wakes WaitFor.
func (l *LogSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropAccess && bytes.Contains(p, accessLine) {
		return len(p), nil
	}
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// String is everything written so far.
func (l *LogSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Lines returns the log lines whose "msg" is msg, decoded.
func (l *LogSink) Lines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// WaitFor returns the first log line whose "msg" is msg. done, when it
// delivers, means authgate exited first.
func (l *LogSink) WaitFor(tb testing.TB, msg string, done <-chan error) map[string]any {
	tb.Helper()
	deadline := time.After(30 * time.Second)
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		if lines := l.Lines(msg); len(lines) > 0 {
			return lines[0]
		}
		select {
		case <-changed:
		case err := <-done:
			tb.Fatalf("authgate exited before %q: %v\n%s", msg, err, l.String())
		case <-deadline:
			tb.Fatalf("no %q log line:\n%s", msg, l.String())
		}
	}
}

// Gateway is authgate run in-process through app.Run.
type Gateway struct {
	Traffic, Admin, Metrics string // base URLs, http://127.0.0.1:PORT
	Logs                    *LogSink
	// Stop cancels Run's context and returns what Run returned. It is
	// idempotent and also runs when the test ends.
	Stop func() error
}

// TrafficAddr is the traffic listener's host:port.
func (g *Gateway) TrafficAddr() string { return strings.TrimPrefix(g.Traffic, "http://") }

// StartGateway runs authgate with env on free loopback ports; no env file and
// nothing from the process environment is read.
func StartGateway(tb testing.TB, env map[string]string) *Gateway {
	tb.Helper()
	full := map[string]string{
		"ENV_FILE":     filepath.Join(tb.TempDir(), "none.env"),
		"LISTEN_ADDR":  "127.0.0.1:0",
		"ADMIN_ADDR":   "127.0.0.1:0",
		"METRICS_ADDR": "127.0.0.1:0",
	}
	for k, v := range env {
		full[k] = v
	}
	// An empty env file, so that a developer's .env never leaks into a test.
	if err := os.WriteFile(full["ENV_FILE"], nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := NewLogSink()
	done := make(chan error, 1)
	lookup := func(k string) (string, bool) { v, ok := full[k]; return v, ok }
	listening := make(chan app.Addrs, 1)
	go func() {
		done <- app.Run(ctx, nil, lookup, logs, app.OnListening(func(a app.Addrs) { listening <- a }))
	}()
	var addrs app.Addrs
	select {
	case addrs = <-listening:
	case err := <-done:
		cancel()
		tb.Fatalf("authgate did not start: %v\nlogs:\n%s", err, logs.String())
	}
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("authgate Run: %v", err)
		}
	})
	return &Gateway{Traffic: "http://" + addrs.Traffic, Admin: "http://" + addrs.Admin,
		Metrics: "http://" + addrs.Metrics, Logs: logs, Stop: stop}
}

// StackEnv is the configuration for authgate in front of i and o.
func StackEnv(i *IDP, o *opatest.Server) map[string]string {
	return map[string]string{
		"OKTA_ISSUER":        i.Issuer,
		"OKTA_CLIENT_ID":     GatewayClient,
		"OKTA_CLIENT_SECRET": GatewaySecret,
		"OPA_AUTHZ_URL":      o.URL + DecisionPath,
	}
}

// AssertNoLeaks fails if any of secrets appears in authgate's logs.
func (g *Gateway) AssertNoLeaks(tb testing.TB, secrets ...string) {
	tb.Helper()
	logs := g.Logs.String()
	if logs == "" {
		tb.Fatal("no logs collected")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			tb.Errorf("a token or secret appears in the logs:\n%s", logs)
		}
	}
}

// Response is a finished request.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// ErrorCode is the "error" member of an error answer's JSON body.
func (r Response) ErrorCode(tb testing.TB) string {
	tb.Helper()
	var b struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.Body), &b); err != nil {
		tb.Fatalf("error body is not JSON: %q", r.Body)
	}
	return b.Error
}

// Get sends GET url with the token as a bearer credential (none when empty).
func Get(tb testing.TB, url, token string) Response {
	tb.Helper()
	r, err := TryGet(http.DefaultClient, url, token)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TryGet is Get that returns transport errors instead of failing the test,
// for use off the test's goroutine.
func TryGet(c *http.Client, url, token string) (Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return Response{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}, nil
}

// Eventually polls f until it reports true, for at most d.
func Eventually(tb testing.TB, d time.Duration, what string, f func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for readiness
	}
}
