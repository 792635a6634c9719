package jwtauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/jwtauth"
	"github.com/authgate/authgate/internal/tokenid"
)

var now = time.Unix(1_900_000_000, 0)

func newVerifier(t testing.TB, url string, clk *clock) (*jwtauth.Verifier, *[]string) {
	keys := jwtauth.NewKeys(jwtauth.KeySettings{URL: url, Timeout: time.Second, Now: clk.Now})
	var results []string
	return &jwtauth.Verifier{
		Keys: keys, Issuer: issuer, Audience: audience,
		Algorithms: []jose.SignatureAlgorithm{jose.RS256, jose.ES256},
		Leeway:     30 * time.Second, Now: clk.Now,
		OnResult: func(r string) { results = append(results, r) },
	}, &results
}

func with(c map[string]any, kv ...any) map[string]any {
	c = maps.Clone(c)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func TestVerify(t *testing.T) {
	rsaKey, ecKey, other := newRSAKey(t, "k1"), newECKey(t, "k2"), newRSAKey(t, "k1")
	rs384 := rsaKey
	rs384.alg = jose.RS384
	jwks := newJWKSServer(t, rsaKey, ecKey)
	claims := okta(now)
	tests := []struct {
		name     string
		token    string
		typ      string
		wantDesc string // "" = valid
	}{
		{name: "RS256", token: rsaKey.sign(t, claims, nil)},
		{name: "ES256", token: ecKey.sign(t, claims, nil)},
		{name: "aud array", token: rsaKey.sign(t, with(claims, "aud", []string{"api://other", audience}), nil)},
		{name: "expired within leeway", token: rsaKey.sign(t, with(claims, "exp", now.Add(-10*time.Second).Unix()), nil)},
		{name: "nbf within leeway", token: rsaKey.sign(t, with(claims, "nbf", now.Add(10*time.Second).Unix()), nil)},
		{name: "typ checked", typ: "at+jwt", token: rsaKey.sign(t, claims, nil)},
		{name: "typ checked, media type form", typ: "application/at+jwt", token: rsaKey.sign(t, claims, nil)},
		{name: "bad signature", token: other.sign(t, claims, nil), wantDesc: "token signature is invalid"},
		{name: "tampered payload", token: tamper(rsaKey.sign(t, claims, nil)), wantDesc: "token signature is invalid"},
		{name: "alg none", token: unsigned("k1", claims), wantDesc: "token is not a JWT signed with an accepted algorithm"},
		{name: "HS256 keyed with the public key", token: hmacWithPublicKey(t, rsaKey, claims), wantDesc: "token is not a JWT signed with an accepted algorithm"},
		{name: "algorithm not listed", token: rs384.sign(t, claims, nil), wantDesc: "token is not a JWT signed with an accepted algorithm"},
		{name: "wrong issuer", token: rsaKey.sign(t, with(claims, "iss", issuer+"/"), nil), wantDesc: "token issuer not accepted"},
		{name: "no issuer", token: rsaKey.sign(t, with(claims, "iss", nil), nil), wantDesc: "token issuer not accepted"},
		// Hostile claims: what a claim of the wrong name, type or range means.
		{name: "ISS in capitals", token: rsaKey.sign(t, with(claims, "iss", nil, "ISS", issuer), nil), wantDesc: "token issuer not accepted"},
		{name: "iss a number", token: rsaKey.sign(t, with(claims, "iss", 7), nil), wantDesc: "token issuer not accepted"},
		{name: "iss an array", token: rsaKey.sign(t, with(claims, "iss", []string{issuer}), nil), wantDesc: "token issuer not accepted"},
		{name: "AUD in capitals", token: rsaKey.sign(t, with(claims, "aud", nil, "AUD", audience), nil), wantDesc: "token audience not accepted"},
		{name: "aud a number", token: rsaKey.sign(t, with(claims, "aud", 7), nil), wantDesc: "token audience not accepted"},
		{name: "aud an object", token: rsaKey.sign(t, with(claims, "aud", map[string]any{audience: true}), nil), wantDesc: "token audience not accepted"},
		{name: "aud array with other types", token: rsaKey.sign(t, with(claims, "aud", []any{7, nil, audience}), nil)},
		{name: "exp negative", token: rsaKey.sign(t, with(claims, "exp", -1), nil), wantDesc: "token has no valid exp"},
		{name: "exp past 2^40", token: rsaKey.sign(t, with(claims, "exp", float64(1<<40)+1), nil), wantDesc: "token has no valid exp"},
		{name: "exp huge", token: rsaKey.sign(t, with(claims, "exp", 1e300), nil), wantDesc: "token has no valid exp"},
		{name: "exp at exp plus leeway", token: rsaKey.sign(t, with(claims, "exp", now.Add(-30*time.Second).Unix()), nil), wantDesc: "token expired"},
		{name: "exp fractional, within leeway", token: rsaKey.sign(t, with(claims, "exp", float64(now.Add(-30*time.Second).Unix())+0.5), nil)},
		{name: "nbf at now plus leeway", token: rsaKey.sign(t, with(claims, "nbf", now.Add(30*time.Second).Unix()), nil)},
		{name: "nbf past now plus leeway", token: rsaKey.sign(t, with(claims, "nbf", now.Add(31*time.Second).Unix()), nil), wantDesc: "token not yet valid"},
		{name: "nbf negative", token: rsaKey.sign(t, with(claims, "nbf", -1), nil), wantDesc: "token not yet valid"},
		{name: "nbf huge", token: rsaKey.sign(t, with(claims, "nbf", 1e300), nil), wantDesc: "token not yet valid"},
		{name: "nbf a string", token: rsaKey.sign(t, with(claims, "nbf", "0"), nil), wantDesc: "token not yet valid"},
		{name: "nbf null reads as 0", token: rsaKey.sign(t, with(claims, "nbf", json.RawMessage("null")), nil)},
		{name: "iat at now plus leeway", token: rsaKey.sign(t, with(claims, "iat", now.Add(30*time.Second).Unix()), nil)},
		{name: "iat a string", token: rsaKey.sign(t, with(claims, "iat", "now"), nil), wantDesc: "token issued in the future"},
		{name: "iat negative", token: rsaKey.sign(t, with(claims, "iat", -1), nil), wantDesc: "token issued in the future"},
		{name: "wrong audience", token: rsaKey.sign(t, with(claims, "aud", "api://other"), nil), wantDesc: "token audience not accepted"},
		{name: "audience array without ours", token: rsaKey.sign(t, with(claims, "aud", []string{"api://other"}), nil), wantDesc: "token audience not accepted"},
		{name: "no audience", token: rsaKey.sign(t, with(claims, "aud", nil), nil), wantDesc: "token audience not accepted"},
		{name: "expired", token: rsaKey.sign(t, with(claims, "exp", now.Add(-31*time.Second).Unix()), nil), wantDesc: "token expired"},
		{name: "no exp", token: rsaKey.sign(t, with(claims, "exp", nil), nil), wantDesc: "token has no valid exp"},
		{name: "exp a string", token: rsaKey.sign(t, with(claims, "exp", "soon"), nil), wantDesc: "token has no valid exp"},
		{name: "not yet valid", token: rsaKey.sign(t, with(claims, "nbf", now.Add(time.Minute).Unix()), nil), wantDesc: "token not yet valid"},
		{name: "issued in the future", token: rsaKey.sign(t, with(claims, "iat", now.Add(time.Minute).Unix()), nil), wantDesc: "token issued in the future"},
		{name: "typ wrong", typ: "at+jwt", token: rsaKey.sign(t, claims, map[jose.HeaderKey]any{jose.HeaderType: "JWT"}), wantDesc: "token type not accepted"},
		{name: "sub not a string", token: rsaKey.sign(t, with(claims, "sub", 42), nil), wantDesc: "token sub is not a string"},
		{name: "scp not strings", token: rsaKey.sign(t, with(claims, "scp", []any{"a", 1}), nil), wantDesc: "token scopes are not strings"},
		{name: "scp with a null", token: rsaKey.sign(t, with(claims, "scp", []any{"a", nil}), nil), wantDesc: "token scopes are not strings"},
		{name: "scp an object", token: rsaKey.sign(t, with(claims, "scp", map[string]any{"a": true}), nil), wantDesc: "token scopes are not strings"},
		{name: "sub null", token: rsaKey.sign(t, with(claims, "sub", json.RawMessage("null")), nil), wantDesc: "token sub is not a string"},
		{name: "sub an array", token: rsaKey.sign(t, with(claims, "sub", []string{"admin"}), nil), wantDesc: "token sub is not a string"},
		{name: "cid a number", token: rsaKey.sign(t, with(claims, "cid", 7), nil), wantDesc: "token client id is not a string"},
		// The rules of an introspected token's identity (authn.NewToken):
		// what goes into headers and logs holds no control character.
		{name: "CR LF in sub", token: rsaKey.sign(t, with(claims, "sub", "alice\r\nX-Auth-Scopes: admin"), nil), wantDesc: "token sub has a control character"},
		{name: "C1 control in sub", token: rsaKey.sign(t, with(claims, "sub", "a\u0085b"), nil), wantDesc: "token sub has a control character"},
		{name: "LF in cid", token: rsaKey.sign(t, with(claims, "cid", "app\nx"), nil), wantDesc: "token client_id has a control character"},
		{name: "NUL in client_id", token: rsaKey.sign(t, with(claims, "cid", nil, "client_id", "app\x00"), nil), wantDesc: "token client_id has a control character"},
		{name: "tab in an scp element", token: rsaKey.sign(t, with(claims, "scp", []string{"read\tadmin"}), nil), wantDesc: "token scope has a control character"},
		{name: "DEL in an scp element", token: rsaKey.sign(t, with(claims, "scp", []string{"read", "admin\x7f"}), nil), wantDesc: "token scope has a control character"},
		{name: "tab in the scope string", token: rsaKey.sign(t, with(claims, "scp", nil, "scope", "read\tadmin"), nil), wantDesc: "token scope has a control character"},
		{name: "space in an scp element", token: rsaKey.sign(t, with(claims, "scp", []string{"read admin"}), nil), wantDesc: "token scope is not a list of scope tokens"},
		{name: "empty scp element", token: rsaKey.sign(t, with(claims, "scp", []string{"read", ""}), nil), wantDesc: "token scope is not a list of scope tokens"},
		{name: "unknown kid", token: newRSAKey(t, "k9").sign(t, claims, nil), wantDesc: "token signed by an unknown key"},
		{name: "opaque token", token: "2YotnFZFEjr1zCsicMWpAA", wantDesc: "token is not a JWT signed with an accepted algorithm"},
		{name: "JSON serialisation", token: jsonSerialised(t, rsaKey, claims), wantDesc: "token is not a JWT signed with an accepted algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, results := newVerifier(t, jwks.URL, &clock{t: now})
			v.Typ = tt.typ
			tok, err := v.Verify(context.Background(), tt.token)
			if tt.wantDesc == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tok.Validation != authn.ValidationJWT || tok.Subject != "alice@example.com" {
					t.Errorf("token %+v", tok)
				}
				if want := []string{jwtauth.ResultValid}; !reflect.DeepEqual(*results, want) {
					t.Errorf("results %v, want %v", *results, want)
				}
				return
			}
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != "invalid_token" || fe.Description != tt.wantDesc {
				t.Fatalf("Verify = %v, %v; want 401 invalid_token %q", tok, err, tt.wantDesc)
			}
			want := jwtauth.ResultInvalid
			if errors.Is(err, jwtauth.ErrUnknownKey) {
				want = jwtauth.ResultUnknownKey
			}
			if !reflect.DeepEqual(*results, []string{want}) {
				t.Errorf("results %v, want %v", *results, want)
			}
		})
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	var c map[string]any
	b, _ := jsonDecode(parts[1])
	json.Unmarshal(b, &c)
	c["scp"] = []string{"admin"}
	parts[1] = b64(c)
	return strings.Join(parts, ".")
}

