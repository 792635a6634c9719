package jwtauth_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/tokenid"
)

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// setUnusedBit spells seg a second way: its last character with the lowest
// unused bit set. It needs a segment whose length leaves unused bits.
func setUnusedBit(t *testing.T, seg string) string {
	t.Helper()
	if len(seg)%4 == 0 {
		t.Fatalf("segment of %d characters has no unused bits", len(seg))
	}
	last := strings.IndexByte(b64Alphabet, seg[len(seg)-1])
	variant := seg[:len(seg)-1] + string(b64Alphabet[last|1])
	// The second spelling decodes, leniently as go-jose decodes, to the
	// same bytes.
	a, err1 := base64.RawURLEncoding.DecodeString(seg)
	b, err2 := base64.RawURLEncoding.DecodeString(variant)
	if variant == seg || err1 != nil || err2 != nil || string(a) != string(b) {
		t.Fatalf("no second spelling of %q", seg)
	}
	return variant
}

// paddedToken signs claims with an extra header member and claim sized
// so that neither the header nor the payload segment is a multiple of 4
// characters long: each then has unused bits. (RS256 and ES256
// signatures, 256 and 64 bytes, have some anyway.)
func paddedToken(t *testing.T, k signingKey, claims map[string]any) string {
	for i := 0; i < 16; i++ {
		for j := 0; j < 16; j++ {
			tok := k.sign(t, with(claims, "pad", strings.Repeat("p", j)), map[jose.HeaderKey]any{"pad": strings.Repeat("p", i)})
			parts := strings.Split(tok, ".")
			if len(parts[0])%4 != 0 && len(parts[1])%4 != 0 && len(parts[2])%4 != 0 {
				return tok
			}
		}
	}
	t.Fatal("no token with unused bits in every segment")
	return ""
}

// TestVerifyNonCanonical: a token with set unused bits in any segment is
// the same token to go-jose, and would escape a revocation of the first
// spelling: refused, before any key is looked up (no JWKS fetch).
func TestVerifyNonCanonical(t *testing.T) {
	for _, k := range []signingKey{newRSAKey(t, "k1"), newECKey(t, "k2")} {
		jwks := newJWKSServer(t, k)
		valid := paddedToken(t, k, okta(now))
		for i, seg := range []string{"header", "payload", "signature"} {
			t.Run(string(k.alg)+" "+seg, func(t *testing.T) {
				parts := strings.Split(valid, ".")
				parts[i] = setUnusedBit(t, parts[i])
				variant := strings.Join(parts, ".")
				v, results := newVerifier(t, jwks.URL, &clock{t: now})
				before := jwks.fetches.Load()
				_, err := v.Verify(context.Background(), variant)
				var fe *fault.Error
				if !asFault(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != "invalid_token" || fe.Description != "token is not canonically encoded" {
					t.Fatalf("Verify(second spelling) = %v, want 401 invalid_token \"token is not canonically encoded\"", err)
				}
				if n := jwks.fetches.Load() - before; n != 0 {
					t.Errorf("JWKS fetched %d times for a refused spelling, want 0", n)
				}
				if len(*results) != 1 || (*results)[0] != "invalid" {
					t.Errorf("results %v, want [invalid]", *results)
				}
				// The canonical spelling is valid.
				if _, err := v.Verify(context.Background(), valid); err != nil {
					t.Fatalf("Verify(canonical) = %v", err)
				}
			})
		}
	}
}

// TestVerifyHighS: an ECDSA signature (r, s) is as valid as (r, n-s), and
// most signers do not normalise S: the twin is valid, and tokenid gives it
// the same revocation key, so revoking one revokes both.
func TestVerifyHighS(t *testing.T) {
	k := newECKey(t, "k2")
	jwks := newJWKSServer(t, k)
	valid := k.sign(t, okta(now), nil)
	twin := highSTwin(t, k, valid)
	v, _ := newVerifier(t, jwks.URL, &clock{t: now})
	for _, tok := range []string{valid, twin} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	a, errA := tokenid.Of(valid)
	b, errB := tokenid.Of(twin)
	if errA != nil || errB != nil || a.Revocation != b.Revocation || a.Exact == b.Exact {
		t.Errorf("tokenid: %v %v; same revocation key %v, same exact key %v (want true, false)",
			errA, errB, a.Revocation == b.Revocation, a.Exact == b.Exact)
	}
}

// highSTwin replaces the signature (r, s) of an ES256 token by (r, n-s).
func highSTwin(t *testing.T, k signingKey, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("ES256 signature: %v (%d bytes)", err, len(sig))
	}
	n := k.priv.Public().(*ecdsa.PublicKey).Curve.Params().N
	s := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:]))
	twin := append(sig[:32:32], s.FillBytes(make([]byte, 32))...)
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(twin)
}

func asFault(err error, fe **fault.Error) bool {
	e, ok := err.(*fault.Error)
	*fe = e
	return ok
}

// nonCanonicalPayload is a token of k whose payload segment has a set
// unused bit.
func nonCanonicalPayload(t *testing.T, k signingKey) string {
	parts := strings.Split(paddedToken(t, k, okta(now)), ".")
	parts[1] = setUnusedBit(t, parts[1])
	return strings.Join(parts, ".")
}
