package authn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/pkg/introspect"
)

// TestIntrospectionPerTokenRejection: a 4xx the server gives for one token
// (400 other than a client error, the token too large, 401/403
// invalid_token) is that token's answer: 401 invalid_token, never an
// outage, never authgate's configuration.
func TestIntrospectionPerTokenRejection(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *introspect.Error
	}{
		{"400 invalid_request", &introspect.Error{StatusCode: 400, Code: "invalid_request", Description: "bad token"}},
		{"400 without a body", &introspect.Error{StatusCode: 400}},
		{"400 invalid_token", &introspect.Error{StatusCode: 400, Code: "invalid_token"}},
		{"400 Okta errorCode", &introspect.Error{StatusCode: 400, Code: "E0000001", Description: "Api validation failed: token"}},
		{"401 invalid_token", &introspect.Error{StatusCode: 401, Code: "invalid_token"}},
		{"403 invalid_token", &introspect.Error{StatusCode: 403, Code: "invalid_token"}},
		{"413", &introspect.Error{StatusCode: 413}},
		{"414", &introspect.Error{StatusCode: 414}},
		{"422", &introspect.Error{StatusCode: 422, Code: "unprocessable"}},
		{"431", &introspect.Error{StatusCode: 431}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var results []string
			in := &authn.Introspection{
				Client:   &fakeIntrospector{IntrospectFn: func(context.Context, string) (*introspect.Response, error) { return nil, tc.err }},
				OnResult: func(r string, _ time.Duration) { results = append(results, r) },
			}
			tok, err := in.Verify(context.Background(), "tok")
			var fe *fault.Error
			if tok != nil || !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != "invalid_token" {
				t.Fatalf("Verify = %v, %v; want Unauthenticated invalid_token", tok, err)
			}
			if errors.Is(err, authn.ErrMisconfigured) || authn.IsUpstreamFailure(err) {
				t.Errorf("a per-token rejection counted as misconfiguration or upstream failure: %v", err)
			}
			if len(results) != 1 || results[0] != "inactive" {
				t.Errorf("OnResult %v, want [inactive]", results)
			}
		})
	}
}

// TestIntrospectionMisconfiguredIsNoUpstreamFailure: authgate's own
// credentials or endpoint refused is a 503 and ErrMisconfigured, but not a
// failure of the server, so it never opens the breaker.
func TestIntrospectionMisconfiguredIsNoUpstreamFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *introspect.Error
	}{
		{"401 invalid_client", &introspect.Error{StatusCode: 401, Code: "invalid_client"}},
		{"400 invalid_client", &introspect.Error{StatusCode: 400, Code: "invalid_client"}},
		{"400 unauthorized_client", &introspect.Error{StatusCode: 400, Code: "unauthorized_client"}},
		{"401 without a body", &introspect.Error{StatusCode: 401}},
		{"403 without a body", &introspect.Error{StatusCode: 403}},
		{"403 access_denied", &introspect.Error{StatusCode: 403, Code: "access_denied"}},
		{"404 (wrong OKTA_INTROSPECT_URL)", &introspect.Error{StatusCode: 404}},
		{"405", &introspect.Error{StatusCode: 405}},
		{"415", &introspect.Error{StatusCode: 415}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &authn.Introspection{Client: &fakeIntrospector{IntrospectFn: func(context.Context, string) (*introspect.Response, error) { return nil, tc.err }}}
			_, err := in.Verify(context.Background(), "tok")
			if !fault.Is(err, fault.Unavailable) || !errors.Is(err, authn.ErrMisconfigured) {
				t.Fatalf("Verify err = %v, want Unavailable ErrMisconfigured", err)
			}
			if authn.IsUpstreamFailure(err) {
				t.Errorf("authgate's own misconfiguration counts against the server's breaker: %v", err)
			}
		})
	}
	for _, code := range []int{0, 408, 429, 500, 503} {
		in := &authn.Introspection{Client: &fakeIntrospector{IntrospectFn: func(context.Context, string) (*introspect.Response, error) {
			return nil, &introspect.Error{StatusCode: code, Code: "invalid_client"}
		}}}
		if _, err := in.Verify(context.Background(), "tok"); !authn.IsUpstreamFailure(err) || errors.Is(err, authn.ErrMisconfigured) {
			t.Errorf("status %d: %v, want an upstream failure", code, err)
		}
	}
}

