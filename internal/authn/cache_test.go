package authn_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/tokenid"
)

var errInactive = &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}

// echoVerifier answers every token with a Token whose Subject is the token.
func echoVerifier() *fakeVerifier {
	return &fakeVerifier{VerifyFn: func(_ context.Context, token string) (*authn.Token, error) {
		return &authn.Token{Subject: token}, nil
	}}
}

func newCache(t testing.TB, next authn.Verifier, s authn.CacheSettings) *authn.Cache {
	t.Helper()
	if s.Size == 0 {
		s.Size = 100
	}
	if s.Timeout == 0 {
		s.Timeout = 5 * time.Second
	}
	c, err := authn.NewCache(next, s)
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	return c
}

// lookup is Lookup that fails the test on a result other than want.
func lookup(t *testing.T, c *authn.Cache, token string, want authn.Lookup) (*authn.Token, error) {
	t.Helper()
	tok, how, err := c.Lookup(context.Background(), token)
	if how != want {
		t.Fatalf("Lookup(%q) = %v, want %v", token, how, want)
	}
	return tok, err
}

func TestNewCacheRejectsSizeZero(t *testing.T) {
	if _, err := authn.NewCache(echoVerifier(), authn.CacheSettings{Size: 0}); err == nil {
		t.Error("NewCache with Size 0: no error")
	}
}

func TestCacheHitAfterMiss(t *testing.T) {
	next := echoVerifier()
	c := newCache(t, next, authn.CacheSettings{TTL: time.Minute, Now: newClock().Now})
	tok, err := lookup(t, c, "abc", authn.Miss)
	if err != nil || tok.Subject != "abc" {
		t.Fatalf("miss: %+v, %v", tok, err)
	}
	for range 3 {
		tok, err = lookup(t, c, "abc", authn.Hit)
		if err != nil || tok.Subject != "abc" {
			t.Fatalf("hit: %+v, %v", tok, err)
		}
	}
	if got := next.calls.Load(); got != 1 {
		t.Errorf("next called %d times, want 1", got)
	}
	// Verify is Lookup without the how.
	if tok, err := c.Verify(context.Background(), "abc"); err != nil || tok.Subject != "abc" {
		t.Errorf("Verify = %+v, %v", tok, err)
	}
	if got := next.calls.Load(); got != 1 {
		t.Errorf("next called %d times after Verify, want 1", got)
	}
}

func TestCacheKeyIsTheWholeToken(t *testing.T) {
	next := echoVerifier()
	c := newCache(t, next, authn.CacheSettings{TTL: time.Minute, Now: newClock().Now})
	tokens := []string{
		"eyJhbGciOiJSUzI1NiJ9.cGF5bG9hZA.c2lnbmF0dXJl",
		"eyJhbGciOiJSUzI1NiJ9.cGF5bG9hZA.c2lnbmF0dXJm",  // one byte
		"EYJhbGciOiJSUzI1NiJ9.cGF5bG9hZA.c2lnbmF0dXJl",  // case
		"eyJhbGciOiJSUzI1NiJ9.cGF5bG9hZA.c2lnbmF0dXJl ", // trailing space
		"eyJhbGciOiJSUzI1NiJ9.cGF5bG9hZA.c2lnbmF0",      // prefix
		"",
	}
	for _, tok := range tokens {
		got, err := lookup(t, c, tok, authn.Miss)
		if err != nil || got.Subject != tok {
			t.Fatalf("Lookup(%q) = %+v, %v", tok, got, err)
		}
	}
	for _, tok := range tokens {
		got, err := lookup(t, c, tok, authn.Hit)
		if err != nil || got.Subject != tok {
			t.Errorf("Lookup(%q) = %+v, %v: answer of another token", tok, got, err)
		}
	}
	if got, want := int(next.calls.Load()), len(tokens); got != want {
		t.Errorf("next called %d times, want %d", got, want)
	}
	if got := c.Len(); got != len(tokens) {
		t.Errorf("Len = %d, want %d", got, len(tokens))
	}
}

