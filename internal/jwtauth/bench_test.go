package jwtauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
)

// BenchmarkVerifyFirstSight is a JWT seen for the first time: parse,
// RS256 signature check and claims, keys already cached.
func BenchmarkVerifyFirstSight(b *testing.B) {
	k := newRSAKey(b, "k1")
	jwks := newJWKSServer(b, k)
	clk := &clock{t: now}
	v, _ := newVerifier(b, jwks.URL, clk)
	tok := k.sign(b, okta(now), nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached is a hot JWT: answered by the token cache, no
// signature check.
func BenchmarkVerifyCached(b *testing.B) {
	k := newRSAKey(b, "k1")
	jwks := newJWKSServer(b, k)
	v, _ := newVerifier(b, jwks.URL, &clock{t: time.Now()})
	c, err := authn.NewCache(v, authn.CacheSettings{Size: 1000, TTL: time.Minute, NegativeTTL: time.Second, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	tok := k.sign(b, okta(time.Now()), nil)
	if _, err := c.Verify(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, how, err := c.Lookup(context.Background(), tok); err != nil || how != authn.Hit {
			b.Fatal(how, err)
		}
	}
}
