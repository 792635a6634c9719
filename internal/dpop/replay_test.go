package dpop

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLocalReplay(t *testing.T) {
	ctx := context.Background()
	now := t0
	s := NewLocalReplay(3, func() time.Time { return now })
	a, b := replayKeyOf("jkt", "a"), replayKeyOf("jkt", "b")
	use := func(k ReplayKey, ttl time.Duration) bool {
		t.Helper()
		fresh, err := s.Use(ctx, k, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return fresh
	}
	if !use(a, time.Minute) || use(a, time.Minute) {
		t.Fatal("first use not fresh, or second use fresh")
	}
	// Still remembered just before its end, forgotten at it.
	now = t0.Add(time.Minute - time.Nanosecond)
	if use(a, time.Minute) {
		t.Fatal("replay accepted before its entry ended")
	}
	now = t0.Add(time.Minute)
	if !use(a, time.Minute) {
		t.Fatal("a key whose proof can no longer be valid still refused")
	}
	// Expired keys are swept, not just ignored.
	now = now.Add(2 * time.Minute)
	use(b, time.Minute)
	if s.Len() != 1 {
		t.Fatalf("Len = %d after the sweep, want 1", s.Len())
	}
	// Bounded: past size the oldest key is forgotten.
	for _, j := range []string{"c", "d", "e"} {
		use(replayKeyOf("jkt", j), time.Minute)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want the bound 3", s.Len())
	}
	if !use(b, time.Minute) {
		t.Fatal("the evicted oldest key is still refused: is the store bounded?")
	}
}

func TestReplayKey(t *testing.T) {
	k := replayKeyOf("thumb", "jti-1")
	if k == replayKeyOf("thumb", "jti-2") || k == replayKeyOf("thumb2", "jti-1") || k != replayKeyOf("thumb", "jti-1") {
		t.Fatal("replay keys do not name (jkt, jti)")
	}
	if replayKeyOf("ab", "c") == replayKeyOf("a", "bc") {
		t.Fatal("replay key is ambiguous")
	}
	if s := k.String(); len(s) != 64 || strings.Contains(s, "thumb") || strings.Contains(s, "jti") {
		t.Fatalf("String() = %q: want 64 hex digits, no raw value", s)
	}
}

// fakeFleet is a FleetStore whose answers are given.
type fakeFleet struct {
	setNX func(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

func (f *fakeFleet) SetNX(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	return f.setNX(ctx, key, ttl)
}

var _ FleetStore = (*fakeFleet)(nil)

// memFleet is a shared store, as Redis would be for several replicas.
func memFleet() (*fakeFleet, map[string]time.Duration) {
	m := map[string]time.Duration{}
	return &fakeFleet{setNX: func(_ context.Context, key string, ttl time.Duration) (bool, error) {
		if _, ok := m[key]; ok {
			return false, nil
		}
		m[key] = ttl
		return true, nil
	}}, m
}

func TestLayeredReplay(t *testing.T) {
	ctx := context.Background()
	fleet, shared := memFleet()
	replica := func() *LayeredReplay {
		return &LayeredReplay{Local: NewLocalReplay(10, func() time.Time { return t0 }), Fleet: fleet}
	}
	r1, r2 := replica(), replica()
	k := replayKeyOf("jkt", "jti")

	if fresh, err := r1.Use(ctx, k, time.Minute); !fresh || err != nil {
		t.Fatalf("first use on replica 1: %v, %v", fresh, err)
	}
	if ttl, ok := shared[FleetKeyPrefix+k.String()]; !ok || ttl != time.Minute {
		t.Fatalf("fleet store holds %v: want the hashed key for a minute", shared)
	}
	// Replayed on another replica: the fleet store refuses it.
	if fresh, err := r2.Use(ctx, k, time.Minute); fresh || err != nil {
		t.Fatalf("replay on replica 2: %v, %v; want refused", fresh, err)
	}
	// Replayed on the first: refused locally, the fleet not asked.
	calls := 0
	fleet.setNX = func(context.Context, string, time.Duration) (bool, error) { calls++; return true, nil }
	if fresh, _ := r1.Use(ctx, k, time.Minute); fresh || calls != 0 {
		t.Fatalf("replay on replica 1: fresh %v, %d fleet calls; want refused locally", fresh, calls)
	}

	// Fleet down: the local answer stands, and the failure is reported.
	down := errors.New("redis down")
	fleet.setNX = func(context.Context, string, time.Duration) (bool, error) { return false, down }
	var reported error
	r1.OnFleetError = func(err error) { reported = err }
	k2 := replayKeyOf("jkt", "jti-2")
	if fresh, err := r1.Use(ctx, k2, time.Minute); !fresh || err != nil || reported != down {
		t.Fatalf("fleet down, first use: %v, %v, reported %v; want fresh, nil, the error", fresh, err, reported)
	}
	if fresh, err := r1.Use(ctx, k2, time.Minute); fresh || err != nil {
		t.Fatalf("fleet down, replay on the same replica: %v, %v; want refused", fresh, err)
	}
	// ...but another replica cannot know of it: what "Redis down" means.
	if fresh, _ := r2.Use(ctx, k2, time.Minute); !fresh {
		t.Fatal("fleet down: replica 2 refused a proof it never saw (how?)")
	}
}
