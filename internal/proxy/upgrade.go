package proxy

import (
	"bufio"
	"context"
	"iter"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Protocol upgrades in proxy mode (README, "Reverse proxy"). httputil's
// ReverseProxy forwards any Upgrade the upstream accepts, and after a 101
// the connection is a tunnel authgate no longer reads: an h2c upgrade would
// let a client send HTTP/2 requests for any path, with no token, straight to
// an upstream that accepts it (GHSA-w4v4-9rw7-5326 in Traefik). So an
// upgrade passes only for the protocols of UPSTREAM_UPGRADES, on GET, with
// the protocol's own handshake; everything else goes on as plain HTTP/1.1.

// upgrades is UPSTREAM_UPGRADES: the protocol names, lower case, a client
// may switch to through the proxy.
type upgrades []string

// screen decides the upgrade a request asks for, before the check reads
// it, so that the policy sees what the upstream will get. HTTP2-Settings
// always goes (it means nothing but h2c); an upgrade not allowed loses its
// Upgrade header and the "upgrade" token of Connection. screen reports
// whether the request still asks to switch protocols.
func (u upgrades) screen(method string, h http.Header) bool {
	delete(h, "Http2-Settings")
	ups, conn := h["Upgrade"], h["Connection"]
	if len(ups) == 0 && len(conn) == 0 {
		return false // the common case: nothing to look at
	}
	if len(ups) > 0 && httpguts.HeaderValuesContainsToken(conn, "upgrade") && u.allow(method, h, ups) {
		return true
	}
	delete(h, "Upgrade")
	DropConnectionTokens(h, upgradeToken)
	return false
}

// allow reports whether every protocol in ups is allowed, and the request
// is a GET carrying the protocol's handshake.
func (u upgrades) allow(method string, h http.Header, ups []string) bool {
	if method != http.MethodGet {
		return false // RFC 6455 4.1: a handshake is a GET; h2c would take any
	}
	n := 0
	for _, v := range ups {
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			name, _, _ := strings.Cut(p, "/") // protocol-name["/"protocol-version]
			if !u.has(name) {
				return false
			}
			if strings.EqualFold(name, "websocket") && (h.Get("Sec-Websocket-Key") == "" || h.Get("Sec-Websocket-Version") == "") {
				return false
			}
			n++
		}
	}
	return n > 0
}

func (u upgrades) has(name string) bool {
	for _, p := range u {
		if strings.EqualFold(p, name) {
			return true
		}
	}
	return false
}

// ConnectionTokens yields the tokens of a Connection header's values vs,
// trimmed, empty ones skipped.
func ConnectionTokens(vs []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range vs {
			for t := range strings.SplitSeq(v, ",") {
				if t = textproto.TrimString(t); t != "" && !yield(t) {
					return
				}
			}
		}
	}
}

// DropConnectionTokens removes from h's Connection header the tokens drop
// reports, and the header itself when none is left. It rewrites the header
// only when a token goes.
func DropConnectionTokens(h http.Header, drop func(tok string) bool) {
	vs := h["Connection"]
	found := false
	for t := range ConnectionTokens(vs) {
		found = found || drop(t)
	}
	if !found {
		return
	}
	var keep []string
	for t := range ConnectionTokens(vs) {
		if !drop(t) {
			keep = append(keep, t)
		}
	}
	if len(keep) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = []string{strings.Join(keep, ", ")}
}

// upgradeToken reports whether a Connection token asks for, or configures,
// an upgrade.
func upgradeToken(t string) bool {
	return strings.EqualFold(t, "upgrade") || strings.EqualFold(t, "http2-settings")
}

// Screen decides the upgrade a request asks for, before the check reads
// it, so that the policy sees what the upstream will get (see
// upgrades.screen): it reports whether the request still asks to switch
// protocols.
func (p *Proxy) Screen(method string, h http.Header) bool { return p.upgrades.screen(method, h) }

// tunnel is one allowed upgrade on its way through the proxy. It stands in
// for the response writer so that it sees the Hijack that ReverseProxy
// makes after the upstream's 101: from then on it counts the bytes each way
// and, when its watch ends it (watch.go: the token's exp, a revocation, a
// re-check, shutdown), closes both sides. It is allocated per
// upgrade, never from the record pool: ReverseProxy may return while one of
// its copying goroutines still writes through the connection.
type tunnel struct {
	http.ResponseWriter
	cancel context.CancelFunc // ends the upstream side (ReverseProxy closes it)

	up, down atomic.Int64 // bytes client -> upstream, upstream -> client

	watch *watch

	mu       sync.Mutex
	conn     net.Conn  // the client's connection, once hijacked
	switched time.Time // when it was
	ended    bool      // authgate ended it
}

// Unwrap gives http.ResponseController the writer underneath (Flush).
func (t *tunnel) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// Hijack takes over the client's connection for ReverseProxy, which does so
// only once the upstream has switched protocols.
func (t *tunnel) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(t.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conn, t.switched = conn, time.Now()
	if t.ended {
		conn.Close()
	}
	return &countedConn{Conn: conn, t: t}, brw, nil
}

// end ends the tunnel (its watch's end).
func (t *tunnel) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended = true
	t.cancel()
	if t.conn != nil {
		t.conn.Close()
	}
}

// stats says whether the connection switched protocols, and for how long.
func (t *tunnel) stats() (switched bool, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == nil {
		return false, 0
	}
	return true, time.Since(t.switched)
}

// Tunnel says, for the access log, what the call's tunnel carried once
// the connection switched protocols, which the response writer cannot see
// past the Hijack: the bytes sent down (the answer's size; its status is
// 101) and up, how long it lasted, and whether the token's exp ended it.
// ok is false when no tunnel switched.
func (c *Call) Tunnel() (down, up int64, d time.Duration, expired, ok bool) {
	t := c.tunnel
	if t == nil {
		return 0, 0, 0, false, false
	}
	switched, d := t.stats()
	if !switched {
		return 0, 0, 0, false, false
	}
	return t.down.Load(), t.up.Load(), d, t.watch.endedBy() == endExp, true
}

// countedConn is the client's side of a tunnel, counting what it carries.
type countedConn struct {
	net.Conn
	t *tunnel
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.t.up.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.t.down.Add(int64(n))
	return n, err
}

// CloseWrite passes on the half-close that ReverseProxy sends when the
// upstream is done writing.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// Upgrade proxies an allowed upgrade through a tunnel that lives no longer
// than the token gr grants (watch.go; nil, a public path: until
// shutdown). ReverseProxy closes the upstream side when the request's
// context ends, and then the client's.
func (c *Call) Upgrade(p *Proxy, w http.ResponseWriter, req *http.Request, gr Granted) {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	t := &tunnel{ResponseWriter: w, cancel: cancel}
	c.tunnel = t
	t.watch = p.watch(gr, t.end)
	defer t.watch.closed()
	p.rp.ServeHTTP(t, req.WithContext(ctx))
}
