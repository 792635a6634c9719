package fleet_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/fleet"
	"github.com/authgate/authgate/internal/stacktest"
	"github.com/authgate/authgate/internal/tokenid"
)

// idp is a Verifier standing in for the introspection chain: it counts
// calls and answers with answer (nil: an active token whose claims carry
// the token's marker), after gate is closed when set.
type idp struct {
	calls  atomic.Int64
	gate   chan struct{}
	answer func(token string) (*authn.Token, error)
}

var _ authn.Verifier = (*idp)(nil)

func (f *idp) Verify(ctx context.Context, token string) (*authn.Token, error) {
	f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, &fault.Error{Kind: fault.Unavailable, Err: ctx.Err()}
		}
	}
	if f.answer != nil {
		return f.answer(token)
	}
	return &authn.Token{Subject: "alice", ClientID: "demo", Scope: "read", Scopes: []string{"read"},
		Exp: time.Now().Add(time.Hour).Unix(), Claims: []byte(`{"active":true,"sub":"alice","marker":"CLAIM-MARKER-77"}`),
		Validation: authn.ValidationIntrospection}, nil
}

// observer records the Redis calls, revocations and what was not believed.
type observer struct {
	mu       sync.Mutex
	calls    map[string]int // "op result"
	revs     map[string]int
	rejected map[string]int // "what reason"
}

func (o *observer) Rejected(what, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rejected == nil {
		o.rejected = map[string]int{}
	}
	o.rejected[what+" "+reason]++
}

func (o *observer) rejections(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rejected[k]
}

func (o *observer) Redis(op, result string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls == nil {
		o.calls = map[string]int{}
	}
	o.calls[op+" "+result]++
}

func (o *observer) Revocation(source string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.revs == nil {
		o.revs = map[string]int{}
	}
	o.revs[source]++
}

func (o *observer) count(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[k]
}

func (o *observer) revocations(source string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.revs[source]
}

// The fleet keys of the tests (FLEET_KEY).
const (
	fleetKey  = "fleet-key-of-the-tests-0123456789abcdef"
	fleetKey2 = "fleet-key-two-of-the-tests-0123456789abc"
)

// replica is one authgate's token side: its Cache over the shared Tier.
type replica struct {
	cache *authn.Cache
	tier  *fleet.Tier
	obs   *observer
	holds atomic.Int64 // OnHold calls
}

// newReplica is a replica with the tests' fleet key; edit, when given,
// changes its settings.
func newReplica(t *testing.T, addr string, next authn.Verifier, edit ...func(*fleet.Settings)) *replica {
	t.Helper()
	rdb, err := fleet.Dial("redis://"+addr+"/0", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{obs: &observer{}}
	s := fleet.Settings{Client: rdb, Key: fleetKey, Prefix: "test:", Timeout: 200 * time.Millisecond,
		LockTTL: 2 * time.Second, Tombstone: time.Minute, Observer: r.obs,
		OnHold: func(time.Time) { r.holds.Add(1) }}
	for _, e := range edit {
		e(&s)
	}
	if r.tier, err = fleet.New(s); err != nil {
		t.Fatal(err)
	}
	r.cache, err = authn.NewCache(next, authn.CacheSettings{Size: 100, TTL: time.Minute, NegativeTTL: 30 * time.Second,
		Timeout: 2 * time.Second, Shared: r.tier, Now: s.Now})
	if err != nil {
		t.Fatal(err)
	}
	r.tier.Start(func(key [sha256.Size]byte) { r.cache.RevokeKey(key, time.Minute) })
	t.Cleanup(func() { r.tier.Close() })
	return r
}

func lookup(t *testing.T, r *replica, token string) (*authn.Token, authn.Lookup, error) {
	t.Helper()
	return r.cache.Lookup(context.Background(), token)
}

// TestSharedHit: a token introspected by one replica is a shared hit on
// another, with the same end of life, and is then an L1 hit there.
func TestSharedHit(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{}
	a, b := newReplica(t, rs.Addr, f), newReplica(t, rs.Addr, f)
	const token = "tok-shared-hit-0123456789"
	ta, how, err := lookup(t, a, token)
	if err != nil || how != authn.Miss {
		t.Fatalf("first lookup: %v %v", how, err)
	}
	tb, how, err := lookup(t, b, token)
	if err != nil || how != authn.SharedHit {
		t.Fatalf("other replica: %v %v, want shared_hit", how, err)
	}
	if tb.Subject != "alice" || tb.Scope != "read" || string(tb.Claims) != string(ta.Claims) || tb.Validation != ta.Validation {
		t.Errorf("shared token %+v, want %+v", tb, ta)
	}
	// Same absolute end (to the millisecond PXAT keeps; the sealed value
	// keeps the nanoseconds).
	if tb.CachedUntil != ta.CachedUntil {
		t.Errorf("CachedUntil %d on the other replica, want %d", tb.CachedUntil, ta.CachedUntil)
	}
	if _, how, _ := lookup(t, b, token); how != authn.Hit {
		t.Errorf("third lookup %v, want an L1 hit", how)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d introspections, want 1", n)
	}
	// An inactive answer is shared too.
	f.answer = func(string) (*authn.Token, error) {
		return nil, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}
	}
	if _, how, err := lookup(t, a, "tok-inactive-0123456789"); !fault.Is(err, fault.Unauthenticated) || how != authn.Miss {
		t.Fatalf("inactive: %v %v", how, err)
	}
	if _, how, err := lookup(t, b, "tok-inactive-0123456789"); !fault.Is(err, fault.Unauthenticated) || how != authn.SharedHit {
		t.Fatalf("inactive on the other replica: %v %v, want a shared hit of 401", how, err)
	}
	// The answer's TTL in Redis ends no later than the entry.
	name, _, _ := fleet.Names(fleetKey, "test:", token)
	pttl, err := rs.Client().PTTL(context.Background(), name).Result()
	if err != nil || pttl <= 0 || pttl > time.Minute {
		t.Errorf("PTTL %v %v, want (0, 1m]", pttl, err)
	}
}

