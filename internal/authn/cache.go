package authn

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/tokenid"
)

// Lookup says how the cache answered one Verify.
type Lookup uint8

// Lookup results, named as the authgate_cache_requests_total metric labels them.
const (
	Miss            Lookup = iota // this call introspected
	Hit                           // answered from a live entry
	Coalesced                     // waited for another call's introspection
	Stale                         // the server could not answer; served a recently expired entry (StaleIfError)
	SharedHit                     // answered from the shared tier (Redis): another replica introspected
	SharedCoalesced               // waited for another replica's introspection of the same token
)

func (l Lookup) String() string {
	switch l {
	case Hit:
		return "hit"
	case Coalesced:
		return "coalesced"
	case Stale:
		return "stale"
	case SharedHit:
		return "shared_hit"
	case SharedCoalesced:
		return "shared_coalesced"
	}
	return "miss"
}

// CacheSettings configure a Cache.
type CacheSettings struct {
	// Size bounds the active-token entries. Inactive answers live in a
	// separate LRU a quarter that size, so a flood of garbage tokens
	// cannot evict valid ones.
	Size int
	// TTL bounds an active entry's life; it never outlives the token's exp.
	TTL time.Duration
	// NegativeTTL is the life of an invalid-token answer.
	NegativeTTL time.Duration
	// Timeout bounds one shared introspection, detached from the
	// cancellation of whichever request started it.
	Timeout time.Duration
	// Now is the cache's clock; nil means time.Now.
	Now func() time.Time
	// OnEvict, when set, is called when an entry is pushed out for room.
	OnEvict func()
	// StaleIfError, when positive, lets an active entry that TTL ended
	// answer for that much longer while Next is Unavailable (never past the
	// token's exp). Zero serves nothing stale.
	StaleIfError time.Duration
	// OnStale, when set, is called for each answer served stale.
	OnStale func()
	// Shared, when set, is the level behind this one that the replicas
	// share (package fleet, on Redis): a miss here asks it before Next.
	Shared Shared
}

// Cache is a Verifier that remembers answers by the SHA-256 of the token
// string (tokenid.ID.Exact: a second spelling of a JWS is verified again,
// never served another's answer) and lets concurrent misses for one token
// share a single call to Next. A hit never extends an entry's life.
// Revocation keys on what the token signs (tokenid.ID.Revocation), so that
// revoking one spelling revokes them all. A token shaped like a JWS that is
// not canonical base64url is 401 at the miss, never asked of Next.
type Cache struct {
	next     Verifier
	settings CacheSettings
	now      func() time.Time
	pos      *lru.Cache[[sha256.Size]byte, posEntry] // lives until tok.CachedUntil
	neg      *lru.Cache[[sha256.Size]byte, negEntry]
	// revoked are the tombstones of revoked tokens by revocation id
	// (deadline, unix nanos): an introspection in flight when the token was
	// revoked must not bring it back, nor may an entry of another spelling
	// of it answer. A hit reads them only while one may be live
	// (revokedUntil).
	revoked      *lru.Cache[[sha256.Size]byte, int64]
	revokedUntil atomic.Int64 // unix nanos: the latest tombstone's deadline
	flight       singleflight.Group
}

type posEntry struct {
	tok        *Token
	rev        [sha256.Size]byte // the token's revocation id
	staleUntil int64             // unix nanos; <= tok.CachedUntil when it may not be served stale
}

type negEntry struct {
	err      *fault.Error
	deadline int64
}

var _ Verifier = (*Cache)(nil)

// NewCache wraps next.
func NewCache(next Verifier, s CacheSettings) (*Cache, error) {
	c := &Cache{next: next, settings: s, now: s.Now}
	if c.now == nil {
		c.now = time.Now
	}
	var err error
	if c.pos, err = lru.New[[sha256.Size]byte, posEntry](s.Size); err != nil {
		return nil, err
	}
	if c.neg, err = lru.New[[sha256.Size]byte, negEntry](max(s.Size/4, 1)); err != nil {
		return nil, err
	}
	if c.revoked, err = lru.New[[sha256.Size]byte, int64](max(s.Size/4, 1)); err != nil {
		return nil, err
	}
	return c, nil
}

// Len is the number of entries, active and inactive.
func (c *Cache) Len() int { return c.pos.Len() + c.neg.Len() }

// Verify implements Verifier.
func (c *Cache) Verify(ctx context.Context, token string) (*Token, error) {
	t, _, err := c.Lookup(ctx, token)
	return t, err
}

// Lookup is Verify that also says how the cache answered.
func (c *Cache) Lookup(ctx context.Context, token string) (*Token, Lookup, error) {
	// The exact id, hashed in place (tokenid.Exact): []byte(token) would
	// cost an allocation per request (BenchmarkCacheHit).
	key := tokenid.Exact(token)
	if t, err, ok := c.get(key); ok {
		return t, Hit, err
	}
	return c.miss(ctx, token, key)
}

