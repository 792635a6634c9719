package forwarded

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestOrigin(t *testing.T) {
	trusted := Trust{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name, remote, xff, xfh, xfp string
		want                        Origin
	}{
		{name: "untrusted peer ignores headers", remote: "203.0.113.9:5000", xff: "1.2.3.4", xfh: "evil.example", xfp: "https",
			want: Origin{Host: "api.example", Scheme: "http", RemoteAddr: "203.0.113.9", Peer: "203.0.113.9"}},
		{name: "trusted peer", remote: "10.1.2.3:5000", xff: "198.51.100.7", xfh: "public.example", xfp: "https",
			want: Origin{Host: "public.example", Scheme: "https", RemoteAddr: "198.51.100.7", Peer: "10.1.2.3", PeerTrusted: true}},
		{name: "forged left-most hop skipped", remote: "10.1.2.3:5000", xff: "6.6.6.6, 198.51.100.7, 10.9.9.9",
			want: Origin{Host: "api.example", Scheme: "http", RemoteAddr: "198.51.100.7", Peer: "10.1.2.3", PeerTrusted: true}},
		{name: "all hops trusted", remote: "10.1.2.3:5000", xff: "10.4.4.4",
			want: Origin{Host: "api.example", Scheme: "http", RemoteAddr: "10.4.4.4", Peer: "10.1.2.3", PeerTrusted: true}},
		{name: "garbage hop leaves the client unknown", remote: "10.1.2.3:5000", xff: "198.51.100.7, nonsense",
			want: Origin{Host: "api.example", Scheme: "http", RemoteAddr: "", Peer: "10.1.2.3", PeerTrusted: true}},
		{name: "hop with a port", remote: "10.1.2.3:5000", xff: "198.51.100.7:4711",
			want: Origin{Host: "api.example", Scheme: "http", RemoteAddr: "198.51.100.7", Peer: "10.1.2.3", PeerTrusted: true}},
		{name: "IPv6 hop with a port", remote: "10.1.2.3:5000", xff: "[2001:db8::7]:4711, 10.4.4.4",
			want: Origin{Host: "api.example", Scheme: "http", RemoteAddr: "2001:db8::7", Peer: "10.1.2.3", PeerTrusted: true}},
		{name: "bad proto ignored", remote: "[::1]:5000", xfp: "gopher",
			want: Origin{Host: "api.example", Scheme: "http", RemoteAddr: "::1", Peer: "::1", PeerTrusted: true}},
		{name: "last host and proto win", remote: "10.1.2.3:5000", xfh: "a.example, b.example", xfp: "http, https",
			want: Origin{Host: "b.example", Scheme: "https", RemoteAddr: "10.1.2.3", Peer: "10.1.2.3", PeerTrusted: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: tc.remote, Host: "api.example", Header: http.Header{}}
			for k, v := range map[string]string{"X-Forwarded-For": tc.xff, "X-Forwarded-Host": tc.xfh, "X-Forwarded-Proto": tc.xfp} {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			if got := trusted.Origin(req); got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTrusts(t *testing.T) {
	trusted := Trust{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for remote, want := range map[string]bool{
		"10.1.2.3:5000": true, "[::1]:5000": true, "[::ffff:10.1.2.3]:5000": true, "10.1.2.3": true,
		"203.0.113.9:5000": false, "[2001:db8::1]:5000": false, "nonsense": false, "": false,
	} {
		if got := trusted.Trusts(&http.Request{RemoteAddr: remote}); got != want {
			t.Errorf("%q: %v, want %v", remote, got, want)
		}
	}
	if (Trust(nil)).Trusts(&http.Request{RemoteAddr: "10.1.2.3:5000"}) {
		t.Error("the zero Trust trusts someone")
	}
}
