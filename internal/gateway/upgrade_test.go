package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/tokenid"
)

// The policy decides on what the upstream receives: a refused upgrade is
// already gone from the OPA input.
func TestUpgradeScreenedBeforePolicy(t *testing.T) {
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	h := newHarness(t, func(d *Deps) { d.Upstream, d.UpstreamTimeout, d.Upgrades = u, time.Second, []string{"websocket"} })
	req := newRequest("GET", "/x")
	for k, v := range map[string]string{"Authorization": bearer, "Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAAQAAP__"} {
		req.Header.Set(k, v)
	}
	w := h.serve(h.g.Traffic(), req)
	inputs := h.inputs(t)
	if w.Code != 200 || len(inputs) != 1 {
		t.Fatalf("%d %s, %d inputs", w.Code, w.Body, len(inputs))
	}
	headers, _ := inputs[0]["headers"].(map[string]any)
	for _, k := range []string{"upgrade", "http2-settings", "connection"} {
		if v, ok := headers[k]; ok {
			t.Errorf("OPA input has %s: %v", k, v)
		}
	}
	for _, k := range []string{"Upgrade", "Http2-Settings"} {
		if v, ok := got[k]; ok {
			t.Errorf("upstream got %s: %v", k, v)
		}
	}
}

// fakeAfter is an AfterFunc (Deps.AfterFunc) the test fires by hand: it
// keeps the last timer set and counts the stops.
type fakeAfter struct {
	mu    sync.Mutex
	d     time.Duration
	f     func()
	stops int
}

func (a *fakeAfter) after(d time.Duration, f func()) func() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.d, a.f = d, f
	return func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.stops++
		return true
	}
}

// duration is the delay of the last timer set.
func (a *fakeAfter) duration() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.d
}

// state says whether a timer was set, and how many times one was stopped.
func (a *fakeAfter) state() (set bool, stops int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f != nil, a.stops
}

func (a *fakeAfter) fire(t *testing.T) time.Duration {
	t.Helper()
	a.mu.Lock()
	d, f := a.d, a.f
	a.mu.Unlock()
	if f == nil {
		t.Fatal("no timer set")
	}
	f()
	return d
}

// startEchoUpgrade is an upstream that switches to a line echo on any
// WebSocket handshake.
func startEchoUpgrade(t *testing.T) *url.URL {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	return u
}

// dialUpgrade sends a WebSocket handshake with token on a new connection
// and returns it once the 101 has arrived.
func dialUpgrade(t *testing.T, addr, token string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", token)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return conn, br
}

// An upgraded connection lives no longer than its token: at exp both sides
// are closed, and the access line then says 101, how long the tunnel lived
// and what it carried.
func TestTunnelEndsAtTokenExpiry(t *testing.T) {
	const exp = 1_900_000_090 // 90 s after the clock
	after := &fakeAfter{}
	h := newHarness(t, func(d *Deps) {
		d.Upstream, d.UpstreamTimeout, d.Upgrades = startEchoUpgrade(t), time.Second, []string{"websocket"}
		d.AfterFunc = after.after
	})
	h.clock.Set(time.Unix(1_900_000_000, 0))
	h.good.Exp, h.good.CachedUntil = exp, time.Unix(exp, 0).UnixNano()
	srv := httptest.NewServer(h.g.Traffic())
	defer srv.Close()
	conn, br := dialUpgrade(t, srv.Listener.Addr().String(), goodToken)
	io.WriteString(conn, "ping\n")
	if got, err := br.ReadString('\n'); err != nil || got != "echo ping\n" {
		t.Fatalf("echo: %q %v", got, err)
	}

	if d := after.duration(); d != 90*time.Second {
		t.Errorf("tunnel timer %v, want 90s (the token's exp)", d)
	}
	h.clock.Add(90 * time.Second)
	after.fire(t)
	if n, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the client's connection is still open after exp (read %q, %v)", n, err)
	}
	l := h.waitLine(t, AccessLogMsg)
	if l["status"] != 101.0 || l["outcome"] != "allow" || l["tunnel_expired"] != true || l["ended_by"] != "exp" {
		t.Errorf("access line %v", l)
	}
	if l["tunnel_bytes_up"] != float64(len("ping\n")) || l["bytes"] != float64(len("echo ping\n")) {
		t.Errorf("bytes up %v down %v, want 5 and 10", l["tunnel_bytes_up"], l["bytes"])
	}
	if d, ok := l["tunnel_duration"].(float64); !ok || d <= 0 {
		t.Errorf("tunnel_duration %v", l["tunnel_duration"])
	}
}

// A tunnel that ends by itself is logged as it ends, not marked expired; a
// token without exp is looked up again when its cache entry ends.
func TestTunnelLoggedWhenItEnds(t *testing.T) {
	after := &fakeAfter{}
	h := newHarness(t, func(d *Deps) {
		d.Upstream, d.UpstreamTimeout, d.Upgrades = startEchoUpgrade(t), time.Second, []string{"websocket"}
		d.AfterFunc = after.after
	})
	srv := httptest.NewServer(h.g.Traffic())
	defer srv.Close()
	conn, br := dialUpgrade(t, srv.Listener.Addr().String(), goodToken)
	io.WriteString(conn, "a\nbb\n")
	for _, want := range []string{"echo a\n", "echo bb\n"} {
		if got, err := br.ReadString('\n'); err != nil || got != want {
			t.Fatalf("echo: %q %v", got, err)
		}
	}
	conn.Close()
	l := h.waitLine(t, AccessLogMsg)
	if l["status"] != 101.0 || l["tunnel_bytes_up"] != 5.0 || l["bytes"] != 15.0 || l["tunnel_expired"] != nil || l["ended_by"] != nil {
		t.Errorf("access line %v", l)
	}
	if want := time.Unix(0, h.good.CachedUntil).Sub(h.clock.Now()); after.duration() != want {
		t.Errorf("timer set for %s, want the %s left to the cache entry's end", after.duration(), want)
	}
	m := h.metrics
	m.mu.Lock()
	if want := []string{"/* GET Switching Protocols"}; !reflect.DeepEqual(m.requests, want) {
		t.Errorf("metrics requests %q, want %q", m.requests, want)
	}
	m.mu.Unlock()
}

// An allowed upgrade that the upstream answers with an event stream, not a
// 101, is watched once, by its tunnel: a revocation ends it, and once
// logged nothing of it stays registered (a second, unreleased watch kept
// Streams.Wait waiting until the shutdown timeout).
func TestUpgradeAnsweredByStream(t *testing.T) {
	es := startEventSource(t)
	h, base := streamGateway(t, es, time.Minute, 0, func(d *Deps) { d.Upgrades = []string{"websocket"} })
	u, _ := url.Parse(base)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", goodToken)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	br := bufio.NewReader(resp.Body)
	event(t, es, br, 1)
	if n := h.g.Streams().Len(); n != 1 {
		t.Errorf("%d watched, want 1", n)
	}
	h.g.Streams().Revoked(tokenid.Revocation(goodToken))
	if line, err := br.ReadString('\n'); err == nil {
		t.Fatalf("the stream still flows after the revocation (read %q)", line)
	}
	<-es.gone
	if l := h.waitLine(t, AccessLogMsg); l["ended_by"] != "revoked" {
		t.Errorf("access line %v, want ended_by revoked", l)
	}
	h.g.Streams().Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.g.Streams().Wait(ctx); err != nil {
		t.Errorf("Wait: %v; %d still registered", err, h.g.Streams().Len())
	}
}
