package authn_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

// manualClock is a clock that moves only when told.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// scripted is a Verifier whose answer a test sets, counting calls.
type scripted struct {
	calls  atomic.Int64
	mu     sync.Mutex
	answer func(token string) (*authn.Token, error)
}

var _ authn.Verifier = (*scripted)(nil)

func (s *scripted) Verify(_ context.Context, token string) (*authn.Token, error) {
	s.calls.Add(1)
	s.mu.Lock()
	f := s.answer
	s.mu.Unlock()
	return f(token)
}

func (s *scripted) set(f func(string) (*authn.Token, error)) {
	s.mu.Lock()
	s.answer = f
	s.mu.Unlock()
}

func activeUntil(exp int64) func(string) (*authn.Token, error) {
	return func(token string) (*authn.Token, error) {
		return &authn.Token{Subject: token, Exp: exp, Claims: []byte(`{"active":true}`)}, nil
	}
}

var (
	errDown = &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable", Description: "down"}
	errGone = &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}
)

func failWith(err error) func(string) (*authn.Token, error) {
	return func(string) (*authn.Token, error) { return nil, err }
}

func TestRateLimitedCapsCalls(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_800_000_000, 0)}
	next := &scripted{answer: activeUntil(0)}
	rl := authn.NewRateLimited(next, 2, clk.Now) // 2/s, burst 2
	ctx := context.Background()
	for i := range 2 {
		if _, err := rl.Verify(ctx, "t"); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	_, err := rl.Verify(ctx, "t")
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Kind != fault.Unavailable || !errors.Is(err, authn.ErrOverBudget) {
		t.Fatalf("over the cap: %v, want Unavailable ErrOverBudget", err)
	}
	if want := clk.Now().Add(500 * time.Millisecond); !fe.RetryAfter.Equal(want) {
		t.Errorf("RetryAfter %v, want %v (next token)", fe.RetryAfter, want)
	}
	if next.calls.Load() != 2 {
		t.Errorf("%d calls reached next, want 2", next.calls.Load())
	}
	// Refusals spend nothing: after half a second exactly one more passes.
	for range 5 {
		rl.Verify(ctx, "t")
	}
	clk.Advance(500 * time.Millisecond)
	if _, err := rl.Verify(ctx, "t"); err != nil {
		t.Fatalf("after refill: %v", err)
	}
	if _, err := rl.Verify(ctx, "t"); err == nil {
		t.Fatal("second call after a half-second refill passed")
	}
	if next.calls.Load() != 3 {
		t.Errorf("%d calls reached next, want 3", next.calls.Load())
	}
}

func TestRateLimitedFractionalRate(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_800_000_000, 0)}
	rl := authn.NewRateLimited(&scripted{answer: activeUntil(0)}, 0.5, clk.Now) // one every 2s, burst 1
	if _, err := rl.Verify(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	_, err := rl.Verify(context.Background(), "t")
	var fe *fault.Error
	if !errors.As(err, &fe) || !fe.RetryAfter.Equal(clk.Now().Add(2*time.Second)) {
		t.Fatalf("got %v, want a refusal until 2s later", err)
	}
}