func jsonSerialised(t *testing.T, k signingKey, claims map[string]any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, (&jose.SignerOptions{}).WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return jws.FullSerialize()
}

// TestVerifyToken checks that the token is built as from an introspection
// answer, so that one policy serves both: claims as sent, scopes from scp
// or scope, subject from sub (else the client id).
func TestVerifyToken(t *testing.T) {
	k := newRSAKey(t, "k1")
	jwks := newJWKSServer(t, k)
	tests := []struct {
		name   string
		claims map[string]any
		want   authn.Token // Claims and Exp filled in below
	}{
		{
			name:   "Okta",
			claims: okta(now),
			want: authn.Token{Subject: "alice@example.com", ClientID: "0oa-app", Scope: "read_sayhello openid",
				Scopes: []string{"read_sayhello", "openid"}, Validation: "jwt"},
		},
		{
			name:   "RFC 9068",
			claims: with(okta(now), "scp", nil, "cid", nil, "scope", " read  write ", "client_id", "app"),
			want:   authn.Token{Subject: "alice@example.com", ClientID: "app", Scope: "read write", Scopes: []string{"read", "write"}, Validation: "jwt"},
		},
		{
			// RFC 6749 3.3: the scope string splits on ASCII space only.
			name:   "no-break space inside a scope",
			claims: with(okta(now), "scp", nil, "scope", "read\u00a0admin openid"),
			want: authn.Token{Subject: "alice@example.com", ClientID: "0oa-app", Scope: "read\u00a0admin openid",
				Scopes: []string{"read\u00a0admin", "openid"}, Validation: "jwt"},
		},
		{
			name:   "client credentials: subject is the client",
			claims: with(okta(now), "sub", nil, "scp", nil),
			want:   authn.Token{Subject: "0oa-app", ClientID: "0oa-app", Validation: "jwt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, _ := newVerifier(t, jwks.URL, &clock{t: now})
			tok, err := v.Verify(context.Background(), k.sign(t, tt.claims, nil))
			if err != nil {
				t.Fatal(err)
			}
			var sent map[string]any
			if err := json.Unmarshal(tok.Claims, &sent); err != nil {
				t.Fatalf("claims %s: %v", tok.Claims, err)
			}
			roundTrip, _ := json.Marshal(tt.claims)
			var want map[string]any
			json.Unmarshal(roundTrip, &want)
			if !reflect.DeepEqual(sent, want) {
				t.Errorf("claims %s, want %s", tok.Claims, roundTrip)
			}
			tt.want.Claims, tt.want.Exp = tok.Claims, now.Add(time.Hour).Unix()
			if !reflect.DeepEqual(*tok, tt.want) {
				t.Errorf("token\n %+v\nwant\n %+v", *tok, tt.want)
			}
		})
	}
}