// TestSealed: what Redis holds names neither the token nor its claims.
func TestSealed(t *testing.T) {
	rs := stacktest.StartRedis(t)
	a := newReplica(t, rs.Addr, &idp{})
	const token = "TOKEN-MARKER-secret-abcdef0123"
	if _, _, err := lookup(t, a, token); err != nil {
		t.Fatal(err)
	}
	c := rs.Client()
	ctx := context.Background()
	ks, err := c.Keys(ctx, "*").Result()
	if err != nil || len(ks) == 0 {
		t.Fatalf("keys %v %v", ks, err)
	}
	for _, k := range ks {
		v, _ := c.Get(ctx, k).Result()
		for _, s := range []string{token, "CLAIM-MARKER-77", "alice"} {
			if strings.Contains(k, s) || strings.Contains(v, s) {
				t.Errorf("Redis key %q (value %q) shows %q", k, v, s)
			}
		}
	}
}

// TestGarbageValue: a value that does not open is a miss, is deleted and
// replaced; no error reaches the caller.
func TestGarbageValue(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{}
	const token = "tok-garbage-0123456789"
	name, _, _ := fleet.Names(fleetKey, "test:", token)
	c := rs.Client()
	for _, v := range []string{"garbage", "\x01" + strings.Repeat("x", 64)} {
		c.Set(context.Background(), name, v, time.Minute)
		if _, how, err := lookup(t, newReplica(t, rs.Addr, f), token); err != nil || how != authn.Miss {
			t.Fatalf("garbage %q: %v %v, want a miss answered by the IdP", v, how, err)
		}
		got, _ := c.Get(context.Background(), name).Result()
		if got == v {
			t.Errorf("garbage %q left in Redis", v)
		}
	}
	// Sealed under another token's key: does not open either.
	other := newReplica(t, rs.Addr, f)
	if _, _, err := lookup(t, other, "tok-other-0123456789"); err != nil {
		t.Fatal(err)
	}
	oname, _, _ := fleet.Names(fleetKey, "test:", "tok-other-0123456789")
	v, _ := c.Get(context.Background(), oname).Result()
	c.Set(context.Background(), name, v, time.Minute)
	if _, how, err := lookup(t, newReplica(t, rs.Addr, f), token); err != nil || how != authn.Miss {
		t.Fatalf("another token's value: %v %v, want a miss", how, err)
	}
}

