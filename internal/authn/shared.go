package authn

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/tokenid"
)

// Answer is what a cache level keeps for one token: an active Token, or
// the Unauthenticated error of an inactive one, until Until (unix nanos).
// An answer whose Err is of another kind (Unavailable) is no answer and is
// never kept.
type Answer struct {
	Token *Token
	Err   error
	Until int64
}

// Shared is a cache level that several replicas share (package fleet
// implements it on Redis), behind the Cache of each.
type Shared interface {
	// Fetch answers token (id is its tokenid.ID, which the Cache has
	// already made: a canonical one) from the shared level, or
	// calls introspect, ideally once across all replicas for one token, and
	// shares what it returns. It says how it answered: SharedHit,
	// SharedCoalesced or Miss (introspect ran here). Fetch never fails on
	// its own account: when the shared level cannot answer it calls
	// introspect, so that the shared level is never a new way to fail.
	Fetch(ctx context.Context, token string, id tokenid.ID, introspect func(context.Context) Answer) (Answer, Lookup)
}

// errRevoked answers a token revoked through Revoke, for as long as its
// tombstone lasts.
var errRevoked = &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token revoked"}

// ErrRevoked returns the error a revoked token gets (Unauthenticated).
func ErrRevoked() *fault.Error { return errRevoked }

// Revoke drops token, in every spelling, from the cache and keeps it out
// for d: its lookups answer 401 "token revoked", and an introspection in
// flight for it stores nothing.
func (c *Cache) Revoke(token string, d time.Duration) { c.RevokeKey(tokenid.Revocation(token), d) }

// RevokeKey is Revoke by the token's revocation id, for a revocation
// another replica announced (it knows only the id).
func (c *Cache) RevokeKey(key [sha256.Size]byte, d time.Duration) {
	until := c.now().Add(d).UnixNano()
	c.revoked.Add(key, until)
	for {
		u := c.revokedUntil.Load()
		if u >= until || c.revokedUntil.CompareAndSwap(u, until) {
			break
		}
	}
	// An opaque token's revocation id is its cache key: its entry goes at
	// once. A JWS's entries (one per spelling) go on their next hit. Every
	// lookup that misses then finds the tombstone (miss): no negative entry
	// is needed, and one under a JWS's revocation id would never be read.
	c.pos.Remove(key)
}

// Holds reports whether the cache holds an active answer under key (an
// opaque token's revocation id is its cache key; a JWS's is not, so for a
// JWS it is false), without touching its recency. POST /revoke asks it to
// learn which issuer answered an opaque token.
func (c *Cache) Holds(key [sha256.Size]byte) bool { return c.pos.Contains(key) }

// isRevoked reports whether key has a live tombstone.
func (c *Cache) isRevoked(key [sha256.Size]byte) bool {
	until, ok := c.revoked.Peek(key)
	if !ok {
		return false
	}
	if c.now().UnixNano() < until {
		return true
	}
	c.revoked.Remove(key)
	return false
}
