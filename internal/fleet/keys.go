package fleet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
)

// Nothing read from Redis is believed unless it proves that a holder of
// the fleet key (FLEET_KEY) wrote it: whoever can write to Redis, but does
// not hold the key, must not be able to let a token in, keep it out, or
// move a replica's state. From the key, HKDF-SHA256 derives one subkey per
// use, so that no use can stand in for another:
//
//   - seal: answers are sealed (AES-256-GCM) under a key derived from this
//     subkey and the token (seal.go): opening one takes both;
//   - names: a key name is an HMAC of the token's name (tokenid), so that
//     whoever reads Redis cannot link a key to a token they hold;
//   - tombstones: a tombstone carries an HMAC of its name and its end;
//   - messages: every pub/sub message is sealed (AES-256-GCM: the tag is
//     its MAC) with the time it was sent.
//
// What cannot carry a MAC, the GCRA state the budget script updates inside
// Redis, is bounded instead (budget.go).
//
// Rotation (FLEET_KEY_PREVIOUS): the first key writes, every key reads and
// verifies; revocations and holds are sent under every key, so that a
// replica that knows only one of them hears them (docs/fleet.md).
const (
	keyVersion = 2

	infoID      = "authgate fleet v2 key id"
	infoSeal    = "authgate fleet v2 seal"
	infoNames   = "authgate fleet v2 names"
	infoTomb    = "authgate fleet v2 tombstones"
	infoMessage = "authgate fleet v2 messages"
)

// fleetKey is one fleet key's subkeys.
type fleetKey struct {
	id    [4]byte // names the key in what it sealed or signed; not secret
	seal  []byte
	names []byte
	tomb  []byte
	msg   cipher.AEAD
}

func newFleetKey(secret string) (*fleetKey, error) {
	if secret == "" {
		return nil, errors.New("fleet: empty key")
	}
	derive := func(info string) []byte {
		k, err := hkdf.Key(sha256.New, []byte(secret), nil, info, 32)
		if err != nil {
			panic(err) // 32 bytes of SHA-256 HKDF cannot fail
		}
		return k
	}
	k := &fleetKey{seal: derive(infoSeal), names: derive(infoNames), tomb: derive(infoTomb)}
	copy(k.id[:], derive(infoID))
	block, err := aes.NewCipher(derive(infoMessage))
	if err != nil {
		return nil, err
	}
	if k.msg, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	return k, nil
}

// keyring holds the fleet keys: the first writes, all read.
type keyring []*fleetKey

func newKeyring(current string, previous ...string) (keyring, error) {
	var r keyring
	for _, s := range append([]string{current}, previous...) {
		if s == "" {
			continue
		}
		k, err := newFleetKey(s)
		if err != nil {
			return nil, err
		}
		if r.byID(k.id[:]) == nil {
			r = append(r, k)
		}
	}
	if len(r) == 0 {
		return nil, errors.New("fleet: no fleet key (FLEET_KEY)")
	}
	return r, nil
}

func (r keyring) writer() *fleetKey { return r[0] }

// rotating reports whether a second key is set: a value that does not
// open may then be another key's, and is left alone.
func (r keyring) rotating() bool { return len(r) > 1 }

func (r keyring) byID(id []byte) *fleetKey {
	for _, k := range r {
		if string(k.id[:]) == string(id) {
			return k
		}
	}
	return nil
}

// nameOf is the keyed name of a token's id (tokenid) for issuer: an HMAC,
// so that a Redis reader cannot link it to a token. The issuer has its own
// part so that several issuers never share a key space.
func (k *fleetKey) nameOf(issuer string, id [sha256.Size]byte) string {
	m := hmac.New(sha256.New, k.names)
	m.Write([]byte(issuer))
	m.Write([]byte{0})
	m.Write(id[:])
	return hex.EncodeToString(m.Sum(nil))
}

// Tombstone values: version, key id, end (unix nanos, big-endian), HMAC of
// the key name and the end.
const tombLen = 1 + 4 + 8 + sha256.Size

func (k *fleetKey) tombstone(name string, until int64) string {
	b := make([]byte, 0, tombLen)
	b = append(b, keyVersion)
	b = append(b, k.id[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(until))
	return string(append(b, k.tombMAC(name, b[5:13])...))
}

func (k *fleetKey) tombMAC(name string, until []byte) []byte {
	m := hmac.New(sha256.New, k.tomb)
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write(until)
	return m.Sum(nil)
}

// openTombstone verifies a tombstone read under name and returns its end.
// Each key names a tombstone differently, so only the key that named it
// can have written it.
func (k *fleetKey) openTombstone(name, v string) (until int64, ok bool) {
	if len(v) != tombLen || v[0] != keyVersion || v[1:5] != string(k.id[:]) {
		return 0, false
	}
	if !hmac.Equal(k.tombMAC(name, []byte(v[5:13])), []byte(v[13:])) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64([]byte(v[5:13]))), true
}

// Messages on the channel. A message is a version byte, then one envelope
// per key it is sent under (two while rotating), each its length (2
// bytes), the key id, a nonce and the AES-GCM sealed body; the channel
// name is the additional data. The body is the kind, the time it was sent
// (unix nanos), the sending replica and the argument:
//
//	'f' + exact id (32): an answer came, or its lock was let go
//	'r' + revocation id (32): revoked
//	'h' + until (unix nanos, 8): the IdP's 429 holds until then
type message struct {
	kind byte
	sent int64
	from [8]byte
	arg  []byte
}

const bodyHead = 1 + 8 + 8

func sealMessage(keys keyring, channel string, m message) string {
	body := make([]byte, 0, bodyHead+len(m.arg))
	body = append(body, m.kind)
	body = binary.BigEndian.AppendUint64(body, uint64(m.sent))
	body = append(body, m.from[:]...)
	body = append(body, m.arg...)
	out := []byte{keyVersion}
	for _, k := range keys {
		n := k.msg.NonceSize()
		env := make([]byte, 0, 4+n+len(body)+k.msg.Overhead())
		env = append(env, k.id[:]...)
		env = env[:4+n]
		rand.Read(env[4:])
		env = k.msg.Seal(env, env[4:4+n], body, []byte(channel))
		out = binary.BigEndian.AppendUint16(out, uint16(len(env)))
		out = append(out, env...)
	}
	return string(out)
}

// openMessage opens the first envelope of payload sealed under a key of r.
func (r keyring) openMessage(channel, payload string) (message, bool) {
	b := []byte(payload)
	if len(b) < 1 || b[0] != keyVersion {
		return message{}, false
	}
	b = b[1:]
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return message{}, false
		}
		env := b[2 : 2+n]
		b = b[2+n:]
		if len(env) < 4 {
			continue
		}
		k := r.byID(env[:4])
		if k == nil || len(env) < 4+k.msg.NonceSize() {
			continue
		}
		ns := k.msg.NonceSize()
		body, err := k.msg.Open(nil, env[4:4+ns], env[4+ns:], []byte(channel))
		if err != nil || len(body) < bodyHead {
			continue
		}
		m := message{kind: body[0], sent: int64(binary.BigEndian.Uint64(body[1:9])), arg: body[bodyHead:]}
		copy(m.from[:], body[9:17])
		return m, true
	}
	return message{}, false
}