// TestCoalescedAcrossReplicas: concurrent misses for one token on three
// replicas make one introspection; the others wait for its answer.
func TestCoalescedAcrossReplicas(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{gate: make(chan struct{})}
	rep := []*replica{newReplica(t, rs.Addr, f), newReplica(t, rs.Addr, f), newReplica(t, rs.Addr, f)}
	const token = "tok-coalesced-0123456789"
	var wg sync.WaitGroup
	hows := make([]authn.Lookup, 3)
	errs := make([]error, 3)
	for i, r := range rep {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, hows[i], errs[i] = r.cache.Lookup(context.Background(), token)
		}()
	}
	stacktest.Eventually(t, 2*time.Second, "the first replica introspects", func() bool { return f.calls.Load() == 1 })
	// The others are waiting: their claim came back "wait" at least once.
	stacktest.Eventually(t, 2*time.Second, "the others wait", func() bool {
		n := 0
		for _, r := range rep {
			n += r.obs.count("claim ok")
		}
		return n >= 3
	})
	close(f.gate)
	wg.Wait()
	misses, coalesced := 0, 0
	for i := range rep {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		switch hows[i] {
		case authn.Miss:
			misses++
		case authn.SharedCoalesced:
			coalesced++
		}
	}
	if misses != 1 || coalesced != 2 || f.calls.Load() != 1 {
		t.Errorf("lookups %v, %d introspections; want one miss, two shared_coalesced, one call", hows, f.calls.Load())
	}
}

