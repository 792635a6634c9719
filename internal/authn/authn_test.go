package authn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/pkg/introspect"
)

// answer is an introspection answer parsed as the real client parses it, so
// that Aud (string or array) and Raw are what production sees.
func answer(t *testing.T, body string) *introspect.Response {
	t.Helper()
	r, err := introspect.Parse([]byte(body))
	if err != nil {
		t.Fatalf("Parse(%s): %v", body, err)
	}
	r.RateLimit = introspect.RateLimit{Limit: -1, Remaining: -1}
	return r
}

func TestIntrospectionVerifyActive(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	exp := now.Unix() + 60
	for _, tc := range []struct {
		name     string
		body     string
		audience string
		want     authn.Token
	}{
		{
			name: "sub is the subject",
			body: fmt.Sprintf(`{"active":true,"sub":"alice@example.com","client_id":"app","scope":"read_sayhello  openid","exp":%d,"custom":{"a":[1,2]}}`, exp),
			want: authn.Token{Subject: "alice@example.com", ClientID: "app", Scope: "read_sayhello openid", Scopes: []string{"read_sayhello", "openid"}, Exp: exp},
		},
		{
			name: "client_id when there is no sub",
			body: `{"active":true,"client_id":"svc","scope":"read_saysecret"}`,
			want: authn.Token{Subject: "svc", ClientID: "svc", Scope: "read_saysecret", Scopes: []string{"read_saysecret"}},
		},
		{
			name: "scope already normalised is kept",
			body: `{"active":true,"client_id":"svc","scope":"a b"}`,
			want: authn.Token{Subject: "svc", ClientID: "svc", Scope: "a b", Scopes: []string{"a", "b"}},
		},
		{
			name: "runs of spaces in scope normalised",
			body: `{"active":true,"client_id":"svc","scope":" a b  c "}`,
			want: authn.Token{Subject: "svc", ClientID: "svc", Scope: "a b c", Scopes: []string{"a", "b", "c"}},
		},
		{
			// RFC 6749 3.3: scopes are separated by ASCII spaces only;
			// strings.Fields also split on U+00A0 and made "admin" a scope.
			name: "a no-break space is part of a scope",
			body: `{"active":true,"client_id":"svc","scope":"read_sayhello\u00a0admin other"}`,
			want: authn.Token{Subject: "svc", ClientID: "svc", Scope: "read_sayhello\u00a0admin other", Scopes: []string{"read_sayhello\u00a0admin", "other"}},
		},
		{
			name: "other Unicode spaces too",
			body: `{"active":true,"client_id":"svc","scope":"a\u2003b\u3000c"}`,
			want: authn.Token{Subject: "svc", ClientID: "svc", Scope: "a\u2003b\u3000c", Scopes: []string{"a\u2003b\u3000c"}},
		},
		{
			name: "sub null is an absent sub",
			body: `{"active":true,"sub":null,"client_id":"svc"}`,
			want: authn.Token{Subject: "svc", ClientID: "svc", Scopes: []string{}},
		},
		{
			name: "non-ASCII identity passes",
			body: `{"active":true,"sub":"jos\u00e9","client_id":"caf\u00e9"}`,
			want: authn.Token{Subject: "jos\u00e9", ClientID: "caf\u00e9", Scopes: []string{}},
		},
		{
			name: "no scope",
			body: `{"active":true,"sub":"bob"}`,
			want: authn.Token{Subject: "bob", Scopes: []string{}},
		},
		{
			name: "nbf now is valid",
			body: fmt.Sprintf(`{"active":true,"sub":"bob","nbf":%d}`, now.Unix()),
			want: authn.Token{Subject: "bob", Scopes: []string{}},
		},
		{
			name:     "aud string matches",
			body:     `{"active":true,"sub":"bob","aud":"api://authgate"}`,
			audience: "api://authgate",
			want:     authn.Token{Subject: "bob", Scopes: []string{}},
		},
		{
			name:     "aud array contains it",
			body:     `{"active":true,"sub":"bob","aud":["api://other","api://authgate"]}`,
			audience: "api://authgate",
			want:     authn.Token{Subject: "bob", Scopes: []string{}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := answer(t, tc.body)
			fake := &fakeIntrospector{IntrospectFn: func(_ context.Context, token string) (*introspect.Response, error) {
				if token != "tok" {
					t.Errorf("Introspect(%q), want tok", token)
				}
				return r, nil
			}}
			in := &authn.Introspection{Client: fake, Audience: tc.audience, Now: func() time.Time { return now }}
			got, err := in.Verify(context.Background(), "tok")
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Subject != tc.want.Subject || got.ClientID != tc.want.ClientID || got.Scope != tc.want.Scope || got.Exp != tc.want.Exp {
				t.Errorf("Verify = %+v, want %+v", got, tc.want)
			}
			if !slices.Equal(got.Scopes, tc.want.Scopes) {
				t.Errorf("Scopes = %q, want %q", got.Scopes, tc.want.Scopes)
			}
			if got.Validation != authn.ValidationIntrospection {
				t.Errorf("Validation = %q, want %q", got.Validation, authn.ValidationIntrospection)
			}
			if !bytes.Equal(got.Claims, r.Raw) || len(got.Claims) == 0 {
				t.Errorf("Claims = %s, want the raw answer %s", got.Claims, r.Raw)
			}
		})
	}
}

