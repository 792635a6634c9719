package fleet

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/tokenid"
)

// claimLua answers an L1 miss in one round trip: the token is revoked
// (here is its tombstone, to verify), or here is its answer, or this
// replica now holds its lock (and introspects), or another one does
// (wait). Reading the answer and taking the lock at once is what makes
// introspections equal distinct tokens: a replica that takes the lock just
// after another let it go finds that one's answer.
//
// KEYS: answer, tombstone, lock. ARGV: lock id, lock life (ms).
const claimLua = `
local r = redis.call('GET', KEYS[2])
if r then return {'revoked', r} end
local v = redis.call('GET', KEYS[1])
if v then return {'hit', v} end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'locked'} end
return {'wait'}
`

// putLua stores an answer unless the token was revoked meanwhile (the
// tombstone), lets go of the lock if this replica still holds it, and
// tells the waiting replicas. The life is relative (PX), so that a
// replica's clock ahead of Redis's cannot keep an answer there longer.
//
// KEYS: answer, tombstone, lock. ARGV: value (” for none), life (ms),
// lock id (” for none), channel, message.
const putLua = `
local stored = 0
if ARGV[1] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  stored = 1
end
if ARGV[3] ~= '' and redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return stored
`

// deleteLua deletes a value read earlier, unless it changed meanwhile (a
// replica's fresh answer must not go with the bad one it replaced).
//
// KEYS: the key. ARGV: the value read.
const deleteLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

var _ authn.Shared = (*Tier)(nil)

// claimReply is one claim's answer, checked: kind is revoked, hit, locked
// or wait; value is the tombstone or the answer.
type claimReply struct{ kind, value string }

// parseClaim checks the shape of a claim's reply: anything else is not
// believed (a hostile or confused Redis).
func parseClaim(res []any) (claimReply, bool) {
	if len(res) == 0 {
		return claimReply{}, false
	}
	kind, _ := res[0].(string)
	switch kind {
	case "revoked", "hit":
		if len(res) != 2 {
			return claimReply{}, false
		}
		v, ok := res[1].(string)
		return claimReply{kind: kind, value: v}, ok
	case "locked", "wait":
		return claimReply{kind: kind}, len(res) == 1
	}
	return claimReply{}, false
}

