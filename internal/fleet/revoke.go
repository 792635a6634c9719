package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// revokeLua drops a token's answer, leaves its tombstone (so that an
// introspection in flight cannot bring it back) and tells every replica.
//
// KEYS: answer, tombstone. ARGV: tombstone life (ms), channel, message.
const revokeLua = `
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`

// Revoke revokes the token whose SHA-256 is key across the fleet: its
// shared answer is dropped, a tombstone refuses it for Tombstone, and every
// replica is told to drop it from its own cache. An error means Redis did
// not take it: only this replica's revocation (the caller's) stands.
func (t *Tier) Revoke(ctx context.Context, key [sha256.Size]byte) error {
	k := t.keysOf(key)
	msg := "r " + hex.EncodeToString(key[:]) + " " + t.id
	return t.do(ctx, "revoke", func(ctx context.Context) error {
		return t.revokeScript.Run(ctx, t.rdb, []string{k.answer, k.tombstone},
			strconv.FormatInt(max(t.s.Tombstone.Milliseconds(), 1), 10), t.channel, msg).Err()
	})
}

// PublishHold tells the other replicas that the IdP answered 429 and that
// introspection holds until until. Its signature is authn.Guarded's OnHold.
// It runs on the request path of the call that got the 429, bounded by
// REDIS_TIMEOUT.
func (t *Tier) PublishHold(until time.Time) {
	msg := "h " + strconv.FormatInt(until.UnixNano(), 10) + " " + t.id
	t.do(context.Background(), "publish", func(ctx context.Context) error {
		return t.rdb.Publish(ctx, t.channel, msg).Err()
	})
}