func TestCachePositiveLifetime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ttl    time.Duration
		expIn  time.Duration // 0: the token has no exp
		lifeIs time.Duration
	}{
		{"exp before TTL", 5 * time.Minute, 60 * time.Second, 60 * time.Second},
		{"TTL before exp", 30 * time.Second, time.Hour, 30 * time.Second},
		{"no exp", 45 * time.Second, 0, 45 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			var exp int64
			if tc.expIn != 0 {
				exp = clk.Now().Add(tc.expIn).Unix()
			}
			next := &fakeVerifier{VerifyFn: func(context.Context, string) (*authn.Token, error) {
				return &authn.Token{Subject: "a", Exp: exp}, nil
			}}
			c := newCache(t, next, authn.CacheSettings{TTL: tc.ttl, Now: clk.Now})
			lookup(t, c, "tok", authn.Miss)
			clk.Add(tc.lifeIs - time.Nanosecond)
			lookup(t, c, "tok", authn.Hit)
			clk.Add(time.Nanosecond)
			lookup(t, c, "tok", authn.Miss)
			if got := next.calls.Load(); got != 2 {
				t.Errorf("next called %d times, want 2", got)
			}
		})
	}
}

func TestCacheHitNeverExtendsLife(t *testing.T) {
	clk := newClock()
	next := echoVerifier()
	c := newCache(t, next, authn.CacheSettings{TTL: 10 * time.Second, Now: clk.Now})
	lookup(t, c, "tok", authn.Miss)
	for range 9 {
		clk.Add(time.Second)
		lookup(t, c, "tok", authn.Hit)
	}
	clk.Add(time.Second) // 10s after the introspection
	lookup(t, c, "tok", authn.Miss)
	if got := next.calls.Load(); got != 2 {
		t.Errorf("next called %d times, want 2", got)
	}
	// The new entry's life starts at the re-introspection.
	clk.Add(9 * time.Second)
	lookup(t, c, "tok", authn.Hit)
}

func TestCacheNegativeEntries(t *testing.T) {
	clk := newClock()
	next := &fakeVerifier{VerifyFn: func(context.Context, string) (*authn.Token, error) { return nil, errInactive }}
	c := newCache(t, next, authn.CacheSettings{TTL: time.Hour, NegativeTTL: 5 * time.Second, Now: clk.Now})
	if _, err := lookup(t, c, "bad", authn.Miss); !errors.Is(err, errInactive) {
		t.Fatalf("miss: err = %v", err)
	}
	clk.Add(5*time.Second - time.Nanosecond)
	tok, err := lookup(t, c, "bad", authn.Hit)
	var fe *fault.Error
	if tok != nil || !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != "invalid_token" {
		t.Fatalf("hit: %v, %v; want the cached invalid_token", tok, err)
	}
	clk.Add(time.Nanosecond)
	lookup(t, c, "bad", authn.Miss)
	if got := next.calls.Load(); got != 2 {
		t.Errorf("next called %d times, want 2", got)
	}
}

func TestCacheDoesNotCacheUnavailable(t *testing.T) {
	unavailable := &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable"}
	for _, err := range []error{unavailable, fmt.Errorf("wrapped: %w", unavailable), errors.New("not a fault")} {
		next := &fakeVerifier{VerifyFn: func(context.Context, string) (*authn.Token, error) { return nil, err }}
		c := newCache(t, next, authn.CacheSettings{TTL: time.Hour, NegativeTTL: time.Hour, Now: newClock().Now})
		for range 3 {
			if _, got := lookup(t, c, "tok", authn.Miss); got != err {
				t.Fatalf("err = %v, want %v", got, err)
			}
		}
		if got := next.calls.Load(); got != 3 {
			t.Errorf("%v: next called %d times, want 3", err, got)
		}
		if c.Len() != 0 {
			t.Errorf("%v: Len = %d, want 0", err, c.Len())
		}
	}
}

// 100 concurrent first lookups of one token share one call to next.
// synctest.Wait says when every caller is parked, so next is released only
// after all of them have joined the flight.
func TestCacheCoalescesConcurrentMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		next := &fakeVerifier{VerifyFn: func(_ context.Context, token string) (*authn.Token, error) {
			<-release
			return &authn.Token{Subject: token}, nil
		}}
		c := newCache(t, next, authn.CacheSettings{TTL: time.Minute})

		const n = 100
		type result struct {
			tok *authn.Token
			how authn.Lookup
			err error
		}
		results := make(chan result, n)
		for range n {
			go func() {
				tok, how, err := c.Lookup(t.Context(), "tok")
				results <- result{tok, how, err}
			}()
		}
		synctest.Wait()
		if got := next.calls.Load(); got != 1 {
			t.Fatalf("next called %d times while %d callers wait, want 1", got, n)
		}
		close(release)

		count := map[authn.Lookup]int{}
		for range n {
			r := <-results
			if r.err != nil || r.tok == nil || r.tok.Subject != "tok" {
				t.Errorf("Lookup = %+v, %v", r.tok, r.err)
			}
			count[r.how]++
		}
		if count[authn.Miss] != 1 || count[authn.Coalesced] != n-1 {
			t.Errorf("lookups = %v, want 1 miss and %d coalesced", count, n-1)
		}
		if got := next.calls.Load(); got != 1 {
			t.Errorf("next called %d times, want 1", got)
		}
		lookup(t, c, "tok", authn.Hit)
	})
}

