// Package forwarded decides whom to believe about where a request came
// from: TRUSTED_PROXIES, the origin (host, scheme, client address) read
// from X-Forwarded-* behind them, the names of the forwarding headers an
// untrusted client must not send, and the original request a forward-auth
// proxy (nginx, Traefik, Envoy) asks about.
package forwarded

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Origin is where a request came from, as far as authgate can tell.
type Origin struct {
	// Host is the request's Host, or the nearest trusted proxy's
	// X-Forwarded-Host; Scheme "http" or "https", likewise from
	// X-Forwarded-Proto.
	Host, Scheme string
	// RemoteAddr is the client's IP address (no port): the connection's, or
	// behind trusted proxies the right-most X-Forwarded-For address that is
	// not one of them; "" when a hop is not an address.
	RemoteAddr string
	// Peer is the connection's own IP address, PeerTrusted whether it is
	// one of the trusted proxies.
	Peer        string
	PeerTrusted bool
}

// Trust is TRUSTED_PROXIES: the prefixes of the proxies whose forwarding
// headers are believed. Its zero value trusts no one.
type Trust []netip.Prefix

func (t Trust) contains(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Trusts reports whether req's connection comes from one of the prefixes.
func (t Trust) Trusts(req *http.Request) bool {
	if len(t) == 0 {
		return false // the common case: no parsing
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return err == nil && t.contains(a.Unmap())
}

// Origin reads where req came from: its own connection, Host and TLS, or
// the forwarding headers when the connection comes from a trusted proxy.
func (t Trust) Origin(req *http.Request) Origin {
	o := Origin{Host: req.Host, Scheme: "http"}
	if req.TLS != nil {
		o.Scheme = "https"
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	o.Peer, o.RemoteAddr = host, host
	if len(t) == 0 {
		return o // the common case: no parsing, no allocation
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return o
	}
	peer = peer.Unmap()
	if peer.Is4() && strings.Contains(host, ":") { // an IPv4-mapped IPv6 address
		o.Peer, o.RemoteAddr = peer.String(), peer.String()
	}
	if !t.contains(peer) {
		return o
	}
	o.PeerTrusted = true
	// The client is the right-most address that is not a trusted proxy:
	// everything to its left was written by someone we cannot vouch for. A
	// hop that is not an address leaves the client unknown (""), never the
	// proxy's own address, which a policy might trust.
	o.RemoteAddr = peer.String()
	hops := listValues(req.Header["X-Forwarded-For"])
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := hopAddr(hops[i])
		if !ok {
			o.RemoteAddr = ""
			break
		}
		o.RemoteAddr = a.String()
		if !t.contains(a) {
			break
		}
	}
	// Host and Proto: the value the nearest trusted proxy wrote (last one).
	if hs := listValues(req.Header["X-Forwarded-Host"]); len(hs) > 0 && hs[len(hs)-1] != "" {
		o.Host = hs[len(hs)-1]
	}
	if ps := listValues(req.Header["X-Forwarded-Proto"]); len(ps) > 0 {
		switch p := strings.ToLower(ps[len(ps)-1]); p {
		case "http", "https":
			o.Scheme = p
		}
	}
	return o
}

// hopAddr reads one X-Forwarded-For element: an address, or an address with
// a port ("192.0.2.1:443", "[2001:db8::1]:443"), which some proxies write.
func hopAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// listValues splits comma-separated header values into trimmed elements.
func listValues(vals []string) []string {
	var out []string
	for _, v := range vals {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}
