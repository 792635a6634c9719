package tokens

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/gateway"
)

// fakeIssuer stands in for one authorization server: it counts the
// introspections it answers (every token active), and serves its own
// signing key as a JWKS.
type fakeIssuer struct {
	*httptest.Server
	key            *ecdsa.PrivateKey
	introspections atomic.Int32
	revocations    atomic.Int32
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIssuer{key: key}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/introspect":
			f.introspections.Add(1)
			io.WriteString(w, `{"active":true,"sub":"alice","aud":"api://x","exp":4102444800}`)
		case "/revoke":
			f.revocations.Add(1)
		case "/keys":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

// jwt is a JWT of iss for api://x, signed by f's key.
func (f *fakeIssuer) jwt(t *testing.T, iss string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := json.Marshal(map[string]any{"iss": iss, "aud": "api://x", "sub": "bob", "jti": rand.Text(),
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	obj, err := s.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRoute: with ISSUERS set, each token goes to exactly one issuer, by
// docs/issuers.md's rules, and is answered by that issuer's own chain:
// a JWT by its iss (an unknown iss, or another issuer's signature, to
// none), an opaque token by OPAQUE_PATHS, else to the primary; one
// issuer's cache never answers for another's token; the lookup names the
// issuer it chose (r.Issuer, the policy's input.issuer).
func TestRoute(t *testing.T) {
	a, b, c := newFakeIssuer(t), newFakeIssuer(t), newFakeIssuer(t)
	toks := build(t, a.Server, map[string]string{
		// The primary (a) introspects; b is hybrid (its JWTs validated
		// locally, their verdict final); c introspects, and takes the
		// opaque tokens of /c/* (e2e's TestIssuers has a jwt issuer).
		"ISSUERS":                   "b,c",
		"ISSUER_B_URL":              b.URL,
		"ISSUER_B_TOKEN_VALIDATION": "hybrid",
		"ISSUER_B_INTROSPECT_URL":   b.URL + "/introspect",
		"ISSUER_B_CLIENT_ID":        "authgate-b",
		"ISSUER_B_CLIENT_SECRET":    "s3cret-b",
		"ISSUER_B_JWKS_URL":         b.URL + "/keys",
		"ISSUER_B_AUDIENCE":         "api://x",
		"ISSUER_C_URL":              c.URL,
		"ISSUER_C_INTROSPECT_URL":   c.URL + "/introspect",
		"ISSUER_C_CLIENT_ID":        "authgate-c",
		"ISSUER_C_CLIENT_SECRET":    "s3cret-c",
		"ISSUER_C_AUDIENCE":         "api://x",
		"ISSUER_C_OPAQUE_PATHS":     "/c/*",
		"OKTA_INTROSPECT_URL":       a.URL + "/introspect",
		"OKTA_JWKS_URL":             a.URL + "/keys",
		"ISSUER_C_TOKEN_VALIDATION": "introspect",
	})
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		path       string
		token      string
		wantIssuer string // the issuer chosen; "" = none
		refused    bool
		wantCalls  [3]int32
	}{
		{"opaque elsewhere: the primary", "/x", "opaque-1", a.URL, false, [3]int32{1, 0, 0}},
		{"the same opaque token, cached at the primary", "/x", "opaque-1", a.URL, false, [3]int32{0, 0, 0}},
		{"the same opaque token on c's OPAQUE_PATHS: c, never the primary's cache", "/c/y", "opaque-1", c.URL, false, [3]int32{0, 0, 1}},
		{"c's path rule is exact: /c itself is the primary's", "/c", "opaque-2", a.URL, false, [3]int32{1, 0, 0}},
		{"a JWT of b: verified by b's keys, no introspection", "/c/y", b.jwt(t, b.URL), b.URL, false, [3]int32{0, 0, 0}},
		{"a JWT of c: introspected at c alone, whatever the path", "/x", c.jwt(t, c.URL), c.URL, false, [3]int32{0, 0, 1}},
		{"a JWT of the primary: introspected at the primary", "/c/y", a.jwt(t, a.URL), a.URL, false, [3]int32{1, 0, 0}},
		{"a JWT of an unknown issuer: refused, sent nowhere", "/x", a.jwt(t, "https://evil.example"), "", true, [3]int32{0, 0, 0}},
		{"a JWT naming b signed by c's key: refused, sent nowhere", "/x", c.jwt(t, b.URL), b.URL, true, [3]int32{0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := [3]int32{a.introspections.Load(), b.introspections.Load(), c.introspections.Load()}
			r := &authn.Request{Method: "GET", Path: tc.path}
			tok, _, err := toks.Lookup(ctx, r, tc.token)
			calls := [3]int32{a.introspections.Load() - before[0], b.introspections.Load() - before[1], c.introspections.Load() - before[2]}
			if calls != tc.wantCalls {
				t.Errorf("introspections at the primary, b, c = %v, want %v", calls, tc.wantCalls)
			}
			if r.Issuer != tc.wantIssuer {
				t.Errorf("r.Issuer = %q, want %q", r.Issuer, tc.wantIssuer)
			}
			if tc.refused {
				var fe *fault.Error
				if err == nil || !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated {
					t.Fatalf("lookup = %v, %v; want an Unauthenticated error", tok, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("lookup: %v", err)
			}
		})
	}
}

// TestRouteWithoutIssuers: without ISSUERS the primary answers every
// token as before: in hybrid mode, a JWT of another issuer is introspected
// at the primary, not refused.
func TestRouteWithoutIssuers(t *testing.T) {
	a, other := newFakeIssuer(t), newFakeIssuer(t)
	toks := build(t, a.Server, map[string]string{"TOKEN_VALIDATION": "hybrid",
		"OKTA_INTROSPECT_URL": a.URL + "/introspect", "OKTA_JWKS_URL": a.URL + "/keys"})
	r := &authn.Request{Method: "GET", Path: "/x"}
	if _, _, err := toks.Lookup(context.Background(), r, other.jwt(t, other.URL)); err != nil {
		t.Fatalf("lookup: %v", err)
	}
	if n := a.introspections.Load(); n != 1 {
		t.Errorf("introspections at the primary = %d, want 1", n)
	}
	if r.Issuer != a.URL {
		t.Errorf("r.Issuer = %q, want the primary's %q", r.Issuer, a.URL)
	}
}

// TestRevokeRoutes: POST /revoke's upstream revocation goes to the
// token's own issuer (REVOKE_UPSTREAM), routed like a lookup: a JWT to the
// issuer its iss names, a JWT of no configured issuer to none; an opaque
// token to the issuer the form names, else to the one whose cache holds
// its answer, else to the primary. A name that is not configured, or that
// a JWT's iss contradicts, revokes nothing. The token is dropped from
// every cache all the same. (Its shared tiers: TestIssuersFleet,
// test/e2e.)
func TestRevokeRoutes(t *testing.T) {
	a, b := newFakeIssuer(t), newFakeIssuer(t)
	toks := build(t, a.Server, map[string]string{
		"REVOKE_UPSTREAM": "true", "ADMIN_API_TOKEN": "0123456789abcdef0123456789abcdef", "OKTA_REVOKE_URL": a.URL + "/revoke",
		"ISSUERS": "b", "ISSUER_B_URL": b.URL, "ISSUER_B_INTROSPECT_URL": b.URL + "/introspect",
		"ISSUER_B_REVOKE_URL": b.URL + "/revoke", "ISSUER_B_CLIENT_ID": "authgate-b", "ISSUER_B_CLIENT_SECRET": "s3cret-b",
		"ISSUER_B_OPAQUE_PATHS": "/b/*",
	})
	revoke := toks.Revoker()
	ctx := context.Background()
	bJWT := b.jwt(t, b.URL)
	for _, tc := range []struct {
		name       string
		token      string
		issuer     string   // the form's
		lookupPath string   // looked up there first, when set
		upstream   string   // "" = refused
		want       [2]int32 // revocations at a, b
	}{
		{name: "a JWT of b: at b", token: bJWT, lookupPath: "/x", upstream: "revoked", want: [2]int32{0, 1}},
		{name: "a JWT of b named for b: at b", token: b.jwt(t, b.URL), issuer: "b", upstream: "revoked", want: [2]int32{0, 1}},
		{name: "a JWT of b named for the primary: refused", token: b.jwt(t, b.URL), issuer: "primary"},
		{name: "an opaque token: at the primary", token: "opaque-1", upstream: "revoked", want: [2]int32{1, 0}},
		{name: "an opaque token b answered: at b", token: "opaque-2", lookupPath: "/b/x", upstream: "revoked", want: [2]int32{0, 1}},
		{name: "an opaque token named for b: at b", token: "opaque-3", issuer: "b", upstream: "revoked", want: [2]int32{0, 1}},
		{name: "an opaque token the primary answered, named for b: at b", token: "opaque-4", lookupPath: "/x", issuer: "b", upstream: "revoked", want: [2]int32{0, 1}},
		{name: "an issuer not configured: refused", token: "opaque-5", issuer: "c"},
		{name: "a JWT of no configured issuer: nowhere", token: b.jwt(t, "https://evil.example"), upstream: "off"},
	} {
		if tc.lookupPath != "" {
			if _, _, err := toks.Lookup(ctx, &authn.Request{Method: "GET", Path: tc.lookupPath}, tc.token); err != nil {
				t.Fatalf("%s: lookup before the revocation: %v", tc.name, err)
			}
		}
		before := [2]int32{a.revocations.Load(), b.revocations.Load()}
		res, err := revoke(ctx, gateway.RevokeRequest{Token: tc.token, Issuer: tc.issuer})
		got := [2]int32{a.revocations.Load() - before[0], b.revocations.Load() - before[1]}
		if tc.upstream == "" {
			if !fault.Is(err, fault.BadRequest) || got != [2]int32{} {
				t.Errorf("%s: %v, revocations at a, b = %v; want refused, none", tc.name, err, got)
			}
			if tc.lookupPath == "" {
				// Nothing revoked: the token still passes.
				if _, _, err := toks.Lookup(ctx, &authn.Request{Method: "GET", Path: "/x"}, tc.token); err != nil {
					t.Errorf("%s: after the refusal: %v", tc.name, err)
				}
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want || res.Upstream != tc.upstream {
			t.Errorf("%s: revocations at a, b = %v, upstream %q; want %v, %q", tc.name, got, res.Upstream, tc.want, tc.upstream)
		}
	}
	before := b.introspections.Load()
	if _, _, err := toks.Lookup(ctx, &authn.Request{Method: "GET", Path: "/x"}, bJWT); err == nil {
		t.Error("b's revoked JWT passed")
	}
	if b.introspections.Load() != before {
		t.Error("b's revoked JWT was introspected again")
	}
}

// TestClientBudgetAcrossIssuers: OKTA_MAX_RPS_PER_CLIENT is one client's
// budget whichever issuer its tokens go to: a client that spent it on the
// primary is refused at org too, without asking org.
func TestClientBudgetAcrossIssuers(t *testing.T) {
	a, b := newFakeIssuer(t), newFakeIssuer(t)
	toks := build(t, a.Server, map[string]string{"OKTA_MAX_RPS_PER_CLIENT": "1",
		"ISSUERS": "org", "ISSUER_ORG_URL": b.URL, "ISSUER_ORG_INTROSPECT_URL": b.URL + "/introspect",
		"ISSUER_ORG_CLIENT_ID": "authgate-org", "ISSUER_ORG_CLIENT_SECRET": "s3cret-org", "ISSUER_ORG_OPAQUE_PATHS": "/org/*"})
	ctx := authn.WithClient(context.Background(), "192.0.2.7")
	if _, _, err := toks.Lookup(ctx, &authn.Request{Method: "GET", Path: "/x"}, "opaque-a"); err != nil {
		t.Fatalf("the client's first token: %v", err)
	}
	_, _, err := toks.Lookup(ctx, &authn.Request{Method: "GET", Path: "/org/x"}, "opaque-b")
	if !errors.Is(err, authn.ErrClientOverBudget) {
		t.Errorf("the client's second token, at org: %v, want its budget spent", err)
	}
	if n := b.introspections.Load(); n != 0 {
		t.Errorf("org was asked %d times", n)
	}
}

// TestServerTextNamesIssuer: the lines authn writes when an issuer's
// server refused authgate's credentials (the ERROR line, and at debug what
// the server said) name that issuer: with several, an operator must know
// whose credentials to check.
func TestServerTextNamesIssuer(t *testing.T) {
	a := newFakeIssuer(t)
	org := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_client","error_description":"client authentication failed"}`)
	}))
	defer org.Close()
	var buf syncBuffer
	toks := buildLogged(t, a.Server, map[string]string{
		"ISSUERS": "org", "ISSUER_ORG_URL": org.URL, "ISSUER_ORG_INTROSPECT_URL": org.URL + "/introspect",
		"ISSUER_ORG_CLIENT_ID": "authgate-org", "ISSUER_ORG_CLIENT_SECRET": "s3cret-org", "ISSUER_ORG_OPAQUE_PATHS": "/org/*",
	}, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if _, _, err := toks.Lookup(context.Background(), &authn.Request{Method: "GET", Path: "/org/x"}, "opaque-1"); err == nil {
		t.Fatal("org refused authgate, the token passed")
	}
	for _, msg := range []string{`level=ERROR msg="authorization server rejected`, `level=DEBUG msg="authorization server error"`} {
		var line string
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, msg) {
				line = l
			}
		}
		if !strings.Contains(line, "issuer=org") {
			t.Errorf("%s: logged as %q, which does not name issuer org", msg, line)
		}
		// The ERROR line names org's variables, not the primary's.
		if strings.Contains(msg, "ERROR") && (!strings.Contains(line, "ISSUER_ORG_CLIENT_ID") || strings.Contains(line, "OKTA_")) {
			t.Errorf("%s: logged as %q, which does not name org's variables", msg, line)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