// hostileIdP is an RFC 7662 server that answers 400 for tokens starting
// with "hostile", its error_description echoing the token, and active for
// the others; it counts calls.
func hostileIdP(t *testing.T, status int, code string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		tok := r.PostFormValue("token")
		w.Header().Set("Content-Type", "application/json")
		if !strings.HasPrefix(tok, "hostile") {
			w.Write([]byte(`{"active":true,"sub":"alice","scope":"read"}`))
			return
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code,
			"error_description": "token " + tok + " is malformed; prefix " + tok[:12] + " Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// stack is the production order over a real introspect.Client: cache,
// breaker (3 failures), introspection, logging at debug into logs.
func stack(t *testing.T, url string, logs *bytes.Buffer) (*authn.Cache, *breaker.Breaker) {
	t.Helper()
	b := breaker.New(breaker.Settings{Name: "idp", Failures: 3, OpenTimeout: time.Hour, IsFailure: authn.IsUpstreamFailure})
	in := &authn.Introspection{
		Client: &introspect.Client{URL: url, ClientID: "authgate", ClientSecret: "s3cret"},
		Log:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	return newCache(t, &authn.Guarded{Next: in, Breaker: b}, authn.CacheSettings{TTL: time.Minute, NegativeTTL: time.Minute}), b
}

// TestCallerCannotOpenBreaker: tokens the server answers 400 for are 401
// invalid_token, negatively cached, and however many there are the breaker
// stays closed: other users' new tokens are still introspected.
func TestCallerCannotOpenBreaker(t *testing.T) {
	srv, calls := hostileIdP(t, http.StatusBadRequest, "invalid_request")
	var logs bytes.Buffer
	c, b := stack(t, srv.URL, &logs)
	var sent []string
	for i := range 10 {
		tok := "hostile-" + strings.Repeat(string(rune('a'+i)), 30)
		sent = append(sent, tok)
		_, err := lookup(t, c, tok, authn.Miss)
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != "invalid_token" {
			t.Fatalf("hostile token %d: %v, want 401 invalid_token", i, err)
		}
	}
	if b.State() != breaker.Closed {
		t.Fatalf("breaker %v after 10 per-token 400s, want closed", b.State())
	}
	if _, err := lookup(t, c, sent[0], authn.Hit); !fault.Is(err, fault.Unauthenticated) {
		t.Errorf("the same hostile token again: %v, want the cached 401", err)
	}
	if got := calls.Load(); got != 10 {
		t.Errorf("%d introspections, want 10 (the repeat is negatively cached)", got)
	}
	if tok, err := lookup(t, c, "good-token-of-another-user", authn.Miss); err != nil || tok.Subject != "alice" {
		t.Errorf("another user's new token: %v, %v", tok, err)
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"DEBUG"`) || !strings.Contains(out, "invalid_request") {
		t.Errorf("the server's error not logged at debug:\n%s", out)
	}
	for _, tok := range sent {
		if strings.Contains(out, tok) || strings.Contains(out, tok[:12]) {
			t.Fatalf("a token appears in the logs:\n%s", out)
		}
	}
	if strings.Contains(out, "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA") {
		t.Errorf("a token-like run appears in the logs:\n%s", out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["level"] != "DEBUG" {
			t.Errorf("server error text logged above debug: %s", l)
		}
		if d, _ := m["description"].(string); len(d) > 200 {
			t.Errorf("description of %d bytes logged, want at most 200", len(d))
		}
	}
}

// TestMisconfiguredErrorHidesServerText: an invalid_client answer keeps its
// status and code in the error (for the ERROR line) but not the server's
// description, which may echo the token.
func TestMisconfiguredErrorHidesServerText(t *testing.T) {
	srv, _ := hostileIdP(t, http.StatusUnauthorized, "invalid_client")
	var logs bytes.Buffer
	c, b := stack(t, srv.URL, &logs)
	tok := "hostile-" + strings.Repeat("x", 40)
	for range 10 {
		_, err := lookup(t, c, tok, authn.Miss)
		if !fault.Is(err, fault.Unavailable) || !errors.Is(err, authn.ErrMisconfigured) {
			t.Fatalf("invalid_client: %v, want Unavailable ErrMisconfigured", err)
		}
		if s := err.Error(); strings.Contains(s, "xxxxxxxx") || strings.Contains(s, "malformed") || !strings.Contains(s, "401 invalid_client") {
			t.Fatalf("error text %q: want status and code, not the server's description", s)
		}
		var ie *introspect.Error
		if !errors.As(err, &ie) || ie.StatusCode != 401 {
			t.Fatalf("error %v does not carry the introspection status", err)
		}
	}
	if b.State() != breaker.Closed {
		t.Errorf("breaker %v after invalid_client answers, want closed", b.State())
	}
	if strings.Contains(logs.String(), "xxxxxxxx") {
		t.Errorf("the token appears in the logs:\n%s", logs.String())
	}
}
