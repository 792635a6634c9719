package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/authgate/authgate/internal/stacktest"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/opatest"
)

// Decisions of the gateway-mode tests.
const (
	gatewayDecision = "/v1/data/gateway/authz/decision" // opa-policies/gateway, the README's example
	echoDecision    = "/v1/data/e2e/echo/decision"      // echoPolicy below, test-only
)

// echoPolicy allows everything outside /odd/ and sends what OPA saw of the
// request to the upstream as headers, so that a test can compare the two.
// Under /odd/ it gives decisions a gateway must not follow as they stand.
const echoPolicy = `package e2e.echo

default decision := {"allowed": false}

decision := {"allowed": true, "headers": {
	"X-Seen-Method": input.method,
	"X-Seen-Path": input.path,
	"X-Seen-Host": input.host,
	"X-Seen-Scheme": input.scheme,
	"X-Seen-Remote": input.remote_addr,
	"X-Seen-Mode": input.mode,
	"X-Seen-Query": json.marshal(input.query),
	"X-Seen-Header-Names": concat(",", sort([k | some k, _ in input.headers])),
}} if not startswith(input.path, "/odd/")

decision := {"allowed": false, "http_status": 200, "body": "fine"} if input.path == "/odd/ok-status"

decision := {"allowed": false, "http_status": 302} if input.path == "/odd/redirect"

decision := {"allowed": "yes"} if input.path == "/odd/string-allowed"
`

// startModesOPA runs OPA with opa-policies/ and the test-only echoPolicy.
func startModesOPA(t *testing.T) *opatest.Server {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "echo.rego"), []byte(echoPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	return opatest.Start(t, opatest.RepoRoot(t)+"/opa-policies", dir)
}

// seen is what the upstream received.
type seen struct {
	Method, Path, RawPath, Query, Host string
	Header                             http.Header
}

// upstream is a test service behind authgate. It counts every request it
// receives, so a test can prove that a denied request never reached it.
type upstream struct {
	srv      *httptest.Server
	hits     atomic.Int64
	mu       sync.Mutex
	last     seen
	gotFirst chan struct{} // /api/stream-up: the first bytes arrived
	release  chan struct{} // /api/stream-down: send the rest
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{gotFirst: make(chan struct{}, 1), release: make(chan struct{})}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) seen() seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.hits.Add(1)
	u.mu.Lock()
	u.last = seen{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone()}
	u.mu.Unlock()
	switch r.URL.Path {
	case "/api/stream-up": // answers the length and SHA-256 of the body it read
		first := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, first); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		u.gotFirst <- struct{}{}
		h := sha256.New()
		h.Write(first)
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %s", n+5, hex.EncodeToString(h.Sum(nil)))
	case "/api/stream-down": // a first line now, the rest when the test says so
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-u.release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, strings.Repeat("x", 1<<20)+"\nlast\n")
	case "/api/slow":
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	case "/api/ws": // a WebSocket-style upgrade that echoes lines
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString("echo " + line)
			brw.Flush()
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"upstream": "ok", "path": r.URL.Path})
	}
}

// do sends one request with the given headers ("Authorization" included).
func do(t *testing.T, method, url string, header map[string]string, body io.Reader) stacktest.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = []string{v} // as written: no canonicalisation
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return stacktest.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// raw sends a request line exactly as written (Go's client would clean or
// re-encode some targets), with the given headers.
func raw(t *testing.T, base, method, target string, header map[string]string) stacktest.Response {
	t.Helper()
	addr := strings.TrimPrefix(base, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return stacktest.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// with returns h plus the pairs kv.
func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// headerCount counts the header lines whose name is name once "_" is read as "-".
func headerCount(h http.Header, name string) int {
	n := 0
	for k, vs := range h {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), name) {
			n += len(vs)
		}
	}
	return n
}