// TestRevokeAcrossReplicas: a revocation on one replica removes the token
// from every replica's cache (pub/sub) and its tombstone keeps an
// introspection in flight from bringing it back.
func TestRevokeAcrossReplicas(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{}
	a, b := newReplica(t, rs.Addr, f), newReplica(t, rs.Addr, f)
	const token = "tok-revoke-0123456789"
	lookup(t, a, token)
	if _, how, _ := lookup(t, b, token); how != authn.SharedHit {
		t.Fatalf("b: %v", how)
	}
	// An introspection in flight on a third replica when the token is revoked.
	slow := &idp{gate: make(chan struct{})}
	c := newReplica(t, rs.Addr, slow)
	flight := make(chan error, 1)
	go func() {
		_, _, err := c.cache.Lookup(context.Background(), "tok-inflight-0123456789")
		flight <- err
	}()
	stacktest.Eventually(t, 2*time.Second, "the introspection is in flight", func() bool { return slow.calls.Load() == 1 })

	key := tokenid.Revocation(token)
	a.cache.RevokeKey(key, time.Minute)
	if err := a.tier.Revoke(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	inflight := tokenid.Revocation("tok-inflight-0123456789")
	c.cache.RevokeKey(inflight, time.Minute)
	if err := c.tier.Revoke(context.Background(), inflight); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stacktest.Eventually(t, time.Second, "the other replica drops the token", func() bool {
		_, _, err := lookup(t, b, token)
		return fault.Is(err, fault.Unauthenticated)
	})
	t.Logf("revoked on the other replica after %s", time.Since(start))
	if _, _, err := lookup(t, newReplica(t, rs.Addr, f), token); !fault.Is(err, fault.Unauthenticated) {
		t.Errorf("a new replica: %v, want the tombstone's 401", err)
	}
	// Each replica counts the others' revocations, never its own.
	stacktest.Eventually(t, time.Second, "pub/sub revocations counted", func() bool {
		return a.obs.revocations("pubsub") == 1 && b.obs.revocations("pubsub") == 2 && c.obs.revocations("pubsub") == 1
	})
	close(slow.gate)
	<-flight
	if _, _, err := lookup(t, c, "tok-inflight-0123456789"); !fault.Is(err, fault.Unauthenticated) {
		t.Errorf("in-flight introspection brought the token back locally: %v", err)
	}
	if _, _, err := lookup(t, newReplica(t, rs.Addr, f), "tok-inflight-0123456789"); !fault.Is(err, fault.Unauthenticated) {
		t.Errorf("in-flight introspection brought the token back in Redis: %v", err)
	}
}

// TestBudgetAcrossReplicas: OKTA_MAX_RPS is one budget for the fleet; with
// Redis gone each replica's own limiter decides.
func TestBudgetAcrossReplicas(t *testing.T) {
	rs := stacktest.StartRedis(t)
	f := &idp{}
	a, b := newReplica(t, rs.Addr, f), newReplica(t, rs.Addr, f)
	local := authn.NewRateLimited(f, 1, nil)
	ba, bb := a.tier.NewBudget(f, local, 2), b.tier.NewBudget(f, local, 2)
	ctx := context.Background()
	var allowed, refused int
	for _, v := range []authn.Verifier{ba, bb, ba, bb} {
		_, err := v.Verify(ctx, "t")
		switch {
		case err == nil:
			allowed++
		case errors.Is(err, authn.ErrOverBudget):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if allowed != 2 || refused != 2 {
		t.Errorf("%d allowed, %d refused; want a fleet-wide burst of 2", allowed, refused)
	}
	rs.Stop()
	// Redis down: each replica's own budget (1 here), never an error of its own.
	if _, err := ba.Verify(ctx, "t"); err != nil {
		t.Errorf("Redis down: %v, want the local budget's allowance", err)
	}
}

// TestRedisErrors: READONLY, OOM and a dead server make every lookup an
// introspection, never an error; the breaker then stops calling Redis.
func TestRedisErrors(t *testing.T) {
	for _, msg := range []string{"READONLY You can't write against a read only replica.", "OOM command not allowed when used memory > 'maxmemory'."} {
		t.Run(strings.Fields(msg)[0], func(t *testing.T) {
			m := miniredis.RunT(t)
			f := &idp{}
			a := newReplica(t, m.Addr(), f)
			m.SetError(msg)
			for i := range 8 {
				tok, how, err := lookup(t, a, "tok-err-"+strings.Repeat("x", i+10))
				if err != nil || how != authn.Miss || tok.Subject != "alice" {
					t.Fatalf("lookup %d: %v %v", i, how, err)
				}
			}
			if n := a.obs.count("claim error"); n != 5 {
				t.Errorf("%d claims failed, want 5 before the breaker opens", n)
			}
			if n := a.obs.count("claim breaker_open"); n != 3 {
				t.Errorf("%d claims not sent, want 3", n)
			}
			if h := a.tier.Health(context.Background()); h != "breaker open" {
				t.Errorf("Health %q", h)
			}
			m.SetError("")
			stacktest.Eventually(t, 3*time.Second, "the tier comes back", func() bool {
				_, how, _ := lookup(t, newReplicaOn(t, a, f), "tok-back-0123456789")
				return how == authn.SharedHit || a.tier.Health(context.Background()) == "ok"
			})
		})
	}
}

// newReplicaOn is a replica with r's tier (its breaker) and a fresh cache.
func newReplicaOn(t *testing.T, r *replica, next authn.Verifier) *replica {
	t.Helper()
	c, err := authn.NewCache(next, authn.CacheSettings{Size: 10, TTL: time.Minute, NegativeTTL: time.Second, Timeout: time.Second, Shared: r.tier})
	if err != nil {
		t.Fatal(err)
	}
	return &replica{cache: c, tier: r.tier, obs: r.obs}
}

// TestSlowRedis: a Redis slower than REDIS_TIMEOUT costs at most the
// timeout per call, then nothing (the breaker).
func TestSlowRedis(t *testing.T) {
	m := miniredis.RunT(t)
	proxy := stacktest.StartSlowProxy(t, m.Addr(), 0)
	f := &idp{}
	a := newReplica(t, proxy.Addr(), f)
	if _, how, err := lookup(t, a, "tok-fast-0123456789"); err != nil || how != authn.Miss {
		t.Fatalf("%v %v", how, err)
	}
	proxy.SetDelay(time.Second)
	for i := range 8 {
		start := time.Now()
		_, how, err := lookup(t, a, "tok-slow-"+strings.Repeat("y", 10+i))
		if err != nil || how != authn.Miss {
			t.Fatalf("lookup %d: %v %v", i, how, err)
		}
		if d := time.Since(start); d > 700*time.Millisecond {
			t.Errorf("lookup %d took %s with REDIS_TIMEOUT 200ms", i, d)
		}
	}
	if a.obs.count("claim breaker_open") == 0 {
		t.Errorf("the breaker did not open on a slow Redis: %v", a.obs.calls)
	}
}
