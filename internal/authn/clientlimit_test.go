package authn_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

// TestClientLimitedIsPerClient: past its own limit a client's misses are
// refused with Retry-After, without reaching next; another client, and a
// client that does not say who it is, are untouched.
func TestClientLimitedIsPerClient(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_800_000_000, 0)}
	next := &scripted{answer: activeUntil(0)}
	var refused int
	limits := authn.NewClientLimited(2, 100, clk.Now) // 2/s, burst 2
	limits.OnRefuse = func() { refused++ }
	cl := limits.Through(next)
	flood := authn.WithClient(context.Background(), "198.51.100.7")
	for i := range 2 {
		if _, err := cl.Verify(flood, "t"); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	for range 5 {
		_, err := cl.Verify(flood, "t")
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Unavailable || !errors.Is(err, authn.ErrClientOverBudget) {
			t.Fatalf("over the client's limit: %v, want Unavailable ErrClientOverBudget", err)
		}
		if want := clk.Now().Add(500 * time.Millisecond); !fe.RetryAfter.Equal(want) {
			t.Errorf("RetryAfter %v, want %v", fe.RetryAfter, want)
		}
		if authn.IsUpstreamFailure(err) {
			t.Errorf("a client refusal counts against the breaker: %v", err)
		}
	}
	if refused != 5 || next.calls.Load() != 2 {
		t.Errorf("%d refusals counted, %d calls reached next; want 5 and 2", refused, next.calls.Load())
	}
	for i := range 2 {
		if _, err := cl.Verify(authn.WithClient(context.Background(), "198.51.100.8"), "t"); err != nil {
			t.Fatalf("another client, call %d: %v", i, err)
		}
	}
	clk.Advance(500 * time.Millisecond)
	if _, err := cl.Verify(flood, "t"); err != nil {
		t.Errorf("after a refill: %v", err)
	}
}

// TestClientLimitedGroupsIPv6By64: the addresses of one IPv6 /64 are one
// client; another /64 is another; an IPv4-mapped address is its IPv4 one.
func TestClientLimitedGroupsIPv6By64(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_800_000_000, 0)}
	cl := authn.NewClientLimited(1, 100, clk.Now).Through(&scripted{answer: activeUntil(0)})
	verify := func(addr string) error {
		_, err := cl.Verify(authn.WithClient(context.Background(), addr), "t")
		return err
	}
	if err := verify("2001:db8:1:2::1"); err != nil {
		t.Fatal(err)
	}
	if err := verify("2001:db8:1:2:ffff:ffff:ffff:ffff"); !errors.Is(err, authn.ErrClientOverBudget) {
		t.Errorf("same /64: %v, want refused", err)
	}
	if err := verify("2001:db8:1:3::1"); err != nil {
		t.Errorf("another /64: %v", err)
	}
	if err := verify("192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if err := verify("::ffff:192.0.2.1"); !errors.Is(err, authn.ErrClientOverBudget) {
		t.Errorf("IPv4-mapped form of the same client: %v, want refused", err)
	}
}

// TestClientLimitRefundsGlobalRefusal: a miss the global budget refuses
// does not spend the client's own allowance, and is counted there only.
func TestClientLimitRefundsGlobalRefusal(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_800_000_000, 0)}
	next := &scripted{answer: activeUntil(0)}
	var global, client int
	rl := authn.NewRateLimited(next, 1, clk.Now)
	rl.OnRefuse = func() { global++ }
	limits := authn.NewClientLimited(2, 100, clk.Now)
	limits.OnRefuse = func() { client++ }
	cl := limits.Through(rl)
	a := authn.WithClient(context.Background(), "192.0.2.1")
	if _, err := cl.Verify(a, "t"); err != nil { // spends the global burst of 1
		t.Fatal(err)
	}
	for range 3 {
		if _, err := cl.Verify(a, "t"); !errors.Is(err, authn.ErrOverBudget) {
			t.Fatalf("global budget spent: %v, want ErrOverBudget", err)
		}
	}
	if global != 3 || client != 0 {
		t.Errorf("refusals counted global %d, client %d; want 3 and 0", global, client)
	}
	clk.Advance(time.Second) // the global budget refills one; the client kept 1 of 2
	if _, err := cl.Verify(a, "t"); err != nil {
		t.Errorf("after the global refill: %v (the client's allowance was spent by global refusals)", err)
	}
}

// TestClientLimitedBoundsClients: the limiters live in an LRU, so a flood
// of addresses cannot grow memory without bound.
func TestClientLimitedBoundsClients(t *testing.T) {
	limits := authn.NewClientLimited(1, 10, nil)
	cl := limits.Through(&scripted{answer: activeUntil(0)})
	for i := range 1000 {
		cl.Verify(authn.WithClient(context.Background(), "10.0."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256)), "t")
	}
	if n := limits.Len(); n != 10 {
		t.Errorf("%d limiters kept, want 10", n)
	}
}

// TestCachedTokensBypassClientLimit: the limiter sits under the cache, so a
// client past its limit keeps its cached tokens working.
func TestCachedTokensBypassClientLimit(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_800_000_000, 0)}
	next := &scripted{answer: activeUntil(0)}
	c := newCache(t, authn.NewClientLimited(1, 100, clk.Now).Through(next),
		authn.CacheSettings{TTL: time.Minute, NegativeTTL: time.Second, Now: clk.Now})
	ctx := authn.WithClient(context.Background(), "192.0.2.1")
	if _, how, err := c.Lookup(ctx, "known"); err != nil || how != authn.Miss {
		t.Fatalf("first: %v %v", how, err)
	}
	if _, _, err := c.Lookup(ctx, "unknown"); !errors.Is(err, authn.ErrClientOverBudget) {
		t.Fatalf("unknown token past the client's limit: %v", err)
	}
	for range 5 {
		if _, how, err := c.Lookup(ctx, "known"); err != nil || how != authn.Hit {
			t.Fatalf("cached token past the client's limit: %v %v", how, err)
		}
	}
}