// TestCachedTokensBypassRateLimit: the limiter sits under the cache, so a
// cached token keeps working while unknown tokens are refused.
func TestCachedTokensBypassRateLimit(t *testing.T) {
	clk := &manualClock{t: time.Unix(1_800_000_000, 0)}
	next := &scripted{answer: activeUntil(0)}
	c, err := authn.NewCache(authn.NewRateLimited(next, 1, clk.Now),
		authn.CacheSettings{Size: 10, TTL: time.Minute, NegativeTTL: time.Second, Timeout: time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, how, err := c.Lookup(ctx, "known"); err != nil || how != authn.Miss {
		t.Fatalf("first: %v %v", how, err)
	}
	if _, _, err := c.Lookup(ctx, "unknown"); !fault.Is(err, fault.Unavailable) {
		t.Fatalf("unknown token over the cap: %v, want Unavailable", err)
	}
	for range 10 {
		if _, how, err := c.Lookup(ctx, "known"); err != nil || how != authn.Hit {
			t.Fatalf("cached token over the cap: %v %v", how, err)
		}
	}
	if next.calls.Load() != 1 {
		t.Errorf("%d introspections, want 1", next.calls.Load())
	}
}

func staleCache(t *testing.T, next authn.Verifier, clk *manualClock, grace time.Duration, onStale func()) *authn.Cache {
	t.Helper()
	c, err := authn.NewCache(next, authn.CacheSettings{Size: 10, TTL: time.Minute, NegativeTTL: time.Second,
		Timeout: time.Second, Now: clk.Now, StaleIfError: grace, OnStale: onStale})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStaleIfError(t *testing.T) {
	ctx := context.Background()
	start := time.Unix(1_800_000_000, 0)
	farExp := start.Add(time.Hour).Unix()
	cases := []struct {
		name    string
		exp     int64
		grace   time.Duration
		advance time.Duration // after the entry is stored
		err     error         // what the server does then
		want    authn.Lookup
		wantErr fault.Kind // checked when want is not Stale
	}{
		{name: "within grace, server down", exp: farExp, grace: 30 * time.Second, advance: time.Minute + 10*time.Second, err: errDown, want: authn.Stale},
		{name: "just before grace ends", exp: farExp, grace: 30 * time.Second, advance: time.Minute + 30*time.Second - time.Nanosecond, err: errDown, want: authn.Stale},
		{name: "grace over", exp: farExp, grace: 30 * time.Second, advance: time.Minute + 30*time.Second, err: errDown, want: authn.Miss, wantErr: fault.Unavailable},
		{name: "off by default", exp: farExp, grace: 0, advance: time.Minute + time.Second, err: errDown, want: authn.Miss, wantErr: fault.Unavailable},
		{name: "never past exp", exp: start.Add(time.Minute + 5*time.Second).Unix(), grace: 30 * time.Second, advance: time.Minute + 5*time.Second, err: errDown, want: authn.Miss, wantErr: fault.Unavailable},
		{name: "before exp", exp: start.Add(time.Minute + 5*time.Second).Unix(), grace: 30 * time.Second, advance: time.Minute + 4*time.Second, err: errDown, want: authn.Stale},
		{name: "entry bounded by exp is never stale", exp: start.Add(30 * time.Second).Unix(), grace: time.Hour, advance: 31 * time.Second, err: errDown, want: authn.Miss, wantErr: fault.Unavailable},
		{name: "an inactive answer is not overridden", exp: farExp, grace: 30 * time.Second, advance: time.Minute + time.Second, err: errGone, want: authn.Miss, wantErr: fault.Unauthenticated},
		{name: "no exp", exp: 0, grace: 30 * time.Second, advance: time.Minute + time.Second, err: errDown, want: authn.Stale},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := &manualClock{t: start}
			next := &scripted{answer: activeUntil(tc.exp)}
			var stale atomic.Int64
			c := staleCache(t, next, clk, tc.grace, func() { stale.Add(1) })
			if _, how, err := c.Lookup(ctx, "tok"); err != nil || how != authn.Miss {
				t.Fatalf("first lookup: %v %v", how, err)
			}
			clk.Advance(tc.advance)
			next.set(failWith(tc.err))
			tok, how, err := c.Lookup(ctx, "tok")
			if how != tc.want {
				t.Fatalf("lookup %v (err %v), want %v", how, err, tc.want)
			}
			if tc.want == authn.Stale {
				if err != nil || tok == nil || tok.Subject != "tok" {
					t.Fatalf("stale answer: %+v %v", tok, err)
				}
				if stale.Load() != 1 {
					t.Errorf("OnStale called %d times, want 1", stale.Load())
				}
				return
			}
			if tok != nil || !fault.Is(err, tc.wantErr) {
				t.Fatalf("got %+v %v, want a %v error", tok, err, tc.wantErr)
			}
			if stale.Load() != 0 {
				t.Errorf("OnStale called %d times, want 0", stale.Load())
			}
		})
	}
}

// TestStaleIfErrorLifecycle: stale answers are not cache hits (each one asks
// the server again), a recovered server refreshes the entry, and an
// inactive answer removes the stale entry for good.
func TestStaleIfErrorLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := &manualClock{t: time.Unix(1_800_000_000, 0)}
	exp := clk.Now().Add(time.Hour).Unix()
	next := &scripted{answer: activeUntil(exp)}
	var stale atomic.Int64
	c := staleCache(t, next, clk, 30*time.Second, func() { stale.Add(1) })
	c.Lookup(ctx, "tok")
	clk.Advance(61 * time.Second)
	next.set(failWith(errDown))
	for range 3 {
		if _, how, err := c.Lookup(ctx, "tok"); how != authn.Stale || err != nil {
			t.Fatalf("%v %v, want stale", how, err)
		}
	}
	if stale.Load() != 3 || next.calls.Load() != 4 {
		t.Errorf("stale %d (want 3), calls %d (want 4: each stale answer asks again)", stale.Load(), next.calls.Load())
	}
	next.set(activeUntil(exp))
	if _, how, err := c.Lookup(ctx, "tok"); how != authn.Miss || err != nil {
		t.Fatalf("server back: %v %v, want miss", how, err)
	}
	if _, how, _ := c.Lookup(ctx, "tok"); how != authn.Hit {
		t.Fatalf("after refresh: %v, want hit", how)
	}
	clk.Advance(61 * time.Second)
	next.set(failWith(errGone))
	if _, _, err := c.Lookup(ctx, "tok"); !fault.Is(err, fault.Unauthenticated) {
		t.Fatalf("revoked: %v", err)
	}
	clk.Advance(2 * time.Second) // the negative entry ends too
	next.set(failWith(errDown))
	if _, how, err := c.Lookup(ctx, "tok"); how == authn.Stale || !fault.Is(err, fault.Unavailable) {
		t.Fatalf("after an inactive answer: %v %v, want no stale answer", how, err)
	}
	if authn.Stale.String() != "stale" {
		t.Errorf("Stale.String() = %q", authn.Stale.String())
	}
}

// TestStaleIfErrorCoalesced: concurrent callers for one token share one
// failing call and all get the stale answer, each counted.
func TestStaleIfErrorCoalesced(t *testing.T) {
	ctx := context.Background()
	clk := &manualClock{t: time.Unix(1_800_000_000, 0)}
	release := make(chan struct{})
	next := &scripted{answer: activeUntil(0)}
	var stale atomic.Int64
	c := staleCache(t, next, clk, time.Minute, func() { stale.Add(1) })
	c.Lookup(ctx, "tok")
	clk.Advance(61 * time.Second)
	next.set(func(string) (*authn.Token, error) { <-release; return nil, errDown })
	const n = 20
	var wg sync.WaitGroup
	hows := make([]authn.Lookup, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, hows[i], _ = c.Lookup(ctx, "tok")
		}()
	}
	for next.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the others join the shared call
	close(release)
	wg.Wait()
	for i, h := range hows {
		if h != authn.Stale {
			t.Errorf("caller %d: %v, want stale", i, h)
		}
	}
	if stale.Load() != n {
		t.Errorf("OnStale %d times, want %d", stale.Load(), n)
	}
}
