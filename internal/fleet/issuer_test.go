package fleet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fleet"
	"github.com/authgate/authgate/internal/stacktest"
)

// TestIssuersApart: two issuers' tiers on one Redis (Settings.Issuer) share
// nothing: an answer of one is never the other's shared hit, a 429 hold
// one announces holds only its own replicas, each has its own breaker, and
// each its own fleet budget (one issuer's spent budget refuses none of the
// other's calls).
func TestIssuersApart(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{}
	org := func(s *fleet.Settings) { s.Issuer = "org" }
	p1, p2 := newReplica(t, rs.Addr, f), newReplica(t, rs.Addr, f)
	o1, o2 := newReplica(t, rs.Addr, f, org), newReplica(t, rs.Addr, f, org)

	const token = "tok-issuers-0123456789"
	lookup(t, p1, token)
	if _, how, err := lookup(t, p2, token); err != nil || how != authn.SharedHit {
		t.Fatalf("the primary's other replica: %v %v, want a shared hit", how, err)
	}
	if _, how, err := lookup(t, o1, token); err != nil || how != authn.Miss {
		t.Errorf("org's replica: %v %v, want a miss: the primary's answer is not org's", how, err)
	}
	if _, how, err := lookup(t, o2, token); err != nil || how != authn.SharedHit {
		t.Errorf("org's other replica: %v %v, want org's shared hit", how, err)
	}

	o1.tier.PublishHold(time.Now().Add(time.Minute))
	stacktest.Eventually(t, time.Second, "org's hold reaches org's other replica", func() bool { return o2.holds.Load() == 1 })
	// A message on the primary's channel sent after the hold: once it is
	// heard, the hold, sent before on the other channel, would have been.
	p1.tier.PublishHold(time.Now().Add(time.Minute))
	stacktest.Eventually(t, time.Second, "the primary's hold reaches its other replica", func() bool { return p2.holds.Load() >= 1 })
	if n := p2.holds.Load(); n != 1 {
		t.Errorf("the primary's replica heard %d holds, want its own issuer's one", n)
	}
	if n := o2.holds.Load(); n != 1 {
		t.Errorf("org's replica heard %d holds, want its own issuer's one", n)
	}
	local := authn.NewRateLimited(f, 1, nil)
	ctx := context.Background()
	if _, err := o1.tier.NewBudget(f, local, 1).Verify(ctx, "t"); err != nil {
		t.Fatalf("org's first call: %v", err)
	}
	if _, err := o2.tier.NewBudget(f, local, 1).Verify(ctx, "t"); !errors.Is(err, authn.ErrOverBudget) {
		t.Errorf("org's second call: %v, want org's fleet budget spent", err)
	}
	if _, err := p1.tier.NewBudget(f, local, 1).Verify(ctx, "t"); err != nil {
		t.Errorf("the primary's first call after org spent its budget: %v", err)
	}
	if p1.tier.Breaker().Name() != "redis" || o1.tier.Breaker().Name() != "redis_org" {
		t.Errorf("breakers %q, %q; want redis, redis_org", p1.tier.Breaker().Name(), o1.tier.Breaker().Name())
	}
}
