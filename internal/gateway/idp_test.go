package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/lograte"
	"github.com/authgate/authgate/pkg/introspect"
)

// TestMisconfiguredLoggedOncePerWindow: authgate's credentials refused
// (invalid_client) is a 503 for every request but one ERROR line per
// lograte.Every, the next one counting those dropped. With private_key_jwt
// (authn.ErrAssertionRejected) the line names the key's variables instead
// of the secret's.
func TestMisconfiguredLoggedOncePerWindow(t *testing.T) {
	invalidClient := &introspect.Error{StatusCode: 401, Code: "invalid_client"}
	for _, tc := range []struct {
		name string
		err  error
		msg  string
	}{
		{name: "client secret", err: errors.Join(authn.ErrMisconfigured, invalidClient),
			msg: "authorization server rejected authgate's credentials or request: check OKTA_CLIENT_ID, OKTA_CLIENT_SECRET, OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL"},
		{name: "private_key_jwt", err: errors.Join(authn.ErrAssertionRejected, errors.Join(authn.ErrMisconfigured, invalidClient)),
			msg: "authorization server rejected authgate's client assertion: check OKTA_CLIENT_ID, OKTA_PRIVATE_KEY_FILE and OKTA_PRIVATE_KEY_ID (the key registered for the client), OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			misconfigured := &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable", Description: "authorization server unavailable", Err: tc.err}
			h := newHarness(t)
			h.tokens.LookupFn = func(context.Context, string) (*authn.Token, authn.Lookup, error) {
				return nil, authn.Miss, misconfigured
			}
			send := func(n int) {
				t.Helper()
				for range n {
					if w := h.get("/sayhello", bearer); w.Code != http.StatusServiceUnavailable {
						t.Fatalf("status %d, want 503", w.Code)
					}
				}
			}
			errorLines := func() []float64 {
				t.Helper()
				var out []float64
				for _, l := range h.lines(t) {
					if l["level"] == "ERROR" {
						if l["msg"] != tc.msg {
							t.Errorf("unexpected ERROR line %v", l)
						}
						s, _ := l["suppressed"].(float64)
						out = append(out, s)
					}
				}
				return out
			}
			send(20)
			if got := errorLines(); len(got) != 1 || got[0] != 0 {
				t.Fatalf("%d ERROR lines (suppressed %v) for 20 requests within %v, want 1", len(got), got, lograte.Every)
			}
			h.clock.Add(lograte.Every - time.Nanosecond)
			send(1)
			if got := errorLines(); len(got) != 1 {
				t.Fatalf("%d ERROR lines within %v, want 1", len(got), lograte.Every)
			}
			h.clock.Add(time.Nanosecond)
			send(1)
			if got := errorLines(); len(got) != 2 || got[1] != 20 {
				t.Errorf("after %v: ERROR lines suppressed %v, want [0 20]", lograte.Every, got)
			}
		})
	}
}

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
