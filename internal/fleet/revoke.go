package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/redis/go-redis/v9"
)

// Revoke revokes the token whose revocation id (tokenid.ID.Revocation) is
// rev across the fleet: a tombstone refuses it for Tombstone (its answers
// in Redis, behind it, are never served again and end by themselves), and
// every replica is told to drop it from its own cache. While two fleet
// keys are set, the tombstone is written under both keys' names and the
// message sent under both, so that a replica that knows either hears it.
// An error means Redis did not take it: only this replica's revocation
// (the caller's) stands.
func (t *Tier) Revoke(ctx context.Context, rev [sha256.Size]byte) error {
	life := max(t.s.Tombstone, time.Millisecond)
	until := t.now().Add(life).UnixNano()
	msg := t.message(t.keys, 'r', rev[:])
	return t.do(ctx, "revoke", func(ctx context.Context) error {
		_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range t.keys {
				name := t.tombstoneName(k, rev)
				p.Set(ctx, name, k.tombstone(name, until), life)
			}
			p.Publish(ctx, t.channel, msg)
			return nil
		})
		return err
	})
}

// PublishHold tells the other replicas that the IdP answered 429 and that
// introspection holds until until. Its signature is authn.Guarded's OnHold.
// It runs on the request path of the call that got the 429, bounded by
// REDIS_TIMEOUT.
func (t *Tier) PublishHold(until time.Time) {
	msg := t.message(t.keys, 'h', binary.BigEndian.AppendUint64(nil, uint64(until.UnixNano())))
	t.do(context.Background(), "publish", func(ctx context.Context) error {
		return t.rdb.Publish(ctx, t.channel, msg).Err()
	})
}
