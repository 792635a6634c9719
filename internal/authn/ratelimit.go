package authn

import (
	"context"
	"errors"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/authgate/authgate/internal/fault"
)

// ErrOverBudget is the cause of the Unavailable error a RateLimited returns
// when its budget for this second is spent.
var ErrOverBudget = errors.New("introspection budget of the issuer (OKTA_MAX_RPS, ISSUER_N_MAX_RPS) spent")

// RateLimited is a Verifier that lets at most a given number of calls per
// second through to Next and refuses the rest at once. It protects the
// authorization server's budget, which Okta shares across a whole org: put
// it under the Cache, so that cached tokens never spend it, and above the
// breaker, so that our own refusals never count as upstream failures.
type RateLimited struct {
	next    Verifier
	limiter *rate.Limiter
	now     func() time.Time

	// OnRefuse, when set, is called for each call refused.
	OnRefuse func()
}

var _ Verifier = (*RateLimited)(nil)

// NewRateLimited allows perSecond calls a second to next, with bursts of up
// to ceil(perSecond) (at least one). now is the clock; nil means time.Now.
func NewRateLimited(next Verifier, perSecond float64, now func() time.Time) *RateLimited {
	if now == nil {
		now = time.Now
	}
	burst := max(1, int(math.Ceil(perSecond)))
	return &RateLimited{next: next, limiter: rate.NewLimiter(rate.Limit(perSecond), burst), now: now}
}

// Verify implements Verifier. Over the budget it returns an Unavailable
// error whose RetryAfter is when the next call would be allowed.
func (l *RateLimited) Verify(ctx context.Context, token string) (*Token, error) {
	now := l.now()
	r := l.limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		if l.OnRefuse != nil {
			l.OnRefuse()
		}
		return nil, &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "authorization server budget reached", RetryAfter: now.Add(d), Err: ErrOverBudget}
	}
	return l.next.Verify(ctx, token)
}
