package fleet

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

// budgetLua is GCRA (the generic cell rate algorithm) on Redis's own clock,
// so that replicas with skewed clocks share one budget: one key holds the
// theoretical arrival time (microseconds); a call is allowed unless it
// comes more than burst emission intervals early. It returns 0 when
// allowed, else the microseconds until the next call would be.
//
// The state carries no MAC (Redis itself updates it), so it is bounded
// instead: a legitimate one is never later than now + burst × interval, so
// a later one (or one that is not a number) was written by someone else,
// and is reset: no wait it causes exceeds one emission interval. The reply
// is -1 when it was reset (and the call allowed).
//
// KEYS: the budget. ARGV: emission interval (µs), burst.
const budgetLua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local stored = redis.call('GET', KEYS[1])
local tat = tonumber(stored or '0')
local reset = false
if stored and (tat == nil or tat ~= tat or tat > now + burst * interval) then tat = now; reset = true end
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if now < allow_at then return math.ceil(allow_at - now) end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
if reset then return -1 end
return 0
`

// Budget is a Verifier that lets at most perSecond calls a second through
// to Next across every replica sharing the Redis (OKTA_MAX_RPS for the
// whole fleet), with bursts of ceil(perSecond), and refuses the rest at
// once with authn.ErrOverBudget, as authn.RateLimited does for one
// replica. When Redis cannot answer, Local decides: each replica then
// spends OKTA_MAX_RPS on its own, as without Redis (the fleet may spend
// that much per replica for the outage, and Okta's own 429 then holds).
type Budget struct {
	tier     *Tier
	next     authn.Verifier
	local    authn.Verifier
	interval string // µs, as the script takes it
	maxWait  int64  // µs: one emission interval, the longest wait a legitimate state makes
	burst    string
	key      string
	now      func() time.Time

	// OnRefuse, when set, is called for each call refused.
	OnRefuse func()
}

var _ authn.Verifier = (*Budget)(nil)

// NewBudget allows perSecond calls a second to next across the fleet;
// local (typically an authn.RateLimited wrapping next) answers when Redis
// cannot. Each issuer's tier has its own budget (Settings.Issuer).
func (t *Tier) NewBudget(next, local authn.Verifier, perSecond float64) *Budget {
	us := max(1, int64(math.Round(1e6/perSecond)))
	key := t.s.Prefix + "budget"
	if t.s.Issuer != "" {
		key += ":" + t.s.Issuer
	}
	return &Budget{tier: t, next: next, local: local, now: t.now, key: key,
		interval: strconv.FormatInt(us, 10), maxWait: us,
		burst: strconv.Itoa(max(1, int(math.Ceil(perSecond))))}
}

// Verify implements authn.Verifier.
func (b *Budget) Verify(ctx context.Context, token string) (*authn.Token, error) {
	var wait int64
	err := b.tier.do(ctx, "budget", func(ctx context.Context) (err error) {
		wait, err = b.tier.budgetScript.Run(ctx, b.tier.rdb, []string{b.key}, b.interval, b.burst).Int64()
		return err
	})
	if err != nil {
		return b.local.Verify(ctx, token)
	}
	switch {
	case wait == -1:
		b.tier.reject("budget", "corrupt")
	case wait < 0:
		b.tier.reject("reply", "unexpected")
	case wait > b.maxWait:
		// No legitimate state makes a longer wait (budgetLua): a hostile
		// Redis's reply is bounded here too.
		b.tier.reject("budget", "corrupt")
		wait = b.maxWait
	}
	if wait > 0 {
		if b.OnRefuse != nil {
			b.OnRefuse()
		}
		return nil, &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "authorization server budget reached", RetryAfter: b.now().Add(time.Duration(wait) * time.Microsecond),
			Err: authn.ErrOverBudget}
	}
	return b.next.Verify(ctx, token)
}
