package gateway

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/authgate/authgate/internal/authn"
)

// decisionCache remembers OPA's verdict per token, method and path (and
// gateway mode), for policies that depend on nothing else
// (DECISION_CACHE_TTL): not on the query, headers, host, scheme, remote
// address or time. A policy change
// takes effect for a cached pair only when its entry ends.
//
// The key holds the *authn.Token of the introspection cache rather than the
// token's hash: that pointer names one cache entry of one token, so a
// decision can never outlive the entry it was made from (nor, through it,
// the token's exp), and a re-introspected token starts afresh.
type decisionCache struct {
	ttl   time.Duration
	now   func() time.Time
	cache *lru.Cache[decisionKey, cachedDecision]
}

type decisionKey struct {
	tok                *authn.Token
	method, path, mode string
}

type cachedDecision struct {
	d        decision
	deadline int64 // unix nanos
}

func newDecisionCache(size int, ttl time.Duration, now func() time.Time) *decisionCache {
	c, err := lru.New[decisionKey, cachedDecision](size)
	if err != nil {
		panic(err) // size is validated by config; a bug otherwise
	}
	return &decisionCache{ttl: ttl, now: now, cache: c}
}

func (c *decisionCache) get(tok *authn.Token, f *facts) (decision, bool) {
	k := decisionKey{tok, f.method, f.path, f.mode}
	e, ok := c.cache.Get(k)
	if !ok {
		return decision{}, false
	}
	now := c.now().UnixNano()
	if now >= e.deadline || (tok.CachedUntil != 0 && now >= tok.CachedUntil) {
		c.cache.Remove(k)
		return decision{}, false
	}
	return e.d, true
}

func (c *decisionCache) put(tok *authn.Token, f *facts, d decision) {
	now := c.now()
	deadline := min(now.Add(c.ttl).UnixNano(), tok.CachedUntil)
	if deadline <= now.UnixNano() {
		return // the token's own entry has ended (or it was never cached)
	}
	c.cache.Add(decisionKey{tok, f.method, f.path, f.mode}, cachedDecision{d: d, deadline: deadline})
}
