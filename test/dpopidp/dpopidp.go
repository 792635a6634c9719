// Package dpopidp runs the real-parts fixture of the sender-constrained
// token tests: panva's oidc-provider (server.mjs) as the authorization
// server that issues DPoP-bound and certificate-bound JWT access tokens,
// and oauth4webapi (client.mjs) as the RFC 9449 client whose own proofs and
// requests the tests check. Both are node programs pinned in package.json
// and package-lock.json, installed with npm ci on first use.
//
// Start skips the calling test when node or npm is missing, or fails it
// when CI=true.
package dpopidp

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Resource is the resource indicator the fixture's tokens are issued for:
// their aud.
const Resource = "https://api.authgate.test/"

// OpaqueResource is the resource indicator whose tokens are opaque, bound
// the same way, and answered by the introspection endpoint (oidc-provider
// introspects no JWT access token): client.mjs --resource OpaqueResource.
const OpaqueResource = "https://opaque.authgate.test/"

// Clients registered at the fixture's authorization server.
const (
	DPoPClientID, DPoPClientSecret = "dpop-client", "dpop-secret" // dpop_bound_access_tokens
	MTLSClientID, MTLSClientSecret = "mtls-client", "mtls-secret" // tls_client_certificate_bound_access_tokens
)

// IdP is a running fixture authorization server.
type IdP struct {
	Issuer        string `json:"issuer"`
	TokenEndpoint string `json:"token_endpoint"`
	JWKSURI       string `json:"jwks_uri"`
	// StartedIn is how long the server took to listen (node's start
	// included, npm ci not).
	StartedIn time.Duration `json:"-"`

	node, dir string
}

// dir is this package's directory, where the node programs live.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// tools finds node and npm: skip, or fail when CI=true, without them.
func tools(tb testing.TB) (node, npm string) {
	tb.Helper()
	node, err1 := exec.LookPath("node")
	npm, err2 := exec.LookPath("npm")
	if err1 == nil && err2 == nil {
		return node, npm
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("node and npm are required for the DPoP fixture (oidc-provider, oauth4webapi), and CI=true")
	}
	tb.Skip("node or npm not installed: skipping the tests against oidc-provider and oauth4webapi")
	return "", ""
}

var install struct {
	sync.Mutex
	done bool
	took time.Duration
}

// Install runs npm ci in the fixture's directory once per process when its
// node_modules is missing, and returns how long that took (0 when it was
// there).
func Install(tb testing.TB) time.Duration {
	tb.Helper()
	_, npm := tools(tb)
	install.Lock()
	defer install.Unlock()
	if install.done {
		return install.took
	}
	d := dir()
	if _, err := os.Stat(filepath.Join(d, "node_modules", "oidc-provider", "package.json")); err != nil {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = d
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("npm ci in %s: %v\n%s", d, err, out)
		}
		install.took = time.Since(start)
	}
	install.done = true
	return install.took
}

// Start installs the fixture when needed and starts its authorization
// server; it stops with the test.
func Start(tb testing.TB) *IdP {
	tb.Helper()
	node, _ := tools(tb)
	Install(tb)
	start := time.Now()
	cmd := exec.Command(node, "server.mjs", Resource)
	cmd.Dir = dir()
	stdin, err := cmd.StdinPipe() // closing it stops the server
	if err != nil {
		tb.Fatal(err)
	}
	first := &firstLine{line: make(chan string, 1)}
	cmd.Stdout = first
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	var line string
	select {
	case line = <-first.line:
	case <-exited:
		tb.Fatalf("oidc-provider fixture exited before listening: %s", stderr.String())
	case <-time.After(30 * time.Second):
		tb.Fatalf("oidc-provider fixture did not listen within 30s: %s", stderr.String())
	}
	idp := &IdP{node: node, dir: dir(), StartedIn: time.Since(start)}
	if err := json.Unmarshal([]byte(line), idp); err != nil || idp.Issuer == "" {
		tb.Fatalf("oidc-provider fixture said %q: %v", line, err)
	}
	return idp
}

// firstLine is a writer that hands on the first line written to it and
// drops the rest.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	done bool
	line chan string
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return len(p), nil
	}
	f.buf = append(f.buf, p...)
	if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
		f.line <- string(f.buf[:i])
		f.done, f.buf = true, nil
	}
	return len(p), nil
}

// lockedBuffer is a bytes.Buffer that the process writes while a failing
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Result is what client.mjs did.
type Result struct {
	// JKT is the thumbprint of the client's DPoP key, as the library
	// computes it.
	JKT string `json:"jkt"`
	// Tokens are the access tokens it got (or the one it was given).
	Tokens []string `json:"tokens"`
	// Requests are its requests to the resource, in order.
	Requests []Request `json:"requests"`
	// PrivateJWK is the DPoP key's private half as a JWK, with
	// --export-key only: a test signs altered proofs with it.
	PrivateJWK json.RawMessage `json:"private_jwk,omitempty"`
}

// Request is one request client.mjs made with the library.
type Request struct {
	Token  int    `json:"token"` // index into Tokens
	Method string `json:"method"`
	DPoP   bool   `json:"dpop"` // false: sent as a Bearer token
	Status int    `json:"status"`
	// NonceRetry reports that the first try was answered use_dpop_nonce
	// and the library retried with the nonce; Status is the retry's.
	NonceRetry bool `json:"nonce_retry"`
	// Error lists the challenges of a refusal, "scheme:error" each.
	Error string `json:"error,omitempty"`
}

// Client runs client.mjs against url with args (see its usage) and
// returns what it did.
func (i *IdP) Client(tb testing.TB, url string, args ...string) Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, i.node, append([]string{"client.mjs", i.Issuer, Resource, url}, args...)...)
	cmd.Dir = i.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("client.mjs %v: %v\n%s", args, err, stderr.String())
	}
	var r Result
	if err := json.Unmarshal(out, &r); err != nil {
		tb.Fatalf("client.mjs said %q: %v", out, err)
	}
	return r
}

// CertBoundToken gets an access token for Resource (scope read) as
// MTLSClientID from behind a TLS-terminating proxy: certHeader is the
// client certificate in an RFC 9440 Client-Cert header, which the server
// binds the token to (RFC 8705 cnf x5t#S256). It returns the token and its
// token_type.
func (i *IdP) CertBoundToken(tb testing.TB, certHeader string) (token, tokenType string) {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {Resource}, "scope": {"read"}}
	req, err := http.NewRequest("POST", i.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(MTLSClientID, MTLSClientSecret)
	req.Header.Set("Client-Cert", certHeader)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 200 || body.AccessToken == "" {
		tb.Fatalf("token request: %d, %v", res.StatusCode, err)
	}
	return body.AccessToken, body.TokenType
}