// errNonCanonical answers a token shaped like a JWS whose base64url is not
// canonical: no signer writes one, and it would be another spelling of a
// token that may be revoked.
var errNonCanonical = &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not canonically encoded"}

// miss introspects once for all concurrent callers with the same key. It is
// apart from Lookup so that a hit does not pay for the closure.
func (c *Cache) miss(ctx context.Context, token string, key [sha256.Size]byte) (*Token, Lookup, error) {
	id, err := tokenid.Of(token)
	if err != nil {
		return nil, Miss, errNonCanonical
	}
	rev := id.Revocation
	ran := false
	ch := c.flight.DoChan(string(key[:]), func() (any, error) {
		ran = true
		// Another caller may have stored the answer between our get and now.
		if t, err, ok := c.get(key); ok {
			return flightResult{tok: t, how: Hit}, err
		}
		if c.isRevoked(rev) {
			return flightResult{how: Hit}, errRevoked
		}
		// Detached from the cancellation of whichever request started it;
		// introspect bounds the call by Timeout, the Shared level its own.
		a, how := c.fetch(context.WithoutCancel(ctx), token, id)
		if fault.Is(a.Err, fault.Unavailable) {
			if t, ok := c.stale(key); ok {
				return flightResult{tok: t, stale: true}, nil
			}
		}
		c.store(key, rev, a)
		return flightResult{tok: a.Token, how: how}, a.Err
	})
	select {
	case r := <-ch:
		res, _ := r.Val.(flightResult)
		how := Coalesced
		if ran {
			how = res.how
		}
		if res.stale {
			how = Stale
			if c.settings.OnStale != nil {
				c.settings.OnStale()
			}
		}
		return res.tok, how, r.Err
	case <-ctx.Done():
		return nil, Miss, &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "request cancelled while waiting for the authorization server", Err: ctx.Err()}
	}
}

func (c *Cache) get(key [sha256.Size]byte) (*Token, error, bool) {
	now := c.now().UnixNano()
	if e, ok := c.pos.Get(key); ok {
		// One atomic load while no tombstone is live.
		if now < c.revokedUntil.Load() && c.isRevoked(e.rev) {
			c.pos.Remove(key)
			return nil, errRevoked, true
		}
		if now < e.tok.CachedUntil {
			return e.tok, nil, true
		}
		if now >= e.staleUntil {
			c.pos.Remove(key)
		}
	}
	if e, ok := c.neg.Peek(key); ok {
		if now < e.deadline {
			return nil, e.err, true
		}
		c.neg.Remove(key)
	}
	return nil, nil, false
}

// fetch asks the shared level when there is one, else Next.
func (c *Cache) fetch(ctx context.Context, token string, id tokenid.ID) (Answer, Lookup) {
	if c.settings.Shared == nil {
		return c.introspect(ctx, token), Miss
	}
	return c.settings.Shared.Fetch(ctx, token, id, func(ctx context.Context) Answer { return c.introspect(ctx, token) })
}

// introspect asks Next, and says until when its answer may be kept.
func (c *Cache) introspect(ctx context.Context, token string) Answer {
	ctx, cancel := context.WithTimeout(ctx, c.settings.Timeout)
	t, err := c.next.Verify(ctx, token)
	cancel()
	now := c.now()
	if err == nil {
		deadline := now.Add(c.settings.TTL)
		if t.Exp != 0 {
			if exp := time.Unix(t.Exp, 0); exp.Before(deadline) {
				deadline = exp
			}
		}
		t.CachedUntil = deadline.UnixNano()
		return Answer{Token: t, Until: t.CachedUntil}
	}
	a := Answer{Err: err}
	if fault.Is(err, fault.Unauthenticated) {
		a.Until = now.Add(c.settings.NegativeTTL).UnixNano()
	}
	return a
}

// store keeps a, unless it is no answer (Unavailable), its life is over,
// or the token was revoked meanwhile (rev) and a says it is active.
func (c *Cache) store(key, rev [sha256.Size]byte, a Answer) {
	now := c.now().UnixNano()
	if a.Until <= now {
		return
	}
	if a.Err == nil {
		if c.isRevoked(rev) {
			return
		}
		t := a.Token
		t.CachedUntil = a.Until
		c.added(c.pos.Add(key, posEntry{tok: t, rev: rev, staleUntil: staleUntil(time.Unix(0, a.Until), t.Exp, c.settings.StaleIfError)}))
		return
	}
	var fe *fault.Error
	if errors.As(a.Err, &fe) && fe.Kind == fault.Unauthenticated {
		c.pos.Remove(key) // a stale entry must not outlive a definite "no"
		c.added(c.neg.Add(key, negEntry{err: fe, deadline: a.Until}))
	}
}

// added reports an eviction for room; removals of expired entries are not.
func (c *Cache) added(evicted bool) {
	if evicted && c.settings.OnEvict != nil {
		c.settings.OnEvict()
	}
}
