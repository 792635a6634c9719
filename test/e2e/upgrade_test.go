package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"

	"github.com/authgate/authgate/internal/stacktest"
)

// h2cUpstream is the upstream an h2c smuggler looks for: it switches to
// HTTP/2 over cleartext on any request that carries HTTP2-Settings or asks
// for h2c, whatever Connection says (as hypercorn does), and records every
// request it serves over either protocol.
type h2cUpstream struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   []string // "PROTO PATH" of every request served
	asked int      // requests that asked it to switch
}

func startH2CUpstream(t *testing.T) *h2cUpstream {
	t.Helper()
	u := &h2cUpstream{}
	h2 := h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.got = append(u.got, r.Proto+" "+r.URL.Path)
		u.mu.Unlock()
		io.WriteString(w, "upstream "+r.URL.Path)
	}), &http2.Server{})
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, settings := r.Header["Http2-Settings"]
		if settings || httpguts.HeaderValuesContainsToken(r.Header["Upgrade"], "h2c") {
			// Lenient like hypercorn: x/net's h2c wants both headers and
			// the Connection tokens, so give them to it.
			if !settings {
				r.Header.Set("Http2-Settings", "")
			}
			r.Header.Set("Upgrade", "h2c")
			r.Header.Set("Connection", "Upgrade, HTTP2-Settings")
			u.mu.Lock()
			u.asked++
			u.mu.Unlock()
		}
		h2.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *h2cUpstream) seen() (got []string, asked int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.got), u.asked
}

// smuggle plays h2csmuggler's sequence through authgate on one connection:
// an HTTP/1.1 GET of path asking to switch to h2c, then, if 101 comes back,
// the HTTP/2 preface, SETTINGS and a HEADERS frame for hidden, reading the
// answer frames until hidden's stream ends. It returns the HTTP/1.1 status.
func smuggle(t *testing.T, addr, path string, header map[string]string, hidden string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, addr)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Switched: speak HTTP/2 straight to whatever answered.
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, br)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", addr}, {":path", hidden}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if f.Header().StreamID == 3 && f.Header().Flags.Has(http2.FlagDataEndStream) {
			break
		}
	}
	return resp.StatusCode
}

// TestProxyH2CSmuggling sends the h2c smuggling sequence on an allowed path
// and on a public one: no 101 may come back, and the upstream must never
// see the path the policy denies, nor a request to switch protocols.
func TestProxyH2CSmuggling(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	up := startH2CUpstream(t)
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
	env["UPSTREAM_URL"] = up.srv.URL
	env["PUBLIC_PATHS"] = "GET /health"
	gw := stacktest.StartGateway(t, env)
	reader := i.Token(t, "api_read")

	const settings = "AAMAAABkAARAAAAAAAIAAAAA" // h2csmuggler's HTTP2-Settings
	smuggling := map[string]map[string]string{
		"listed in Connection": {"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": settings},
		"not listed":           {"Connection": "Upgrade", "Upgrade": "h2c", "HTTP2-Settings": settings},
		"settings alone":       {"HTTP2-Settings": settings},
		"among websocket":      {"Connection": "Upgrade", "Upgrade": "websocket, h2c", "HTTP2-Settings": settings, "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"},
	}
	for name, h := range smuggling {
		for _, c := range []struct{ where, path, token string }{{"allowed", "/api/items", reader}, {"public", "/health", ""}} {
			t.Run(name+" on an "+c.where+" path", func(t *testing.T) {
				hdr := h
				if c.token != "" {
					hdr = with(h, "Authorization", "Bearer "+c.token)
				}
				if status := smuggle(t, gw.TrafficAddr(), c.path, hdr, "/admin"); status != http.StatusOK {
					t.Errorf("status %d, want 200 (plain HTTP/1.1)", status)
				}
				got, asked := up.seen()
				if slices.ContainsFunc(got, func(s string) bool { return strings.HasSuffix(s, " /admin") }) {
					t.Errorf("the upstream served the denied path through a tunnel: %v", got)
				}
				if asked != 0 {
					t.Errorf("the upstream was asked to switch to h2c %d times", asked)
				}
				if len(got) == 0 || got[len(got)-1] != "HTTP/1.1 "+c.path {
					t.Errorf("upstream served %v, want HTTP/1.1 %s last", got, c.path)
				}
			})
		}
	}
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	gw.AssertNoLeaks(t, reader)
}

// TestProxyUpgrades: only a WebSocket handshake (GET, Sec-WebSocket-Key and
// -Version) is upgraded by default; anything else goes on as plain HTTP/1.1
// without its Upgrade header, and UPSTREAM_UPGRADES= turns upgrades off.
func TestProxyUpgrades(t *testing.T) {
	o := startModesOPA(t)
	i := stacktest.StartIDP(t, 0)
	up := startUpstream(t)
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
	env["UPSTREAM_URL"] = up.srv.URL
	gw := stacktest.StartGateway(t, env)
	off := map[string]string{"UPSTREAM_UPGRADES": ""}
	for k, v := range env {
		off[k] = v
	}
	gwOff := stacktest.StartGateway(t, off)
	writer := i.Token(t, "api_read api_write")
	ws := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
		"Sec-WebSocket-Version": "13", "Authorization": "Bearer " + writer}
	without := func(k string) map[string]string {
		h := with(ws)
		delete(h, k)
		return h
	}
	cases := []struct {
		name, method string
		header       map[string]string
		gw           *stacktest.Gateway
		status       int
	}{
		{"WebSocket handshake", "GET", ws, gw, 101},
		{"protocol name in any case", "GET", with(ws, "Upgrade", "WebSocket"), gw, 101},
		{"no Sec-WebSocket-Key", "GET", without("Sec-WebSocket-Key"), gw, 426},
		{"no Sec-WebSocket-Version", "GET", without("Sec-WebSocket-Version"), gw, 426},
		{"POST", "POST", ws, gw, 426},
		{"a protocol not allowed", "GET", with(ws, "Upgrade", "websocket, tls/1.3"), gw, 426},
		{"no upgrade in Connection", "GET", with(ws, "Connection", "keep-alive"), gw, 426},
		{"UPSTREAM_UPGRADES empty", "GET", ws, gwOff, 426},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := raw(t, tc.gw.Traffic, tc.method, "/api/ws", tc.header)
			if r.Status != tc.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Body, tc.status)
			}
			if tc.status == 101 {
				// Logged when the tunnel ends (raw has closed it).
				stacktest.Eventually(t, 10*time.Second, "an access line for the tunnel", func() bool {
					for _, l := range tc.gw.Logs.Lines("request") {
						if _, ok := l["tunnel_duration"]; ok && l["status"] == 101.0 && l["outcome"] == "allow" && l["tunnel_bytes_up"] == 0.0 {
							return true
						}
					}
					return false
				})
			}
			s := up.seen()
			if tc.status != 101 {
				for _, k := range []string{"Upgrade", "Http2-Settings"} {
					if v, ok := s.Header[k]; ok {
						t.Errorf("the upstream got %s: %q on a request not upgraded", k, v)
					}
				}
				if httpguts.HeaderValuesContainsToken(s.Header["Connection"], "upgrade") {
					t.Errorf("the upstream got Connection: %q", s.Header["Connection"])
				}
			}
		})
	}
}
