package dpop

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Resource-server nonces (RFC 9449 section 9) are stateless: a nonce is
// HMAC-SHA256, under a key derived from the one given (FLEET_KEY in a
// fleet, so that every replica issues and accepts the same nonces), of the
// number of the time window it was issued in. A nonce of the current or the
// previous window is accepted, so one lives between one and two windows;
// nothing is stored, and a restart or another replica changes nothing.
//
// The nonce says nothing about the time to a reader (it is a MAC, not a
// timestamp), and cannot be forged or carried forward without the key.
//
// While the fleet key is rotated (FLEET_KEY_PREVIOUS), replicas issue
// under different keys: each also accepts the nonces of its previous key,
// so that a client sent from one replica to another is not asked for a
// nonce again and again until the rollout ends.
const nonceInfo = "authgate dpop nonce v1"

// DefaultNonceWindow is how long a nonce is issued for when NewNonces is
// given no window.
const DefaultNonceWindow = 5 * time.Minute

// Nonces issues and checks resource-server nonces. It is safe for
// concurrent use.
type Nonces struct {
	keys   [][]byte // the first issues, every one is accepted
	window time.Duration
	now    func() time.Time
}

// NewNonces makes nonces keyed by key (at least 32 bytes; the same on every
// replica), rotating every window (DefaultNonceWindow when 0), on the clock
// now (time.Now when nil). Nonces under a previous key (FLEET_KEY_PREVIOUS
// during a rotation) are accepted too, never issued: replicas that issue
// under either key of a rotation then accept each other's nonces.
func NewNonces(key []byte, window time.Duration, now func() time.Time, previous ...[]byte) (*Nonces, error) {
	keys := append([][]byte{key}, previous...)
	for _, k := range keys {
		if len(k) < 32 {
			return nil, errors.New("dpop nonce key must be at least 32 bytes")
		}
	}
	if window == 0 {
		window = DefaultNonceWindow
	}
	if window < time.Second {
		return nil, errors.New("dpop nonce window must be at least 1s")
	}
	if now == nil {
		now = time.Now
	}
	n := &Nonces{window: window, now: now}
	for _, k := range keys {
		// A key of its own: the key given may serve other purposes (FLEET_KEY).
		sub, err := hkdf.Key(sha256.New, k, nil, nonceInfo, 32)
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, sub)
	}
	return n, nil
}

func (n *Nonces) counter() uint64 {
	return uint64(n.now().UnixNano() / int64(n.window))
}

func mac(key []byte, counter uint64) []byte {
	m := hmac.New(sha256.New, key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], counter)
	m.Write(b[:])
	return m.Sum(nil)
}

// Current is the nonce to hand out now.
func (n *Nonces) Current() string {
	return base64.RawURLEncoding.EncodeToString(mac(n.keys[0], n.counter()))
}

// Check reports whether nonce is valid (of the current or the previous
// window, under any key), and whether it is the current one (Current's):
// a valid nonce of the previous window, or of a previous key, should be
// followed by a fresh one (DPoP-Nonce on the answer).
func (n *Nonces) Check(nonce string) (valid, current bool) {
	if len(nonce) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return false, false
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(nonce)
	if err != nil {
		return false, false
	}
	c := n.counter()
	for i, k := range n.keys {
		if hmac.Equal(got, mac(k, c)) {
			return true, i == 0
		}
		if c > 0 && hmac.Equal(got, mac(k, c-1)) {
			return true, false
		}
	}
	return false, false
}