func TestCacheCallerCancellationDoesNotCancelSharedCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var nextCtx context.Context
		next := &fakeVerifier{VerifyFn: func(ctx context.Context, token string) (*authn.Token, error) {
			nextCtx = ctx
			<-release
			if err := ctx.Err(); err != nil {
				return nil, &fault.Error{Kind: fault.Unavailable, Err: err}
			}
			return &authn.Token{Subject: token}, nil
		}}
		c := newCache(t, next, authn.CacheSettings{TTL: time.Minute, Timeout: time.Minute})

		type result struct {
			tok *authn.Token
			how authn.Lookup
			err error
		}
		firstCtx, cancel := context.WithCancel(t.Context())
		first := make(chan result, 1)
		go func() {
			tok, how, err := c.Lookup(firstCtx, "tok")
			first <- result{tok, how, err}
		}()
		synctest.Wait() // the first caller started the introspection
		const others = 5
		rest := make(chan result, others)
		for range others {
			go func() {
				tok, how, err := c.Lookup(t.Context(), "tok")
				rest <- result{tok, how, err}
			}()
		}
		synctest.Wait()

		cancel()
		r := <-first
		var fe *fault.Error
		if r.tok != nil || !errors.As(r.err, &fe) || fe.Kind != fault.Unavailable || !errors.Is(r.err, context.Canceled) {
			t.Errorf("cancelled caller: %+v, %v; want Unavailable wrapping context.Canceled", r.tok, r.err)
		}
		synctest.Wait()
		if err := nextCtx.Err(); err != nil {
			t.Fatalf("the shared call's context ended with the first caller's: %v", err)
		}

		close(release)
		for range others {
			r := <-rest
			if r.err != nil || r.tok == nil || r.tok.Subject != "tok" || r.how != authn.Coalesced {
				t.Errorf("other caller: %+v, %v, %v; want the token, coalesced", r.tok, r.how, r.err)
			}
		}
		if got := next.calls.Load(); got != 1 {
			t.Errorf("next called %d times, want 1", got)
		}
		lookup(t, c, "tok", authn.Hit) // the shared answer was stored
	})
}

func TestCacheSharedCallHasItsOwnTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 3 * time.Second
		start := time.Now()
		var deadline time.Time
		var hasDeadline bool
		next := &fakeVerifier{VerifyFn: func(ctx context.Context, token string) (*authn.Token, error) {
			deadline, hasDeadline = ctx.Deadline()
			<-ctx.Done() // an introspection that never answers
			return nil, &fault.Error{Kind: fault.Unavailable, Err: ctx.Err()}
		}}
		c := newCache(t, next, authn.CacheSettings{TTL: time.Minute, Timeout: timeout})

		// The caller's own, longer, deadline does not reach next.
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		_, how, err := c.Lookup(ctx, "tok")
		if !hasDeadline || !deadline.Equal(start.Add(timeout)) {
			t.Errorf("next's deadline = %v (set %v), want %v", deadline, hasDeadline, start.Add(timeout))
		}
		if how != authn.Miss || !fault.Is(err, fault.Unavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lookup = %v, %v; want a miss, Unavailable wrapping DeadlineExceeded", how, err)
		}
		if got := time.Since(start); got != timeout {
			t.Errorf("Lookup took %v, want %v", got, timeout)
		}
		if c.Len() != 0 {
			t.Errorf("Len = %d after a timeout, want 0", c.Len())
		}
	})
}

