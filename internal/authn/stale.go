package authn

import (
	"crypto/sha256"
	"time"
)

// Stale-if-error (CACHE_STALE_IF_ERROR): when the authorization server cannot
// answer, an active entry that CACHE_TTL ended a short while ago may still
// answer. It never outlives the token's exp, and a definite answer from the
// server (inactive) removes it.

// flightResult is what a shared introspection gives every caller waiting on it.
type flightResult struct {
	tok   *Token
	stale bool   // tok is a recently expired entry, served because Next was Unavailable
	how   Lookup // how the caller that ran the flight was answered
}

// staleUntil is when an entry whose life ends at deadline stops being
// servable stale: grace after deadline, but never past exp (seconds since
// the epoch, 0 when unknown).
func staleUntil(deadline time.Time, exp int64, grace time.Duration) int64 {
	if grace <= 0 {
		return deadline.UnixNano()
	}
	until := deadline.Add(grace)
	if exp != 0 {
		if e := time.Unix(exp, 0); e.Before(until) {
			until = e
		}
	}
	return until.UnixNano()
}

// stale returns the entry for key if it ended but may still be served stale.
func (c *Cache) stale(key [sha256.Size]byte) (*Token, bool) {
	e, ok := c.pos.Peek(key)
	if !ok {
		return nil, false
	}
	if now := c.now().UnixNano(); now >= e.tok.CachedUntil && now < e.staleUntil && !c.isRevoked(e.rev) {
		return e.tok, true
	}
	return nil, false
}
