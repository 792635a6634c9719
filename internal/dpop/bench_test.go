package dpop

import (
	"context"
	"crypto"
	"strconv"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// alwaysFresh is a ReplayStore that remembers nothing, so that one proof
// can be verified b.N times: the benchmarks measure the proof check.
type alwaysFresh struct{}

func (alwaysFresh) Use(context.Context, ReplayKey, time.Duration) (bool, error) { return true, nil }

func benchVerify(b *testing.B, alg jose.SignatureAlgorithm, key crypto.Signer) {
	keys(b)
	benchProof(b, signProof(b, alg, key, "dpop+jwt", goodClaims()), key.Public())
}

func benchProof(b *testing.B, proof string, pub crypto.PublicKey) {
	v, err := NewVerifier(Config{Replay: alwaysFresh{}, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	r := Request{Proofs: []string{proof}, Method: "GET", URI: uri, Token: token, JKT: thumbprint(b, pub)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) { keys(b); benchVerify(b, jose.ES256, ecKey) }
func BenchmarkVerifyRS256(b *testing.B) { keys(b); benchVerify(b, jose.RS256, rsaKey) }
func BenchmarkVerifyEdDSA(b *testing.B) { keys(b); benchVerify(b, jose.EdDSA, edKey) }

// BenchmarkVerifyEd25519 is an Ed25519 proof spelled as RFC 9864 does
// (alg "Ed25519"), its signature checked by crypto/ed25519.
func BenchmarkVerifyEd25519(b *testing.B) {
	keys(b)
	benchProof(b, rawEd25519(b, edKey, edKey.Public(), goodClaims()), edKey.Public())
}

// BenchmarkLocalReplay is the replay store's share: one fresh key a use.
func BenchmarkLocalReplay(b *testing.B) {
	s := NewLocalReplay(0, func() time.Time { return t0 })
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.Use(ctx, replayKeyOf("jkt", strconv.Itoa(i)), time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefuseOtherURL is the cost of refusing a proof made for another
// request: no signature verification.
func BenchmarkRefuseOtherURL(b *testing.B) {
	keys(b)
	v, err := NewVerifier(Config{Replay: alwaysFresh{}, Now: func() time.Time { return t0 }})
	if err != nil {
		b.Fatal(err)
	}
	r := Request{
		Proofs: []string{signProof(b, jose.ES256, ecKey, "dpop+jwt", goodClaims())},
		Method: "GET", URI: "https://api.example.com/other", Token: token, JKT: thumbprint(b, ecKey.Public()),
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, r); err == nil {
			b.Fatal("accepted")
		}
	}
}
