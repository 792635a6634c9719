package authz

import (
	"context"
	"net/http"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/authgate/authgate/internal/authn"
)

// Cache is a Decider that remembers its Next's verdicts per token, method
// and path (and gateway mode), for policies that depend on nothing else
// (DECISION_CACHE_TTL): not on the query, headers, host, scheme, remote
// address or time. A policy change takes effect for a cached pair only when
// its entry ends.
//
// The key holds the input's Source, the *authn.Token of the token cache,
// rather than the token's hash: that pointer names one cache entry of one
// token, so a decision can never outlive the entry it was made from (nor,
// through it, the token's exp), and a re-introspected token starts afresh.
// An input without a Source is decided afresh and not kept.
//
// The cache holds at most size entries, and each entry is bounded: a
// request whose method, path and mode take more than maxDecisionKeyBytes,
// or a decision whose id, headers and body take more than maxDecisionBytes,
// is decided afresh and not kept. Otherwise one valid token could fill
// memory with long unique paths.
type Cache struct {
	next  Decider
	ttl   time.Duration
	now   func() time.Time
	cache *lru.Cache[decisionKey, cachedDecision]
}

var _ Decider = (*Cache)(nil)

// Bounds of one decision cache entry.
const (
	maxDecisionKeyBytes = 1 << 10 // method + path + mode
	maxDecisionBytes    = 4 << 10 // decision id, headers and body of a rich decision
)

type decisionKey struct {
	tok                *authn.Token
	method, path, mode string
}

type cachedDecision struct {
	d        Decision
	deadline int64 // unix nanos
}

// NewCache keeps up to size of next's decisions for ttl each. now is the
// clock; nil means time.Now.
func NewCache(next Decider, size int, ttl time.Duration, now func() time.Time) (*Cache, error) {
	c, err := lru.New[decisionKey, cachedDecision](size)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{next: next, ttl: ttl, now: now, cache: c}, nil
}

// Decide implements Decider. A decision served from the cache has Cached set.
func (c *Cache) Decide(ctx context.Context, in *Input) (Decision, error) {
	if in.Source == nil || len(in.Method)+len(in.Path)+len(in.Mode) > maxDecisionKeyBytes {
		return c.next.Decide(ctx, in)
	}
	k := decisionKey{in.Source, in.Method, in.Path, in.Mode}
	if e, ok := c.cache.Get(k); ok {
		now := c.now().UnixNano()
		if now < e.deadline && (in.Source.CachedUntil == 0 || now < in.Source.CachedUntil) {
			e.d.Cached = true
			return e.d, nil
		}
		c.cache.Remove(k)
	}
	d, err := c.next.Decide(ctx, in)
	if err != nil || decisionBytes(&d) > maxDecisionBytes {
		return d, err
	}
	now := c.now()
	deadline := min(now.Add(c.ttl).UnixNano(), in.Source.CachedUntil)
	if deadline > now.UnixNano() { // else the token's own entry has ended, or it was never cached
		c.cache.Add(k, cachedDecision{d: d, deadline: deadline})
	}
	return d, nil
}

// decisionBytes is what d holds beyond its fixed size: its id and, for a
// rich decision, its headers and body. (The reason is a constant.)
func decisionBytes(d *Decision) int {
	return len(d.ID) + len(d.Body) + len(d.BodyType) + headerBytes(d.Headers) + headerBytes(d.ResponseHeaders)
}

func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		n += len(k)
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}
