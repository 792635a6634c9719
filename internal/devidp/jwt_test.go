package devidp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func getKeys(t *testing.T, h http.Handler) (jose.JSONWebKeySet, *httptest.ResponseRecorder) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/default/v1/keys", nil))
	var set jose.JSONWebKeySet
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &set) != nil {
		t.Fatalf("/v1/keys: %d %s", rec.Code, rec.Body)
	}
	return set, rec
}

// verifyWith checks raw against the served JWKS and returns its claims and header.
func verifyWith(t *testing.T, set jose.JSONWebKeySet, raw string) (map[string]any, jose.Header) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys served", h.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	return c, h
}

func TestJWTAccessTokens(t *testing.T) {
	s, clk := newTestServer(t, func(c *Config) { c.JWT = true })
	h := s.Handler()
	rec := post(h, "/oauth2/default/v1/token", basic("demo", "demo-secret"),
		url.Values{"grant_type": {"client_credentials"}, "scope": {"read_sayhello"}})
	raw, _ := decode(t, rec)["access_token"].(string)
	if strings.Count(raw, ".") != 2 {
		t.Fatalf("token endpoint with JWT set gave %q", raw)
	}
	set, keysRec := getKeys(t, h)
	if cc := keysRec.Header().Get("Cache-Control"); cc != "max-age=3600, must-revalidate" {
		t.Errorf("/v1/keys Cache-Control %q", cc)
	}
	c, hdr := verifyWith(t, set, raw)
	if hdr.KeyID != s.KID() || hdr.Algorithm != "RS256" {
		t.Errorf("header %+v", hdr)
	}
	now := clk.Now().Unix()
	want := map[string]any{"ver": 1.0, "iss": testIssuer, "aud": "api://default", "iat": float64(now), "exp": float64(now + 3600),
		"cid": "demo", "sub": "demo", "scp": []any{"read_sayhello"}}
	for k, v := range want {
		if !reflect.DeepEqual(c[k], v) {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if jti, _ := c["jti"].(string); !strings.HasPrefix(jti, "AT.") {
		t.Errorf("jti %v", c["jti"])
	}
	if uid, _ := c["uid"].(string); !strings.HasPrefix(uid, "00u") {
		t.Errorf("uid %v", c["uid"])
	}
	// Introspectable like any token, and revocable.
	in := decode(t, post(h, "/oauth2/default/v1/introspect", basic("gw", "gw-secret"), url.Values{"token": {raw}}))
	if in["active"] != true || in["jti"] != c["jti"] || in["scope"] != "read_sayhello" {
		t.Errorf("introspection of the JWT: %v", in)
	}
	post(h, "/oauth2/default/v1/revoke", basic("demo", "demo-secret"), url.Values{"token": {raw}})
	if in := decode(t, post(h, "/oauth2/default/v1/introspect", basic("gw", "gw-secret"), url.Values{"token": {raw}})); in["active"] != false {
		t.Errorf("revoked JWT introspects as %v", in)
	}
}

// TestRotateKey: a new key signs, the old one stays published, at most
// maxPublished are.
func TestRotateKey(t *testing.T) {
	s, _ := newTestServer(t, nil)
	h := s.Handler()
	before, err := s.IssueJWT("demo", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	old := s.KID()
	rec := post(h, "/oauth2/default/devidp/rotate-key", "", nil)
	if rec.Code != http.StatusOK || decode(t, rec)["kid"] == old {
		t.Fatalf("rotate: %d %s", rec.Code, rec.Body)
	}
	after, _ := s.IssueJWT("demo", nil, time.Minute)
	set, _ := getKeys(t, h)
	_, h1 := verifyWith(t, set, before)
	_, h2 := verifyWith(t, set, after)
	if h1.KeyID != old || h2.KeyID != s.KID() || h1.KeyID == h2.KeyID {
		t.Errorf("kids %q then %q", h1.KeyID, h2.KeyID)
	}
	for range maxPublished {
		s.RotateKey()
	}
	if set, _ := getKeys(t, h); len(set.Keys) != maxPublished || set.Keys[0].KeyID != s.KID() {
		t.Errorf("after many rotations %d keys published, newest %q", len(set.Keys), set.Keys[0].KeyID)
	}
}

func TestKeysNotRateLimited(t *testing.T) {
	s, _ := newTestServer(t, func(c *Config) { c.RateLimit = 1 })
	h := s.Handler()
	for range 5 {
		if _, rec := getKeys(t, h); rec.Header().Get("X-Rate-Limit-Limit") != "" {
			t.Fatal("/v1/keys carries rate-limit headers")
		}
	}
	if s.KeysCalls() != 5 {
		t.Errorf("KeysCalls %d", s.KeysCalls())
	}
}

func TestDiscoveryNamesKeys(t *testing.T) {
	s, _ := newTestServer(t, nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/default/.well-known/openid-configuration", nil))
	if got := decode(t, rec)["jwks_uri"]; got != testIssuer+"/v1/keys" {
		t.Errorf("jwks_uri %v", got)
	}
}

// TestTokenFormatJWT: token_format=jwt asks an opaque-by-default server
// for a JWT.
func TestTokenFormatJWT(t *testing.T) {
	s, _ := newTestServer(t, nil)
	h := s.Handler()
	for format, dots := range map[string]int{"": 0, "jwt": 2} {
		rec := post(h, "/oauth2/default/v1/token", basic("demo", "demo-secret"),
			url.Values{"grant_type": {"client_credentials"}, "token_format": {format}})
		raw, _ := decode(t, rec)["access_token"].(string)
		if raw == "" || strings.Count(raw, ".") != dots {
			t.Errorf("token_format=%q gave %q", format, raw)
		}
	}
}