func TestCacheGarbageNeverEvictsActiveTokens(t *testing.T) {
	next := &fakeVerifier{VerifyFn: func(_ context.Context, token string) (*authn.Token, error) {
		if len(token) > 4 && token[:4] == "good" {
			return &authn.Token{Subject: token}, nil
		}
		return nil, errInactive
	}}
	var evictions atomic.Int32
	c := newCache(t, next, authn.CacheSettings{Size: 8, TTL: time.Hour, NegativeTTL: time.Hour,
		Now: newClock().Now, OnEvict: func() { evictions.Add(1) }})
	for i := range 8 {
		lookup(t, c, fmt.Sprint("good", i), authn.Miss)
	}
	for i := range 1000 {
		lookup(t, c, fmt.Sprint("garbage", i), authn.Miss)
	}
	for i := range 8 {
		tok, err := lookup(t, c, fmt.Sprint("good", i), authn.Hit)
		if err != nil || tok.Subject != fmt.Sprint("good", i) {
			t.Errorf("good%d: %+v, %v", i, tok, err)
		}
	}
	// Negative entries live in an LRU a quarter the size: 2.
	if got := c.Len(); got != 8+2 {
		t.Errorf("Len = %d, want 10", got)
	}
	if got := evictions.Load(); got != 1000-2 {
		t.Errorf("evictions = %d, want %d (garbage pushing out garbage)", got, 1000-2)
	}
}

func TestCacheOnEvictOnlyForRoom(t *testing.T) {
	clk := newClock()
	var evictions atomic.Int32
	next := echoVerifier()
	c := newCache(t, next, authn.CacheSettings{Size: 2, TTL: 10 * time.Second, Now: clk.Now,
		OnEvict: func() { evictions.Add(1) }})

	lookup(t, c, "a", authn.Miss)
	lookup(t, c, "b", authn.Miss)
	if c.Len() != 2 || evictions.Load() != 0 {
		t.Fatalf("Len = %d, evictions = %d; want 2, 0", c.Len(), evictions.Load())
	}
	// Expiry is not an eviction: the expired entries are dropped and replaced.
	clk.Add(10 * time.Second)
	lookup(t, c, "a", authn.Miss)
	lookup(t, c, "b", authn.Miss)
	if got := evictions.Load(); got != 0 {
		t.Fatalf("evictions after expiries = %d, want 0", got)
	}
	// A third entry needs room.
	lookup(t, c, "c", authn.Miss)
	if got := evictions.Load(); got != 1 {
		t.Errorf("evictions after a third entry = %d, want 1", got)
	}
	if c.Len() != 2 {
		t.Errorf("Len = %d, want 2", c.Len())
	}
	// The least recently used ("a") went.
	lookup(t, c, "b", authn.Hit)
	lookup(t, c, "c", authn.Hit)
	lookup(t, c, "a", authn.Miss)
}

