package fleet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

// A value in Redis is sealed with AES-256-GCM under a key derived
// (HKDF-SHA256) from the token and the fleet key's seal subkey (keys.go):
// opening it, or sealing one that opens, takes both. Whoever reads Redis
// (a dump, a replica, a shared instance) learns neither the tokens nor
// their claims; whoever writes to it without the fleet key cannot make an
// answer any replica believes, even for a token of their own choosing. The
// key name is the additional data, so a value cannot be moved to another
// key; the fleet key's id says which key sealed it (rotation).
const sealInfo = "authgate fleet answer v2"

// errUnsealed is a value that does not open: garbage, another version,
// another token's, or sealed without a fleet key this replica holds.
var errUnsealed = errors.New("shared answer does not open")

// sealed is what a sealed value holds.
type sealed struct {
	Until    int64           `json:"u"` // unix nanos: the end of the entry's life
	Active   bool            `json:"a"`
	Subject  string          `json:"sub,omitempty"`
	ClientID string          `json:"cid,omitempty"`
	Scope    string          `json:"scope,omitempty"`
	Scopes   []string        `json:"scopes,omitempty"`
	Exp      int64           `json:"exp,omitempty"`
	Claims   json.RawMessage `json:"claims,omitempty"`
	// Validation is how the answer was reached (authn.Token.Validation):
	// the OPA input and the access log name it.
	Validation string `json:"v,omitempty"`
	Code       string `json:"code,omitempty"` // inactive: the error's code and description
	Desc       string `json:"desc,omitempty"`
}

func aeadFor(k *fleetKey, token string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(token), k.seal, sealInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encodes a cacheable answer (active, or Unauthenticated) for name
// under k: version, key id, nonce, sealed JSON.
func seal(k *fleetKey, token, name string, a authn.Answer) ([]byte, error) {
	v := sealed{Until: a.Until}
	if a.Err == nil {
		t := a.Token
		v.Active, v.Subject, v.ClientID, v.Scope, v.Scopes, v.Exp, v.Claims = true, t.Subject, t.ClientID, t.Scope, t.Scopes, t.Exp, t.Claims
		v.Validation = t.Validation
	} else {
		var fe *fault.Error
		if !errors.As(a.Err, &fe) || fe.Kind != fault.Unauthenticated {
			return nil, errors.New("not a cacheable answer")
		}
		v.Code, v.Desc = fe.Code, fe.Description
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	aead, err := aeadFor(k, token)
	if err != nil {
		return nil, err
	}
	const head = 1 + 4
	out := make([]byte, head+aead.NonceSize(), head+aead.NonceSize()+len(plain)+aead.Overhead())
	out[0] = keyVersion
	copy(out[1:head], k.id[:])
	rand.Read(out[head:])
	return aead.Seal(out, out[head:], plain, []byte(name)), nil
}

// unseal opens what seal made for token under name, with the key of r
// that sealed it.
func unseal(r keyring, token, name string, b []byte) (authn.Answer, error) {
	const head = 1 + 4
	if len(b) < head || b[0] != keyVersion {
		return authn.Answer{}, errUnsealed
	}
	k := r.byID(b[1:head])
	if k == nil {
		return authn.Answer{}, errUnsealed
	}
	aead, err := aeadFor(k, token)
	if err != nil {
		return authn.Answer{}, err
	}
	n := aead.NonceSize()
	if len(b) < head+n {
		return authn.Answer{}, errUnsealed
	}
	plain, err := aead.Open(nil, b[head:head+n], b[head+n:], []byte(name))
	if err != nil {
		return authn.Answer{}, errUnsealed
	}
	var v sealed
	if err := json.Unmarshal(plain, &v); err != nil {
		return authn.Answer{}, errUnsealed
	}
	if !v.Active {
		return authn.Answer{Until: v.Until, Err: &fault.Error{Kind: fault.Unauthenticated, Code: v.Code, Description: v.Desc}}, nil
	}
	return authn.Answer{Until: v.Until, Token: &authn.Token{Subject: v.Subject, ClientID: v.ClientID, Scope: v.Scope,
		Scopes: v.Scopes, Exp: v.Exp, Claims: v.Claims, Validation: v.Validation, CachedUntil: v.Until}}, nil
}