func TestIntrospectionVerifyInvalid(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name     string
		body     string
		audience string
	}{
		{"inactive", `{"active":false}`, ""},
		{"inactive with claims", `{"active":false,"sub":"alice"}`, ""},
		{"expired", fmt.Sprintf(`{"active":true,"sub":"a","exp":%d}`, now.Unix()-1), ""},
		{"expires now", fmt.Sprintf(`{"active":true,"sub":"a","exp":%d}`, now.Unix()), ""},
		{"not yet valid", fmt.Sprintf(`{"active":true,"sub":"a","nbf":%d}`, now.Unix()+1), ""},
		{"aud string differs", `{"active":true,"sub":"a","aud":"api://other"}`, "api://authgate"},
		{"aud array lacks it", `{"active":true,"sub":"a","aud":["api://other","api://authgate/"]}`, "api://authgate"},
		{"aud absent", `{"active":true,"sub":"a"}`, "api://authgate"},
		{"aud of the wrong type", `{"active":true,"sub":"a","aud":42}`, "api://authgate"},
		// Identity that would go into headers: control characters refused,
		// never sent (header injection, log forging).
		{"CR LF in sub", `{"active":true,"sub":"alice\r\nX-Auth-Scopes: admin"}`, ""},
		{"NUL in sub", `{"active":true,"sub":"alice\u0000"}`, ""},
		{"LF in client_id", `{"active":true,"sub":"a","client_id":"app\nx"}`, ""},
		{"tab in scope", `{"active":true,"sub":"a","scope":"read\tadmin"}`, ""},
		{"DEL in scope", `{"active":true,"sub":"a","scope":"read\u007f"}`, ""},
		{"C1 control in sub", `{"active":true,"sub":"a\u0085b"}`, ""},
		{"escape in client_id, no sub", `{"active":true,"client_id":"\u001b[31msvc"}`, ""},
		// A member of the wrong type is not guessed at: no fallback to client_id.
		{"sub a number", `{"active":true,"sub":42,"client_id":"svc"}`, ""},
		{"sub an object", `{"active":true,"sub":{"id":"admin"},"client_id":"svc"}`, ""},
		{"sub an array", `{"active":true,"sub":["admin"],"client_id":"svc"}`, ""},
		{"client_id a number", `{"active":true,"sub":"a","client_id":7}`, ""},
		{"scope an array", `{"active":true,"sub":"a","scope":["admin"]}`, ""},
		{"sub a boolean", `{"active":true,"sub":true,"client_id":"svc"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := answer(t, tc.body)
			fake := &fakeIntrospector{IntrospectFn: func(context.Context, string) (*introspect.Response, error) { return r, nil }}
			in := &authn.Introspection{Client: fake, Audience: tc.audience, Now: func() time.Time { return now }}
			tok, err := in.Verify(context.Background(), "tok")
			if tok != nil {
				t.Errorf("Verify returned a token: %+v", tok)
			}
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != "invalid_token" {
				t.Fatalf("Verify err = %v, want Unauthenticated invalid_token", err)
			}
			if errors.Is(err, authn.ErrMisconfigured) {
				t.Errorf("an invalid token is not a misconfiguration: %v", err)
			}
		})
	}
}

func TestIntrospectionVerifyUpstreamErrors(t *testing.T) {
	retry := time.Unix(1_700_000_030, 0)
	for _, tc := range []struct {
		name         string
		err          error
		misconfig    bool
		wantRetry    time.Time
		wantDescribe string
	}{
		{name: "401 invalid_client", err: &introspect.Error{StatusCode: 401, Code: "invalid_client"}, misconfig: true},
		{name: "400 invalid_client", err: &introspect.Error{StatusCode: 400, Code: "invalid_client"}, misconfig: true},
		{name: "403", err: &introspect.Error{StatusCode: 403}, misconfig: true},
		{name: "429 with reset", err: &introspect.Error{StatusCode: 429, RetryAfter: retry}, wantRetry: retry, wantDescribe: "authorization server rate limit reached"},
		{name: "429 without reset", err: &introspect.Error{StatusCode: 429}, wantDescribe: "authorization server rate limit reached"},
		{name: "500", err: &introspect.Error{StatusCode: 500}},
		{name: "503 with Retry-After", err: &introspect.Error{StatusCode: 503, RetryAfter: retry}, wantRetry: retry},
		{name: "garbage answer", err: &introspect.Error{StatusCode: 200, Err: errors.New("answer is not a JSON object")}},
		{name: "transport", err: &introspect.Error{Err: errors.New("dial tcp: connection refused")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeIntrospector{IntrospectFn: func(context.Context, string) (*introspect.Response, error) { return nil, tc.err }}
			in := &authn.Introspection{Client: fake}
			tok, err := in.Verify(context.Background(), "tok")
			if tok != nil {
				t.Errorf("Verify returned a token: %+v", tok)
			}
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind != fault.Unavailable {
				t.Fatalf("Verify err = %v, want Unavailable", err)
			}
			if got := errors.Is(err, authn.ErrMisconfigured); got != tc.misconfig {
				t.Errorf("errors.Is(err, ErrMisconfigured) = %v, want %v (err %v)", got, tc.misconfig, err)
			}
			// A copy without the server's text (idperrors_test.go).
			var ie *introspect.Error
			if !errors.As(err, &ie) || ie.StatusCode != tc.err.(*introspect.Error).StatusCode {
				t.Errorf("err %v does not wrap the introspection error", err)
			}
			if !fe.RetryAfter.Equal(tc.wantRetry) {
				t.Errorf("RetryAfter = %v, want %v", fe.RetryAfter, tc.wantRetry)
			}
			if tc.wantDescribe != "" && fe.Description != tc.wantDescribe {
				t.Errorf("Description = %q, want %q", fe.Description, tc.wantDescribe)
			}
		})
	}
}

// TestIntrospectionPrivateKeyJWT: with private_key_jwt, authgate's
// credentials refused is also ErrAssertionRejected (the log then names the
// key's variables), still an Unavailable misconfiguration; nothing else is.
func TestIntrospectionPrivateKeyJWT(t *testing.T) {
	for _, tc := range []struct {
		name          string
		privateKeyJWT bool
		err           error
		wantKind      fault.Kind
		wantAssertion bool
	}{
		{name: "invalid_client", privateKeyJWT: true, err: &introspect.Error{StatusCode: 401, Code: "invalid_client"}, wantKind: fault.Unavailable, wantAssertion: true},
		{name: "invalid_client with a secret", err: &introspect.Error{StatusCode: 401, Code: "invalid_client"}, wantKind: fault.Unavailable},
		{name: "500", privateKeyJWT: true, err: &introspect.Error{StatusCode: 500}, wantKind: fault.Unavailable},
		{name: "a per-token 400", privateKeyJWT: true, err: &introspect.Error{StatusCode: 400, Code: "invalid_request"}, wantKind: fault.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeIntrospector{IntrospectFn: func(context.Context, string) (*introspect.Response, error) { return nil, tc.err }}
			in := &authn.Introspection{Client: fake, PrivateKeyJWT: tc.privateKeyJWT}
			_, err := in.Verify(context.Background(), "tok")
			if !fault.Is(err, tc.wantKind) {
				t.Fatalf("Verify err = %v, want kind %v", err, tc.wantKind)
			}
			if got := errors.Is(err, authn.ErrAssertionRejected); got != tc.wantAssertion {
				t.Errorf("errors.Is(err, ErrAssertionRejected) = %v, want %v (err %v)", got, tc.wantAssertion, err)
			}
			if tc.wantAssertion && (!errors.Is(err, authn.ErrMisconfigured) || authn.IsUpstreamFailure(err)) {
				t.Errorf("a refused assertion is a misconfiguration, not an upstream failure: %v", err)
			}
		})
	}
}

// TestNewToken: the rules every validation's token keeps (introspection's
// and a JWT's): sub, else the client id; scopes joined; no control
// character in what goes into headers and logs; scopes that survive being
// joined and split again.
func TestNewToken(t *testing.T) {
	for _, tc := range []struct {
		name          string
		sub, clientID string
		scope         string
		scopes        []string
		want          *authn.Token
		wantDesc      string
	}{
		{name: "scp list", sub: "alice", clientID: "app", scopes: []string{"a", "b"},
			want: &authn.Token{Subject: "alice", ClientID: "app", Scope: "a b", Scopes: []string{"a", "b"}}},
		{name: "client credentials", clientID: "svc", scope: "a", scopes: []string{"a"},
			want: &authn.Token{Subject: "svc", ClientID: "svc", Scope: "a", Scopes: []string{"a"}}},
		{name: "CR in sub", sub: "a\rb", wantDesc: "token sub has a control character"},
		{name: "ESC in client id", clientID: "\x1b[31m", wantDesc: "token client_id has a control character"},
		{name: "C1 in a scope", scopes: []string{"a\u0085"}, wantDesc: "token scope has a control character"},
		{name: "NUL in the scope string", scope: "a\x00", scopes: []string{"a\x00"}, wantDesc: "token scope has a control character"},
		{name: "a space in a scope", scopes: []string{"a b"}, wantDesc: "token scope is not a list of scope tokens"},
		{name: "an empty scope", scopes: []string{""}, wantDesc: "token scope is not a list of scope tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := authn.NewToken(tc.sub, tc.clientID, tc.scope, tc.scopes, 0, nil, authn.ValidationJWT)
			if tc.wantDesc != "" {
				var fe *fault.Error
				if got != nil || !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != "invalid_token" || fe.Description != tc.wantDesc {
					t.Fatalf("NewToken = %+v, %v; want 401 invalid_token %q", got, err, tc.wantDesc)
				}
				return
			}
			tc.want.Validation = authn.ValidationJWT
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("NewToken = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestIntrospectionHooks(t *testing.T) {
	rl := introspect.RateLimit{Limit: 1200, Remaining: 7, Reset: time.Unix(1_700_000_060, 0)}
	active := func(t *testing.T) *introspect.Response {
		r := answer(t, `{"active":true,"sub":"a"}`)
		r.RateLimit = rl
		return r
	}
	for _, tc := range []struct {
		name       string
		introspect func(t *testing.T) (*introspect.Response, error)
		wantResult string
		wantRL     []introspect.RateLimit
	}{
		{
			name:       "active",
			introspect: func(t *testing.T) (*introspect.Response, error) { return active(t), nil },
			wantResult: "active",
			wantRL:     []introspect.RateLimit{rl},
		},
		{
			name: "inactive without rate limit headers",
			introspect: func(t *testing.T) (*introspect.Response, error) {
				return answer(t, `{"active":false}`), nil
			},
			wantResult: "inactive",
		},
		{
			name: "429",
			introspect: func(*testing.T) (*introspect.Response, error) {
				return nil, &introspect.Error{StatusCode: 429, RateLimit: introspect.RateLimit{Limit: 1200, Remaining: 0, Reset: rl.Reset}}
			},
			wantResult: "error",
			wantRL:     []introspect.RateLimit{{Limit: 1200, Remaining: 0, Reset: rl.Reset}},
		},
		{
			name: "500 without rate limit headers",
			introspect: func(*testing.T) (*introspect.Response, error) {
				return nil, &introspect.Error{StatusCode: 500, RateLimit: introspect.RateLimit{Limit: -1, Remaining: -1}}
			},
			wantResult: "error",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var results []string
			var rls []introspect.RateLimit
			in := &authn.Introspection{
				Client:      &fakeIntrospector{IntrospectFn: func(context.Context, string) (*introspect.Response, error) { return tc.introspect(t) }},
				OnRateLimit: func(r introspect.RateLimit) { rls = append(rls, r) },
				OnResult: func(result string, d time.Duration) {
					if d < 0 {
						t.Errorf("OnResult duration %v < 0", d)
					}
					results = append(results, result)
				},
			}
			in.Verify(context.Background(), "tok")
			if !slices.Equal(results, []string{tc.wantResult}) {
				t.Errorf("OnResult calls = %q, want [%q]", results, tc.wantResult)
			}
			if !slices.EqualFunc(rls, tc.wantRL, func(a, b introspect.RateLimit) bool {
				return a.Limit == b.Limit && a.Remaining == b.Remaining && a.Reset.Equal(b.Reset)
			}) {
				t.Errorf("OnRateLimit calls = %+v, want %+v", rls, tc.wantRL)
			}
		})
	}
}

// A transport failure carries no X-Rate-Limit-* headers: OnRateLimit must
// not be told of a limit of 0, which would read as "rate limit exhausted".
func TestIntrospectionTransportErrorReportsNoRateLimit(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // connection refused from now on

	var rls []introspect.RateLimit
	var results []string
	in := &authn.Introspection{
		Client:      &introspect.Client{URL: url + "/v1/introspect", ClientID: "id", ClientSecret: "secret"},
		OnRateLimit: func(r introspect.RateLimit) { rls = append(rls, r) },
		OnResult:    func(result string, _ time.Duration) { results = append(results, result) },
	}
	_, err := in.Verify(context.Background(), "tok")
	if !fault.Is(err, fault.Unavailable) || errors.Is(err, authn.ErrMisconfigured) {
		t.Fatalf("Verify err = %v, want Unavailable, not misconfigured", err)
	}
	if len(rls) != 0 {
		t.Errorf("OnRateLimit called with %+v for a transport error", rls)
	}
	if !slices.Equal(results, []string{"error"}) {
		t.Errorf("OnResult calls = %q, want [error]", results)
	}
}

func TestIntrospectionPassesContext(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	in := &authn.Introspection{Client: &fakeIntrospector{IntrospectFn: func(got context.Context, _ string) (*introspect.Response, error) {
		if got.Value(key{}) != "v" {
			t.Error("Introspect did not get the caller's context")
		}
		return answer(t, `{"active":false}`), nil
	}}}
	in.Verify(ctx, "tok")
}

// guarded is Guarded over a fake Introspection, as production stacks it.
func guarded(t *testing.T, introspectFn func(context.Context, string) (*introspect.Response, error), now func() time.Time) (*authn.Guarded, *fakeIntrospector, *breaker.Breaker) {
	t.Helper()
	fake := &fakeIntrospector{IntrospectFn: introspectFn}
	b := breaker.New(breaker.Settings{Name: "idp", Failures: 3, OpenTimeout: time.Hour, IsFailure: authn.IsUpstreamFailure, Now: now})
	return &authn.Guarded{Next: &authn.Introspection{Client: fake}, Breaker: b}, fake, b
}

func TestGuardedOpensAfterConsecutiveFailures(t *testing.T) {
	g, fake, b := guarded(t, func(context.Context, string) (*introspect.Response, error) {
		return nil, &introspect.Error{StatusCode: 502}
	}, nil)
	for i := range 3 {
		_, err := g.Verify(context.Background(), "tok")
		if !fault.Is(err, fault.Unavailable) || errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("call %d: err = %v, want the upstream's Unavailable", i, err)
		}
	}
	if got := fake.calls.Load(); got != 3 {
		t.Fatalf("introspections = %d, want 3", got)
	}
	if b.State() != breaker.Open {
		t.Fatalf("State = %v after 3 failures, want open", b.State())
	}
	for range 5 {
		tok, err := g.Verify(context.Background(), "tok")
		var fe *fault.Error
		if tok != nil || !errors.As(err, &fe) || fe.Kind != fault.Unavailable || !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("open breaker: Verify = %v, %v; want Unavailable wrapping ErrOpen", tok, err)
		}
		if fe.RetryAfter.IsZero() {
			t.Error("open breaker: RetryAfter not set")
		}
	}
	if got := fake.calls.Load(); got != 3 {
		t.Errorf("introspections = %d with the breaker open, want still 3", got)
	}
}

func TestGuardedSuccessResetsFailureCount(t *testing.T) {
	fail := true
	g, _, b := guarded(t, func(context.Context, string) (*introspect.Response, error) {
		if fail {
			return nil, &introspect.Error{StatusCode: 500}
		}
		return answer(t, `{"active":true,"sub":"a"}`), nil
	}, nil)
	for _, f := range []bool{true, true, false, true, true, false, true, true} {
		fail = f
		g.Verify(context.Background(), "tok")
	}
	if b.State() != breaker.Closed {
		t.Errorf("State = %v; failures were never 3 in a row", b.State())
	}
}

func TestGuardedInactiveTokensNeverOpen(t *testing.T) {
	g, fake, b := guarded(t, func(context.Context, string) (*introspect.Response, error) {
		return answer(t, `{"active":false}`), nil
	}, nil)
	for range 20 {
		_, err := g.Verify(context.Background(), "garbage")
		if !fault.Is(err, fault.Unauthenticated) {
			t.Fatalf("err = %v, want Unauthenticated", err)
		}
	}
	if b.State() != breaker.Closed {
		t.Errorf("State = %v after inactive answers, want closed", b.State())
	}
	if got := fake.calls.Load(); got != 20 {
		t.Errorf("introspections = %d, want 20", got)
	}
}

func TestGuarded429HoldsUntilReset(t *testing.T) {
	clk := newClock()
	reset := clk.Now().Add(30 * time.Second)
	g, fake, b := guarded(t, func(context.Context, string) (*introspect.Response, error) {
		return nil, &introspect.Error{StatusCode: 429, RetryAfter: reset}
	}, clk.Now)

	_, err := g.Verify(context.Background(), "tok")
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Kind != fault.Unavailable || !fe.RetryAfter.Equal(reset) {
		t.Fatalf("429: err = %v, want Unavailable with RetryAfter %v", err, reset)
	}
	if got := b.HeldUntil(); !got.Equal(reset) {
		t.Fatalf("HeldUntil = %v, want %v", got, reset)
	}

	clk.Add(29 * time.Second)
	_, err = g.Verify(context.Background(), "tok")
	if !errors.Is(err, breaker.ErrHeld) || !errors.As(err, &fe) || !fe.RetryAfter.Equal(reset) {
		t.Fatalf("held: err = %v, want ErrHeld with RetryAfter %v", err, reset)
	}
	if got := fake.calls.Load(); got != 1 {
		t.Fatalf("introspections while held = %d, want 1", got)
	}

	clk.Add(time.Second)
	if got := b.HeldUntil(); !got.IsZero() {
		t.Errorf("HeldUntil at the reset = %v, want zero", got)
	}
	g.Verify(context.Background(), "tok")
	if got := fake.calls.Load(); got != 2 {
		t.Errorf("introspections after the reset = %d, want 2", got)
	}
}

// A reset a day away holds (and is announced) only as long as the breaker's
// bound, the first answer included.
func TestGuarded429FarResetIsBounded(t *testing.T) {
	clk := newClock()
	g, _, b := guarded(t, func(context.Context, string) (*introspect.Response, error) {
		return nil, &introspect.Error{StatusCode: 429, RetryAfter: clk.Now().Add(24 * time.Hour)}
	}, clk.Now)
	_, err := g.Verify(context.Background(), "tok")
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.RetryAfter.IsZero() || !fe.RetryAfter.Equal(b.HeldUntil()) {
		t.Fatalf("429: err = %v, want RetryAfter = HeldUntil %v", err, b.HeldUntil())
	}
	if d := fe.RetryAfter.Sub(clk.Now()); d > time.Hour {
		t.Errorf("Retry-After %v from now, want the bounded hold", d)
	}
}

func TestGuarded429WithoutResetDoesNotHold(t *testing.T) {
	g, _, b := guarded(t, func(context.Context, string) (*introspect.Response, error) {
		return nil, &introspect.Error{StatusCode: 429}
	}, nil)
	g.Verify(context.Background(), "tok")
	if got := b.HeldUntil(); !got.IsZero() {
		t.Errorf("HeldUntil = %v, want zero", got)
	}
}