func TestHybridRoutes(t *testing.T) {
	k := newRSAKey(t, "k1")
	tests := []struct {
		name, token, want string
	}{
		{"JWT of the issuer", k.sign(t, okta(now), nil), "jwt"},
		{"alg none of the issuer: JWT path refuses it", unsigned("k1", okta(now)), "jwt"},
		{"JWT of another issuer", k.sign(t, with(okta(now), "iss", "https://idp.example"), nil), "introspect"},
		// Every spelling of a JWT of the issuer is decided where only the
		// canonical one passes, never introspected on its own.
		{"second spelling of a JWT of the issuer", nonCanonicalPayload(t, k), "jwt"},
		{"opaque", "2YotnFZFEjr1zCsicMWpAA", "introspect"},
		{"four parts", "a.b.c.d", "introspect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			h := &jwtauth.Hybrid{Issuer: issuer,
				JWT:        verifierFunc(func() { got = "jwt" }),
				Introspect: verifierFunc(func() { got = "introspect" })}
			h.Verify(context.Background(), tt.token)
			if got != tt.want {
				t.Errorf("went to %s, want %s", got, tt.want)
			}
			if local := h.Local(tt.token); local != (tt.want == "jwt") {
				t.Errorf("Local = %v, but Verify went to %s", local, got)
			}
			// With several replicas: what is introspected goes to the
			// shared level, a JWT checked here does not.
			shared := false
			s := jwtauth.SharedIntrospections{Hybrid: h, Shared: sharedFunc(func() { shared = true })}
			_, how := s.Fetch(context.Background(), tt.token, tokenid.ID{}, func(context.Context) authn.Answer { return authn.Answer{} })
			if shared != (tt.want == "introspect") {
				t.Errorf("shared level asked: %v, but Verify went to %s", shared, got)
			}
			if !shared && how != authn.Miss {
				t.Errorf("a local check answered %v, want miss", how)
			}
		})
	}
}

