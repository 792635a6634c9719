package fleet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/tokenid"
)

// Names are the Redis keys of token under the fleet key secret, as a Tier
// with prefix names them: answer, tombstone, lock.
func Names(secret, prefix, token string) (answer, tombstone, lock string) {
	k, err := newFleetKey(secret)
	if err != nil {
		panic(err)
	}
	id, _ := tokenid.Of(token)
	n := (&Tier{s: Settings{Prefix: prefix}}).namesOf(k, id)
	return n.answer, n.tombstone, n.lock
}

// SealWith seals a under the fleet key secret, for token under name.
func SealWith(secret, token, name string, a authn.Answer) []byte {
	k, err := newFleetKey(secret)
	if err != nil {
		panic(err)
	}
	b, err := seal(k, token, name, a)
	if err != nil {
		panic(err)
	}
	return b
}

// SealV1 seals an answer as the first version did: under a key derived
// from the token alone, which anyone can derive.
func SealV1(token, name string, v map[string]any) []byte {
	key, _ := hkdf.Key(sha256.New, []byte(token), nil, "authgate fleet answer v1", 32)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	plain, _ := json.Marshal(v)
	out := make([]byte, 1+aead.NonceSize())
	out[0] = 1
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], plain, []byte(name))
}

// Message seals a message from a replica with id from, sent at sent (unix
// nanos), under the fleet keys secrets, on channel.
func Message(channel string, kind byte, sent int64, from [8]byte, arg []byte, secrets ...string) string {
	var r keyring
	for _, s := range secrets {
		k, err := newFleetKey(s)
		if err != nil {
			panic(err)
		}
		r = append(r, k)
	}
	return sealMessage(r, channel, message{kind: kind, sent: sent, from: from, arg: arg})
}

// Tombstone is a tombstone value for name, ending at until, under secret.
func Tombstone(secret, name string, until int64) string {
	k, err := newFleetKey(secret)
	if err != nil {
		panic(err)
	}
	return k.tombstone(name, until)
}

// Scripts are the Lua scripts a Tier runs.
func Scripts() []string { return []string{claimLua, putLua, deleteLua, budgetLua} }
