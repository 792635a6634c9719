package proxy

import (
	"net/http"
	"reflect"
	"testing"
)

func TestUpgradeScreen(t *testing.T) {
	ws := http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Version": {"13"}}
	with := func(h http.Header, kv ...string) http.Header {
		h = h.Clone()
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(h, kv[i])
			} else {
				h[kv[i]] = []string{kv[i+1]}
			}
		}
		return h
	}
	plain := func(h http.Header) http.Header { // what a refused upgrade leaves
		h = h.Clone()
		delete(h, "Upgrade")
		delete(h, "Connection")
		return h
	}
	cases := []struct {
		name    string
		allowed upgrades
		method  string
		in      http.Header
		ok      bool
		out     http.Header
	}{
		{name: "no upgrade", allowed: upgrades{"websocket"}, method: "GET", in: http.Header{"Accept": {"*/*"}}, out: http.Header{"Accept": {"*/*"}}},
		{name: "keep-alive kept", allowed: upgrades{"websocket"}, method: "GET", in: http.Header{"Connection": {"keep-alive"}}, out: http.Header{"Connection": {"keep-alive"}}},
		{name: "websocket", allowed: upgrades{"websocket"}, method: "GET", in: ws, ok: true, out: ws},
		{name: "any case", allowed: upgrades{"websocket"}, method: "GET", in: with(ws, "Upgrade", "WebSocket", "Connection", "keep-alive, UPGRADE"), ok: true,
			out: with(ws, "Upgrade", "WebSocket", "Connection", "keep-alive, UPGRADE")},
		{name: "versioned name", allowed: upgrades{"x-tunnel"}, method: "GET", in: with(ws, "Upgrade", "x-tunnel/2"), ok: true, out: with(ws, "Upgrade", "x-tunnel/2")},
		{name: "HTTP2-Settings always goes", allowed: upgrades{"websocket"}, method: "GET", in: with(ws, "Http2-Settings", "AAMAAABkAAQAAP__"), ok: true, out: ws},
		{name: "settings alone", allowed: upgrades{"websocket"}, method: "GET", in: http.Header{"Http2-Settings": {"AAMAAABkAAQAAP__"}}, out: http.Header{}},
		{name: "h2c", allowed: upgrades{"websocket"}, method: "GET",
			in: http.Header{"Connection": {"Upgrade, HTTP2-Settings"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAMAAABkAAQAAP__"}}, out: http.Header{}},
		{name: "h2c among others", allowed: upgrades{"websocket"}, method: "GET", in: with(ws, "Upgrade", "websocket, h2c"), out: plain(ws)},
		{name: "h2c in a second Upgrade line", allowed: upgrades{"websocket"}, method: "GET",
			in: func() http.Header { h := ws.Clone(); h["Upgrade"] = []string{"websocket", "h2c"}; return h }(), out: plain(ws)},
		{name: "Connection's other tokens kept", allowed: upgrades{"websocket"}, method: "GET",
			in: http.Header{"Connection": {"keep-alive, Upgrade", "HTTP2-Settings, X-Trace"}, "Upgrade": {"h2c"}}, out: http.Header{"Connection": {"keep-alive, X-Trace"}}},
		{name: "POST", allowed: upgrades{"websocket"}, method: "POST", in: ws, out: plain(ws)},
		{name: "no Sec-WebSocket-Key", allowed: upgrades{"websocket"}, method: "GET", in: with(ws, "Sec-Websocket-Key", ""), out: plain(with(ws, "Sec-Websocket-Key", ""))},
		{name: "no Sec-WebSocket-Version", allowed: upgrades{"websocket"}, method: "GET", in: with(ws, "Sec-Websocket-Version", ""), out: plain(with(ws, "Sec-Websocket-Version", ""))},
		{name: "not in Connection", allowed: upgrades{"websocket"}, method: "GET", in: with(ws, "Connection", ""), out: plain(ws)},
		{name: "empty Upgrade", allowed: upgrades{"websocket"}, method: "GET", in: with(ws, "Upgrade", " , "), out: plain(ws)},
		{name: "none allowed", method: "GET", in: ws, out: plain(ws)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.in.Clone()
			if ok := tc.allowed.screen(tc.method, h); ok != tc.ok {
				t.Errorf("screen = %v, want %v", ok, tc.ok)
			}
			if !reflect.DeepEqual(h, tc.out) {
				t.Errorf("headers\n%v\nwant\n%v", h, tc.out)
			}
		})
	}
}

// BenchmarkUpgradeScreen is the cost of the screen on a request that asks
// for no upgrade, which every proxied request pays: no allocation.
func BenchmarkUpgradeScreen(b *testing.B) {
	u := upgrades{"websocket"}
	h := http.Header{"Accept": {"*/*"}, "Authorization": {"Bearer x"}, "User-Agent": {"bench"}}
	b.ReportAllocs()
	for b.Loop() {
		u.screen(http.MethodGet, h)
	}
}
