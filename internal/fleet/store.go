package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

// claimLua answers an L1 miss in one round trip: the token is revoked, or
// here is its answer, or this replica now holds its lock (and introspects),
// or another one does (wait). Reading the answer and taking the lock at
// once is what makes introspections equal distinct tokens: a replica that
// takes the lock just after another let it go finds that one's answer.
//
// KEYS: answer, tombstone, lock. ARGV: lock id, lock life (ms).
const claimLua = `
if redis.call('EXISTS', KEYS[2]) == 1 then return {'revoked'} end
local v = redis.call('GET', KEYS[1])
if v then return {'hit', v} end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'locked'} end
return {'wait'}
`

// putLua stores an answer unless the token was revoked meanwhile (the
// tombstone), lets go of the lock if this replica still holds it, and
// tells the waiting replicas.
//
// KEYS: answer, tombstone, lock. ARGV: value (” for none), expiry (unix
// ms), lock id (” for none), channel, message.
const putLua = `
local stored = 0
if ARGV[1] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
  stored = 1
end
if ARGV[3] ~= '' and redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return stored
`

var _ authn.Shared = (*Tier)(nil)

// Fetch implements authn.Shared.
func (t *Tier) Fetch(ctx context.Context, token string, key [sha256.Size]byte, introspect func(context.Context) authn.Answer) (authn.Answer, authn.Lookup) {
	k := t.keysOf(key)
	id := t.lockID()
	lockMS := strconv.FormatInt(max(t.s.LockTTL.Milliseconds(), 1), 10)
	// Wait for another replica's answer for at most its lock's life.
	deadline := time.Now().Add(t.s.LockTTL)
	how := authn.SharedHit
	for {
		woken, unwatch := t.watch(key)
		var res []any
		err := t.do(ctx, "claim", func(ctx context.Context) (err error) {
			res, err = t.claimScript.Run(ctx, t.rdb, []string{k.answer, k.tombstone, k.lock}, id, lockMS).Slice()
			return err
		})
		if err != nil || len(res) == 0 {
			unwatch()
			return introspect(ctx), authn.Miss
		}
		switch res[0] {
		case "revoked":
			unwatch()
			return authn.Answer{Err: authn.ErrRevoked(), Until: t.now().Add(t.s.Tombstone).UnixNano()}, how
		case "hit":
			unwatch()
			v, _ := res[1].(string)
			if a, ok := t.open(ctx, token, k, v); ok {
				return a, how
			}
			continue // garbage, deleted: claim again
		case "locked":
			unwatch()
			a := introspect(ctx)
			t.put(ctx, token, key, k, a, id)
			return a, authn.Miss
		}
		// Another replica introspects: wait for its notice, poll meanwhile.
		how = authn.SharedCoalesced
		left := time.Until(deadline)
		if left <= 0 {
			unwatch()
			a := introspect(ctx)
			t.put(ctx, token, key, k, a, "")
			return a, authn.Miss
		}
		timer := time.NewTimer(min(pollInterval, left))
		select {
		case <-woken:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		unwatch()
		if ctx.Err() != nil {
			return introspect(ctx), authn.Miss
		}
	}
}

// open unseals an answer read from Redis; one that does not open, or
// whose life is over, is a miss, and the former is deleted.
func (t *Tier) open(ctx context.Context, token string, k keys, v string) (authn.Answer, bool) {
	a, err := unseal(token, k.answer, []byte(v))
	if err != nil {
		t.do(ctx, "delete", func(ctx context.Context) error { return t.rdb.Del(ctx, k.answer).Err() })
		return authn.Answer{}, false
	}
	if a.Until <= t.now().UnixNano() {
		return authn.Answer{}, false
	}
	return a, true
}

// put shares a (when it is an answer), lets go of the lock id (when
// given) and tells the waiting replicas.
func (t *Tier) put(ctx context.Context, token string, key [sha256.Size]byte, k keys, a authn.Answer, id string) {
	var value []byte
	if a.Until > t.now().UnixNano() && (a.Err == nil || fault.Is(a.Err, fault.Unauthenticated)) {
		var err error
		if value, err = seal(token, k.answer, a); err != nil {
			value = nil
		}
	}
	if value == nil && id == "" {
		return
	}
	msg := "f " + hex.EncodeToString(key[:])
	// The entry ends in Redis when it ends in the cache (PXAT, in ms,
	// rounded down: never later).
	t.do(ctx, "put", func(ctx context.Context) error {
		err := t.putScript.Run(ctx, t.rdb, []string{k.answer, k.tombstone, k.lock},
			value, strconv.FormatInt(a.Until/int64(time.Millisecond), 10), id, t.channel, msg).Err()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		return err
	})
}
