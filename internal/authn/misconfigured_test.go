package authn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/lograte"
	"github.com/authgate/authgate/pkg/introspect"
)

// TestMisconfiguredLoggedOncePerWindow: authgate's credentials refused
// (invalid_client) is Unavailable for every call but one ERROR line per
// lograte.Every, naming the OKTA_* variables to check, the next one
// counting those dropped. With private_key_jwt the line names the key's
// variables instead of the secret's. The introspection side says it: it
// is the one that knows the variables.
func TestMisconfiguredLoggedOncePerWindow(t *testing.T) {
	for _, tc := range []struct {
		name          string
		privateKeyJWT bool
		msg           string
	}{
		{name: "client secret",
			msg: "authorization server rejected authgate's credentials or request: check OKTA_CLIENT_ID, OKTA_CLIENT_SECRET, OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL"},
		{name: "private_key_jwt", privateKeyJWT: true,
			msg: "authorization server rejected authgate's client assertion: check OKTA_CLIENT_ID, OKTA_PRIVATE_KEY_FILE and OKTA_PRIVATE_KEY_ID (the key registered for the client), OKTA_AUTH_METHOD and OKTA_INTROSPECT_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			clk := newClock()
			in := &authn.Introspection{
				Client: &fakeIntrospector{IntrospectFn: func(context.Context, string) (*introspect.Response, error) {
					return nil, &introspect.Error{StatusCode: 401, Code: "invalid_client", Description: "secret-ish server text"}
				}},
				Now: clk.Now, Log: slog.New(slog.NewJSONHandler(&buf, nil)), PrivateKeyJWT: tc.privateKeyJWT,
			}
			call := func(n int) {
				t.Helper()
				for range n {
					if _, err := in.Verify(context.Background(), "tok"); !fault.Is(err, fault.Unavailable) {
						t.Fatalf("err %v, want Unavailable", err)
					}
				}
			}
			errorLines := func() []float64 {
				t.Helper()
				var out []float64
				for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
					var m map[string]any
					if l == "" || json.Unmarshal([]byte(l), &m) != nil || m["level"] != "ERROR" {
						continue
					}
					if m["msg"] != tc.msg {
						t.Errorf("unexpected ERROR line %v", m)
					}
					if strings.Contains(l, "secret-ish") {
						t.Errorf("the server's text above debug: %s", l)
					}
					s, _ := m["suppressed"].(float64)
					out = append(out, s)
				}
				return out
			}
			call(20)
			if got := errorLines(); len(got) != 1 || got[0] != 0 {
				t.Fatalf("%d ERROR lines (suppressed %v) for 20 calls within %v, want 1", len(got), got, lograte.Every)
			}
			clk.Add(lograte.Every - time.Nanosecond)
			call(1)
			if got := errorLines(); len(got) != 1 {
				t.Fatalf("%d ERROR lines within %v, want 1", len(got), lograte.Every)
			}
			clk.Add(time.Nanosecond)
			call(1)
			if got := errorLines(); len(got) != 2 || got[1] != 20 {
				t.Errorf("after %v: ERROR lines suppressed %v, want [0 20]", lograte.Every, got)
			}
		})
	}
}
