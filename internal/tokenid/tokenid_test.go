package tokenid

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// flipUnusedBit returns seg with its last character changed to one that
// decodes to the same bytes under a lenient decoder (an unused bit set).
func flipUnusedBit(t *testing.T, seg string) string {
	t.Helper()
	want, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := seg[len(seg)-1]
	for i := 0; i < len(alphabet); i++ {
		c := alphabet[i]
		if c == last {
			continue
		}
		v := seg[:len(seg)-1] + string(c)
		if got, err := base64.RawURLEncoding.DecodeString(v); err == nil && string(got) == string(want) {
			return v
		}
	}
	t.Fatalf("segment %q has no unused bits", seg)
	return ""
}

func TestOf(t *testing.T) {
	head := b64(`{"alg":"ES256","kid":"k1"}`) // 26 bytes: the last character has unused bits
	payload := b64(`{"iss":"https://idp","sub":"a"}`)
	sig := b64("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqr") // 64 bytes
	jws := head + "." + payload + "." + sig
	id, err := Of(jws)
	if err != nil || !id.JWS {
		t.Fatalf("Of(jws) = %+v, %v; want a JWS", id, err)
	}
	if id.Exact != sha256.Sum256([]byte(jws)) {
		t.Error("Exact is not the SHA-256 of the string")
	}
	if id.Revocation != sha256.Sum256([]byte(head+"."+payload)) {
		t.Error("Revocation is not the SHA-256 of the signing input")
	}
	if Revocation(jws) != id.Revocation {
		t.Error("Revocation(token) disagrees with Of")
	}

	// Another spelling of the signature (the high-S twin in real life) is
	// revoked with the original and cached apart from it.
	other := head + "." + payload + "." + b64("another signature of the same input")
	oid, err := Of(other)
	if err != nil || oid.Revocation != id.Revocation || oid.Exact == id.Exact {
		t.Errorf("Of(other signature) = %+v, %v: want the same Revocation, another Exact", oid, err)
	}

	for name, tok := range map[string]string{
		"header":    flipUnusedBit(t, head) + "." + payload + "." + sig,
		"payload":   head + "." + flipUnusedBit(t, payload) + "." + sig,
		"signature": head + "." + payload + "." + flipUnusedBit(t, sig),
	} {
		if _, err := Of(tok); !errors.Is(err, ErrNonCanonical) {
			t.Errorf("%s segment with unused bits set: err = %v, want ErrNonCanonical", name, err)
		}
	}

	for _, opaque := range []string{
		"opaque-token-123",
		"a.b",
		"a.b.c.d",
		b64("not json") + "." + payload + "." + sig, // first segment is no JOSE header
		"abc.def.gh!",                          // not the base64url alphabet
		".x.y",                                 // empty header
		head + "." + payload + "." + sig + "=", // padding: not compact JWS
		"e" + "." + payload + "." + flipUnusedBit(t, sig), // header does not decode
	} {
		id, err := Of(opaque)
		if err != nil || id.JWS || id.Revocation != id.Exact || id.Exact != sha256.Sum256([]byte(opaque)) {
			t.Errorf("Of(%q) = %+v, %v: want an opaque token named by its SHA-256", opaque, id, err)
		}
	}
}

func BenchmarkExact(b *testing.B) {
	tok := b64(`{"alg":"RS256"}`) + "." + b64(`{"iss":"https://idp.example.com/oauth2/default","sub":"user"}`) + "." + b64(string(make([]byte, 256)))
	b.ReportAllocs()
	for b.Loop() {
		Exact(tok)
	}
}
