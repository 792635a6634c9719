package jwtauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/jwtauth"
)

// TestRotationMadeUpKid: a made-up kid uses up the refetch interval; a
// valid token signed by a key the issuer publishes just after is then
// undecidable, 503 with Retry-After at the next refetch and never cached,
// and valid once that refetch has run. Only the refetch that completed
// while the made-up kid waited makes that one 401.
func TestRotationMadeUpKid(t *testing.T) {
	old, next := newRSAKey(t, "old"), newRSAKey(t, "next")
	jwks := newJWKSServer(t, old)
	clk := &clock{t: now}
	v, _ := newVerifier(t, jwks.URL, clk)
	cache, err := authn.NewCache(v, authn.CacheSettings{Size: 100, TTL: time.Minute, NegativeTTL: 5 * time.Minute,
		Timeout: time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v.Keys.(*jwtauth.Keys).Refresh(ctx) // start-up

	_, err = cache.Verify(ctx, newRSAKey(t, "made-up").sign(t, okta(now), nil))
	if kindOf(t, err) != fault.Unauthenticated || !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatalf("made-up kid: %v, want 401 unknown key (a refetch completed without it)", err)
	}
	jwks.set(old, next) // the issuer publishes its next key and signs with it
	valid := next.sign(t, okta(now), nil)
	for range 2 { // each time undecided, not served from the cache
		clk.Add(time.Second)
		_, err = cache.Verify(ctx, valid)
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Unavailable || !fe.RetryAfter.Equal(now.Add(jwtauth.DefaultRefetchInterval)) {
			t.Fatalf("new key within the interval: %v, want 503 with Retry-After %s", err, now.Add(jwtauth.DefaultRefetchInterval))
		}
	}
	if n := jwks.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d, want 2", n)
	}
	clk.Add(jwtauth.DefaultRefetchInterval - 2*time.Second)
	if tok, err := cache.Verify(ctx, valid); err != nil || tok.Subject != "alice@example.com" {
		t.Fatalf("new key once the refetch may run: %v, %v; want valid", tok, err)
	}
}

// TestRotationSharedKID: keys of different types that share a kid are all
// kept; each token is checked with those whose type fits its alg.
func TestRotationSharedKID(t *testing.T) {
	rsaKey, ecKey := newRSAKey(t, "k"), newECKey(t, "k")
	jwks := newJWKSServer(t, rsaKey, ecKey)
	v, _ := newVerifier(t, jwks.URL, &clock{t: now})
	for _, k := range []signingKey{rsaKey, ecKey} {
		if _, err := v.Verify(context.Background(), k.sign(t, okta(now), nil)); err != nil {
			t.Errorf("%s token, kid shared by an RSA and an EC key: %v", k.alg, err)
		}
	}
	if n := jwks.fetches.Load(); n != 1 {
		t.Errorf("fetches %d, want 1", n)
	}
	// A kid whose keys fit no key of the token's alg.
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es384 := signingKey{kid: "k", alg: jose.ES384, priv: p384}
	v.Algorithms = append(v.Algorithms, jose.ES384)
	_, err = v.Verify(context.Background(), es384.sign(t, okta(now), nil))
	if fe := (*fault.Error)(nil); !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Description != "token algorithm does not match its key" {
		t.Errorf("ES384 token against P-256 and RSA keys: %v, want 401 algorithm does not match", err)
	}
}

// TestRotationSameKID: the issuer replaced the key under a kid it keeps;
// a signature the held key does not verify refetches (at most once per
// interval) and is checked again with the new key.
func TestRotationSameKID(t *testing.T) {
	before, after := newRSAKey(t, "k1"), newRSAKey(t, "k1")
	jwks := newJWKSServer(t, before)
	clk := &clock{t: now}
	v, _ := newVerifier(t, jwks.URL, clk)
	ctx := context.Background()
	if _, err := v.Verify(ctx, before.sign(t, okta(now), nil)); err != nil {
		t.Fatal(err)
	}
	jwks.set(after)
	clk.Add(jwtauth.DefaultRefetchInterval)
	if _, err := v.Verify(ctx, after.sign(t, okta(now), nil)); err != nil {
		t.Fatalf("token of the replaced key: %v", err)
	}
	if n := jwks.fetches.Load(); n != 2 {
		t.Errorf("fetches %d, want 2", n)
	}
	// A forged signature within the interval: no fetch, 401.
	_, err := v.Verify(ctx, newRSAKey(t, "k1").sign(t, okta(now), nil))
	if kindOf(t, err) != fault.Unauthenticated || jwks.fetches.Load() != 2 {
		t.Errorf("bad signature within the interval: %v, %d fetches; want 401 and no fetch", err, jwks.fetches.Load())
	}
}

// TestKeysNoKIDAmongSeveral: a token without kid cannot be matched to one
// of several keys, and no refetch changes that: 401 at once.
func TestKeysNoKIDAmongSeveral(t *testing.T) {
	jwks := newJWKSServer(t, newRSAKey(t, "a"), newRSAKey(t, "b"))
	keys := newKeys(jwks.URL, &clock{t: now}, nil)
	keys.Refresh(context.Background())
	_, err := keys.Keys(context.Background(), "")
	if kindOf(t, err) != fault.Unauthenticated || jwks.fetches.Load() != 1 {
		t.Errorf("no kid among several keys: %v, %d fetches; want 401, 1 fetch", err, jwks.fetches.Load())
	}
}
