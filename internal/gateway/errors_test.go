package gateway

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/pkg/introspect"
)

// TestMisconfiguredLoggedOncePerWindow: authgate's credentials refused
// (invalid_client) is a 503 for every request but one ERROR line per
// warnEvery, the next one counting those dropped.
func TestMisconfiguredLoggedOncePerWindow(t *testing.T) {
	const msg = "authorization server rejected authgate's credentials or request: check OKTA_CLIENT_ID, OKTA_CLIENT_SECRET, OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL"
	now := time.Unix(1_700_000_000, 0)
	misconfigured := &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable", Description: "authorization server unavailable",
		Err: errors.Join(authn.ErrMisconfigured, &introspect.Error{StatusCode: 401, Code: "invalid_client"})}
	o := newObserved(t, func(d *Deps) {
		d.Now = func() time.Time { return now }
		d.Tokens = &fakeTokens{LookupFn: func(context.Context, string) (*authn.Token, authn.Lookup, error) {
			return nil, authn.Miss, misconfigured
		}}
	})
	send := func(n int) {
		t.Helper()
		for range n {
			if w := o.do(http.MethodGet, "/sayhello", obsToken, nil); w.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", w.Code)
			}
		}
	}
	errorLines := func() []float64 {
		t.Helper()
		var out []float64
		for _, l := range o.lines(t) {
			if l["level"] == "ERROR" {
				if l["msg"] != msg {
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
		t.Fatalf("%d ERROR lines (suppressed %v) for 20 requests within %v, want 1", len(got), got, warnEvery)
	}
	now = now.Add(warnEvery - time.Nanosecond)
	send(1)
	if got := errorLines(); len(got) != 1 {
		t.Fatalf("%d ERROR lines within %v, want 1", len(got), warnEvery)
	}
	now = now.Add(time.Nanosecond)
	send(1)
	if got := errorLines(); len(got) != 2 || got[1] != 20 {
		t.Errorf("after %v: ERROR lines suppressed %v, want [0 20]", warnEvery, got)
	}
}