// sharedFunc is an authn.Shared that answers a shared hit.
type sharedFunc func()

func (f sharedFunc) Fetch(context.Context, string, tokenid.ID, func(context.Context) authn.Answer) (authn.Answer, authn.Lookup) {
	f()
	return authn.Answer{}, authn.SharedHit
}

type verifierFunc func()

func (f verifierFunc) Verify(context.Context, string) (*authn.Token, error) { f(); return nil, nil }

// FuzzVerify: whatever the token, Verify does not panic, answers 401 or a
// token, and accepts nothing that was not signed by the issuer's key.
func FuzzVerify(f *testing.F) {
	k := newRSAKey(f, "k1")
	jwks := newJWKSServer(f, k)
	valid := k.sign(f, okta(now), nil)
	f.Add(valid)
	f.Add(unsigned("k1", okta(now)))
	f.Add(hmacWithPublicKey(f, k, okta(now)))
	f.Add(tamper(valid))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJSUzI1NiJ9..")
	// The signature segment of an RS256 token (256 bytes) has unused bits.
	last := strings.IndexByte(b64Alphabet, valid[len(valid)-1])
	f.Add(valid[:len(valid)-1] + string(b64Alphabet[last|1]))
	f.Add(newRSAKey(f, "k9").sign(f, okta(now), nil))
	f.Add(newRSAKey(f, "k9").sign(f, okta(now), nil)) // the second within the refetch interval
	v, _ := newVerifier(f, jwks.URL, &clock{t: now})
	f.Fuzz(func(t *testing.T, token string) {
		tok, err := v.Verify(context.Background(), token)
		if err != nil {
			// A kid the keys lack is undecidable between refetches (the
			// clock stands still here): 503, never for the issuer's kid.
			var fe *fault.Error
			undecided := errors.As(err, &fe) && fe.Kind == fault.Unavailable && strings.Contains(fe.Description, "not held yet")
			if !fault.Is(err, fault.Unauthenticated) && !undecided {
				t.Fatalf("error %v is neither Unauthenticated nor an undecided kid", err)
			}
			return
		}
		if token != valid && !strings.HasPrefix(token, valid[:strings.LastIndex(valid, ".")]) {
			t.Fatalf("accepted %q as %+v", token, tok)
		}
		if id, err := tokenid.Of(token); err != nil || !id.JWS {
			t.Fatalf("accepted %q, not a canonical JWS: %v", token, err)
		}
	})
}
