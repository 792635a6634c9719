package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/authgate/authgate/internal/dpop"
	"github.com/authgate/authgate/internal/fleet"
)

// The tier is DPoP's fleet replay store.
var _ dpop.FleetStore = (*fleet.Tier)(nil)

// TestSetNX: a key set by one replica is refused on another until its ttl
// ends; with Redis gone it is an error, never a "fresh".
func TestSetNX(t *testing.T) {
	m := miniredis.RunT(t)
	a := newReplica(t, m.Addr(), &idp{})
	b := newReplica(t, m.Addr(), &idp{})
	ctx := context.Background()
	key := dpop.FleetKeyPrefix + "00ff"
	if fresh, err := a.tier.SetNX(ctx, key, time.Minute); err != nil || !fresh {
		t.Fatalf("first use on a: fresh=%v err=%v", fresh, err)
	}
	if fresh, err := b.tier.SetNX(ctx, key, time.Minute); err != nil || fresh {
		t.Fatalf("replay on b: fresh=%v err=%v, want a refusal", fresh, err)
	}
	m.FastForward(time.Minute + time.Second)
	if fresh, err := b.tier.SetNX(ctx, key, time.Minute); err != nil || !fresh {
		t.Fatalf("after the ttl: fresh=%v err=%v", fresh, err)
	}
	if _, err := a.tier.SetNX(ctx, "", time.Minute); err == nil {
		t.Error("an empty key was accepted")
	}
	m.Close()
	if fresh, err := a.tier.SetNX(ctx, key+"01", time.Minute); err == nil || fresh {
		t.Errorf("Redis down: fresh=%v err=%v, want an error", fresh, err)
	}
}