func TestCacheLen(t *testing.T) {
	next := &fakeVerifier{VerifyFn: func(_ context.Context, token string) (*authn.Token, error) {
		if token == "bad" {
			return nil, errInactive
		}
		return &authn.Token{Subject: token}, nil
	}}
	c := newCache(t, next, authn.CacheSettings{TTL: time.Hour, NegativeTTL: time.Hour, Now: newClock().Now})
	if c.Len() != 0 {
		t.Fatalf("Len of a new cache = %d", c.Len())
	}
	lookup(t, c, "a", authn.Miss)
	lookup(t, c, "b", authn.Miss)
	lookup(t, c, "bad", authn.Miss)
	lookup(t, c, "a", authn.Hit)
	if got := c.Len(); got != 3 {
		t.Errorf("Len = %d, want 3", got)
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	clk := newClock()
	next := echoVerifier()
	c := newCache(t, next, authn.CacheSettings{Size: 16, TTL: time.Second, NegativeTTL: time.Second, Now: clk.Now})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tok := fmt.Sprint("t", (g+i)%40)
				got, err := c.Verify(context.Background(), tok)
				if err != nil || got.Subject != tok {
					t.Errorf("Verify(%q) = %+v, %v", tok, got, err)
					return
				}
				if i%50 == 0 {
					clk.Add(300 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkCacheHit(b *testing.B) {
	c := newCache(b, echoVerifier(), authn.CacheSettings{TTL: time.Hour})
	const token = "eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.eyJzdWIiOiJhbGljZSIsInNjcCI6WyJyZWFkX3NheWhlbGxvIl19.c2lnbmF0dXJl"
	ctx := context.Background()
	if _, _, err := c.Lookup(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, how, _ := c.Lookup(ctx, token); how != authn.Hit {
			b.Fatalf("Lookup = %v, want hit", how)
		}
	}
}

// Two spellings of one JWS: the same signing input, two signatures (as an
// ECDSA signature and its high-S twin are), both canonical base64url.
const (
	jwsA = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9uZS0wMTIz"
	jwsB = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXR3by0wMTIz"
)

// TestCacheRevocationCoversEverySpelling: revoking one spelling of a JWS
// revokes the others, whether cached before (a hit does not survive) or
// not yet seen (the miss is refused); each spelling is verified on its
// own, never served another's answer.
func TestCacheRevocationCoversEverySpelling(t *testing.T) {
	next := echoVerifier()
	clk := newClock()
	c := newCache(t, next, authn.CacheSettings{TTL: time.Minute, Now: clk.Now})
	if tok, err := lookup(t, c, jwsA, authn.Miss); err != nil || tok.Subject != jwsA {
		t.Fatalf("%+v %v", tok, err)
	}
	if tok, err := lookup(t, c, jwsB, authn.Miss); err != nil || tok.Subject != jwsB {
		t.Fatalf("the other spelling: %+v %v, want its own answer", tok, err)
	}
	c.RevokeKey(tokenid.Revocation(jwsA), time.Minute)
	for _, tok := range []string{jwsB, jwsA} {
		if _, _, err := c.Lookup(context.Background(), tok); !fault.Is(err, fault.Unauthenticated) {
			t.Errorf("%s after the revocation: %v, want 401", tok, err)
		}
	}
	// A third spelling, never seen: refused without asking Next.
	calls := next.calls.Load()
	if _, _, err := c.Lookup(context.Background(), jwsA[:len(jwsA)-4]+"MDEy"); !fault.Is(err, fault.Unauthenticated) {
		t.Errorf("a new spelling after the revocation: %v, want 401", err)
	}
	if next.calls.Load() != calls {
		t.Error("a revoked token's new spelling was asked of Next")
	}
	// The tombstone ends: verified again.
	clk.Add(2 * time.Minute)
	if _, err := lookup(t, c, jwsB, authn.Miss); err != nil {
		t.Errorf("after the tombstone: %v", err)
	}
	// Revoke by token: the same key.
	c.Revoke(jwsB, time.Minute)
	if _, _, err := c.Lookup(context.Background(), jwsA); !fault.Is(err, fault.Unauthenticated) {
		t.Errorf("Revoke(token) of one spelling left the other: %v", err)
	}
}

// TestCacheRefusesNonCanonicalJWS: a JWS-shaped token with set unused
// base64url bits is 401 invalid_token, never asked of Next nor cached.
func TestCacheRefusesNonCanonicalJWS(t *testing.T) {
	next := echoVerifier()
	c := newCache(t, next, authn.CacheSettings{TTL: time.Minute, Now: newClock().Now})
	// 43 characters carry 32 bytes and 2 unused bits: "l" sets one.
	bad := "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9uZS0wMTIzNDU2Nzg5YWJjZGVmZ2hpamt"
	bad = bad[:len(bad)-1] + "l"
	for range 2 {
		_, how, err := c.Lookup(context.Background(), bad)
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != "invalid_token" || how != authn.Miss {
			t.Fatalf("non-canonical: %v %v, want 401 invalid_token", how, err)
		}
	}
	if next.calls.Load() != 0 || c.Len() != 0 {
		t.Errorf("%d calls to Next, %d entries; want none", next.calls.Load(), c.Len())
	}
}

// BenchmarkCacheHitWithTombstones is BenchmarkCacheHit while a tombstone
// is live: the hit then checks its revocation id, still without an
// allocation.
func BenchmarkCacheHitWithTombstones(b *testing.B) {
	c := newCache(b, echoVerifier(), authn.CacheSettings{TTL: time.Hour})
	const token = "eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0.eyJzdWIiOiJhbGljZSIsInNjcCI6WyJyZWFkX3NheWhlbGxvIl19.c2lnbmF0dXJl"
	ctx := context.Background()
	if _, _, err := c.Lookup(ctx, token); err != nil {
		b.Fatal(err)
	}
	c.RevokeKey(tokenid.Revocation("another-token"), time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, how, _ := c.Lookup(ctx, token); how != authn.Hit {
			b.Fatalf("Lookup = %v, want hit", how)
		}
	}
}
