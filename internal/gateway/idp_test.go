package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"testing"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

// TestLookupNamesTheClient: with LookupClient set, the token lookup's
// context names the client as remote_addr does (TRUSTED_PROXIES honoured),
// for OKTA_MAX_RPS_PER_CLIENT; without it, it names none.
func TestLookupNamesTheClient(t *testing.T) {
	for _, tc := range []struct {
		name    string
		on      bool
		trusted []netip.Prefix
		xff     string
		want    string
	}{
		{name: "off", want: "(none)"},
		{name: "the peer", on: true, want: "192.0.2.1"},
		{name: "the client behind a trusted proxy", on: true, trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
			xff: "198.51.100.9, 192.0.2.8", want: "198.51.100.9"},
		{name: "X-Forwarded-For from an untrusted peer", on: true, xff: "198.51.100.9", want: "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			h := newHarness(t, func(d *Deps) { d.LookupClient, d.TrustedProxies = tc.on, tc.trusted })
			h.tokens.LookupFn = func(ctx context.Context, _ string) (*authn.Token, authn.Lookup, error) {
				addr, ok := authn.ClientOf(ctx)
				if got = addr; !ok {
					got = "(none)"
				}
				return nil, authn.Miss, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token"}
			}
			req := newRequest(http.MethodGet, "/sayhello", "Authorization", bearer)
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			h.serve(h.g.Traffic(), req)
			if got != tc.want {
				t.Errorf("client %q, want %q", got, tc.want)
			}
		})
	}
}

// BenchmarkCheckLookupClient is BenchmarkCheck with OKTA_MAX_RPS_PER_CLIENT
// on: the client named in the lookup's context costs one allocation.
func BenchmarkCheckLookupClient(b *testing.B) {
	benchServe(b, benchHarness(b, func(d *Deps) { d.LookupClient = true }))
}
