package gateway

import (
	"net/http"
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
//
// The cache holds at most size entries (CACHE_SIZE), and each entry is
// bounded: a request whose method, path and mode take more than
// maxDecisionKeyBytes, or a decision whose id, headers and body take more
// than maxDecisionBytes, is decided afresh and not kept. Otherwise one
// valid token could fill memory with long unique paths.
type decisionCache struct {
	ttl   time.Duration
	now   func() time.Time
	cache *lru.Cache[decisionKey, cachedDecision]
}

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

// cacheable reports whether a decision on f may be looked up and kept:
// whether its key is within maxDecisionKeyBytes.
func cacheable(f *facts) bool {
	return len(f.method)+len(f.path)+len(f.mode) <= maxDecisionKeyBytes
}

func (c *decisionCache) get(tok *authn.Token, f *facts) (decision, bool) {
	if !cacheable(f) {
		return decision{}, false
	}
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
	if !cacheable(f) || decisionBytes(d) > maxDecisionBytes {
		return
	}
	now := c.now()
	deadline := min(now.Add(c.ttl).UnixNano(), tok.CachedUntil)
	if deadline <= now.UnixNano() {
		return // the token's own entry has ended (or it was never cached)
	}
	c.cache.Add(decisionKey{tok, f.method, f.path, f.mode}, cachedDecision{d: d, deadline: deadline})
}

// decisionBytes is what d holds beyond its fixed size: its id and, for a
// rich decision, its headers and body. (The reason is a constant.)
func decisionBytes(d decision) int {
	n := len(d.id)
	if r := d.rich; r != nil {
		n += len(r.body) + len(r.bodyType) + headerBytes(r.headers) + headerBytes(r.responseHeaders)
	}
	return n
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
