// Package tokenid names a bearer token for the caches and for revocation.
//
// A token is one credential however it is spelled. A compact JWS (RFC 7515)
// can be spelled several ways that verify alike: base64url lets the last
// character of a segment carry unused low bits, and an ECDSA signature
// (r, s) is equally valid as (r, n-s). So:
//
//   - a token shaped like a JWS whose segments are not canonical base64url
//     (unused bits set) is refused: no legitimate signer writes one;
//   - what revokes a JWS is keyed by what it signs, the SHA-256 of its
//     signing input (header.payload), so that a second spelling of the
//     signature (the high-S twin) is revoked with the first;
//   - the answer caches keep the exact string as their key, so that a
//     second spelling is verified again and is never served another's
//     answer.
//
// Any other token (opaque) is named by the SHA-256 of its string for both.
package tokenid

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"unsafe"
)

// ID names one token. Neither member holds the token or can be reversed
// to it.
type ID struct {
	// Exact is the SHA-256 of the token string: the key of the answer
	// caches.
	Exact [sha256.Size]byte
	// Revocation is what a revocation of the token keys: the SHA-256 of
	// the JWS signing input for a compact JWS, else Exact.
	Revocation [sha256.Size]byte
	// JWS reports whether the token is shaped like a compact JWS.
	JWS bool
}

// ErrNonCanonical is the error of a token shaped like a JWS with a
// segment that is not canonical base64url.
var ErrNonCanonical = errors.New("token is not canonically encoded")

// strict decodes base64url without padding and refuses set unused bits.
var strict = base64.RawURLEncoding.Strict()

// Exact is the SHA-256 of the token string, hashed in place: Sum256
// neither keeps nor changes the bytes, and []byte(token) would cost an
// allocation per request on the cache's hit path.
func Exact(token string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// Of names token. It fails with ErrNonCanonical, and only then, for a token
// shaped like a compact JWS (three segments of the base64url alphabet, the
// first a JSON object) that is not canonically encoded.
func Of(token string) (ID, error) {
	id := ID{Exact: Exact(token)}
	id.Revocation = id.Exact
	head, payload, sig, ok := segments(token)
	if !ok || !looksLikeHeader(head) {
		return id, nil
	}
	for _, s := range [...]string{head, payload, sig} {
		if _, err := strict.DecodeString(s); err != nil {
			return id, ErrNonCanonical
		}
	}
	id.JWS = true
	id.Revocation = sha256.Sum256([]byte(token[:len(head)+1+len(payload)]))
	return id, nil
}

// Revocation is the revocation key of token (ID.Revocation), for a caller
// that revokes it. A non-canonical JWS gets the key of its string: it is
// refused anyway.
func Revocation(token string) [sha256.Size]byte {
	id, _ := Of(token)
	return id.Revocation
}

// segments splits a token of exactly three dot-separated segments of the
// base64url alphabet, the first one not empty.
func segments(token string) (head, payload, sig string, ok bool) {
	head, rest, ok := strings.Cut(token, ".")
	if !ok || head == "" {
		return "", "", "", false
	}
	payload, sig, ok = strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return "", "", "", false
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c != '.' && !isB64URL(c) {
			return "", "", "", false
		}
	}
	return head, payload, sig, true
}

func isB64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// looksLikeHeader reports whether seg decodes, leniently (unused bits
// ignored, as go-jose decodes), to something that starts as a JSON object:
// a JOSE header. An opaque token that merely has two dots is left alone.
func looksLikeHeader(seg string) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}