// Fetch implements authn.Shared.
func (t *Tier) Fetch(ctx context.Context, token string, id tokenid.ID, introspect func(context.Context) authn.Answer) (authn.Answer, authn.Lookup) {
	k := t.keys.writer()
	n := t.namesOf(k, id)
	lock := t.lockID()
	// Wait for another replica's answer for at most its lock's life.
	deadline := time.Now().Add(t.s.LockTTL)
	how := authn.SharedHit
	poll, pollCap := pollInterval, max(pollMax, t.s.LockTTL/8)
	bad := 0
	for claims := 0; claims < maxClaims && bad < maxBadValues && time.Now().Before(deadline); claims++ {
		woken, unwatch := t.watch(id.Exact)
		var res []any
		err := t.do(ctx, "claim", func(ctx context.Context) (err error) {
			res, err = t.claimScript.Run(ctx, t.rdb, []string{n.answer, n.tombstone, n.lock}, lock, t.lockMS).Slice()
			return err
		})
		if err != nil {
			unwatch()
			return introspect(ctx), authn.Miss
		}
		r, ok := parseClaim(res)
		if !ok {
			unwatch()
			t.reject("reply", "unexpected")
			return introspect(ctx), authn.Miss
		}
		switch r.kind {
		case "revoked":
			unwatch()
			if until, ok := k.openTombstone(n.tombstone, r.value); ok {
				if now := t.now(); until > now.UnixNano() {
					return authn.Answer{Err: authn.ErrRevoked(), Until: min(until, now.Add(t.s.Tombstone).UnixNano())}, how
				}
				t.reject("tombstone", "ended")
			} else {
				t.reject("tombstone", "forged")
				if !t.keys.rotating() {
					t.deleteIf(ctx, n.tombstone, r.value)
				}
			}
			// Not believed: answered here, and not shared (putLua would
			// not store behind that tombstone anyway).
			return introspect(ctx), authn.Miss
		case "hit":
			unwatch()
			a, err := unseal(t.keys, token, n.answer, []byte(r.value))
			switch {
			case err != nil:
				t.reject("answer", "forged")
				if !t.keys.rotating() {
					t.deleteIf(ctx, n.answer, r.value)
				}
			case a.Until <= t.now().UnixNano():
				// Over for this replica's clock: Redis kept it (a clock
				// ahead of Redis's, or a PERSIST); it answers no one.
				t.reject("answer", "ended")
				t.deleteIf(ctx, n.answer, r.value)
			default:
				return t.bounded(a), how
			}
			bad++
			continue // claim again, within the bounds
		case "locked":
			unwatch()
			if a, ok := t.previous(ctx, token, id); ok {
				t.put(ctx, token, id, k, n, a, lock) // shared under this key's names too
				return a, how
			}
			a := introspect(ctx)
			t.put(ctx, token, id, k, n, a, lock)
			return a, authn.Miss
		}
		// Another replica introspects: wait for its notice, poll meanwhile.
		how = authn.SharedCoalesced
		timer := time.NewTimer(max(0, min(poll, time.Until(deadline))))
		select {
		case <-woken:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		unwatch()
		poll = min(2*poll, pollCap)
		if ctx.Err() != nil {
			return introspect(ctx), authn.Miss
		}
	}
	// The lock's life is over, or the bounds are reached: answer here and
	// share it (over a value that did not open, too).
	a := introspect(ctx)
	t.put(ctx, token, id, k, n, a, "")
	return a, authn.Miss
}

// previous reads token's answer under the names of the previous fleet key
// (FLEET_KEY_PREVIOUS), while rotating: replicas that still write with it
// keep sharing their answers with those that write with the new one. Such
// a replica writes its tombstones under both keys' names, so the claim
// under this key's names has seen any.
func (t *Tier) previous(ctx context.Context, token string, id tokenid.ID) (authn.Answer, bool) {
	for _, pk := range t.keys[1:] {
		name := t.namesOf(pk, id).answer
		var v string
		err := t.do(ctx, "rotation", func(ctx context.Context) (err error) {
			v, err = t.rdb.Get(ctx, name).Result()
			return err
		})
		if err != nil {
			continue
		}
		a, err := unseal(t.keys, token, name, []byte(v))
		if err != nil {
			t.reject("answer", "forged")
			continue
		}
		if a.Until > t.now().UnixNano() {
			return t.bounded(a), true
		}
	}
	return authn.Answer{}, false
}

// bounded ends a shared answer at most Tombstone (CACHE_TTL, the longest
// any replica keeps an answer) from this replica's clock, as a tombstone's
// end is bounded: its Until is the writer's clock, which may be ahead, and
// would keep the answer in this replica's cache that much longer.
func (t *Tier) bounded(a authn.Answer) authn.Answer {
	if limit := t.now().Add(t.s.Tombstone).UnixNano(); a.Until > limit {
		a.Until = limit
		if a.Token != nil {
			a.Token.CachedUntil = limit
		}
	}
	return a
}

// deleteIf deletes the value v read at name, unless it changed since.
func (t *Tier) deleteIf(ctx context.Context, name, v string) {
	t.do(ctx, "delete", func(ctx context.Context) error {
		return t.deleteScript.Run(ctx, t.rdb, []string{name}, v).Err()
	})
}

// put shares a (when it is an answer), lets go of the lock (when given)
// and tells the waiting replicas.
func (t *Tier) put(ctx context.Context, token string, id tokenid.ID, k *fleetKey, n names, a authn.Answer, lock string) {
	var value []byte
	// The entry ends in Redis when it ends in the cache (PX, in ms,
	// rounded down: never later).
	life := time.Duration(a.Until - t.now().UnixNano())
	if life >= time.Millisecond {
		// seal decides what is an answer: nil for none (Unavailable).
		value, _ = seal(k, token, n.answer, a)
	}
	if value == nil && lock == "" {
		return
	}
	msg := t.message(keyring{k}, 'f', id.Exact[:])
	t.do(ctx, "put", func(ctx context.Context) error {
		err := t.putScript.Run(ctx, t.rdb, []string{n.answer, n.tombstone, n.lock},
			value, strconv.FormatInt(max(life.Milliseconds(), 1), 10), lock, t.channel, msg).Err()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		return err
	})
}
