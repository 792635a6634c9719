package jwtauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/jwtauth"
)

func newKeys(url string, clk *clock, onFetch func(string, error)) *jwtauth.Keys {
	return jwtauth.NewKeys(jwtauth.KeySettings{URL: url, Timeout: time.Second, Now: clk.Now, OnFetch: onFetch})
}

func kindOf(t *testing.T, err error) fault.Kind {
	t.Helper()
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *fault.Error", err)
	}
	return fe.Kind
}

// TestKeysRotation: a kid the cache lacks triggers one refetch; a second
// unknown kid within the interval does not, and is undecidable until the
// next (503 with Retry-After); after it, it refetches.
func TestKeysRotation(t *testing.T) {
	old, next := newRSAKey(t, "old"), newRSAKey(t, "next")
	jwks := newJWKSServer(t, old)
	clk := &clock{t: now}
	var results []string
	keys := newKeys(jwks.URL, clk, func(r string, _ error) { results = append(results, r) })
	ctx := context.Background()

	keys.Refresh(ctx) // the start-up fetch (Run's first) opens no refetch interval
	if _, err := keys.Keys(ctx, "old"); err != nil {
		t.Fatalf("first key: %v", err)
	}
	jwks.set(old, next) // the server publishes its next key
	clk.Add(time.Second)
	if k, err := keys.Keys(ctx, "next"); err != nil || k[0].KeyID != "next" {
		t.Fatalf("rotated key within the interval of the first fetch: %v %v", k, err)
	}
	if n := jwks.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d, want 2", n)
	}
	clk.Add(jwtauth.DefaultRefetchInterval - time.Second)
	_, err := keys.Keys(ctx, "made-up")
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Kind != fault.Unavailable || !fe.RetryAfter.Equal(now.Add(time.Second+jwtauth.DefaultRefetchInterval)) {
		t.Fatalf("unknown kid within the interval: %v, want 503 until the next refetch", err)
	}
	if n := jwks.fetches.Load(); n != 2 {
		t.Fatalf("fetches %d after an unknown kid within 10s, want 2", n)
	}
	clk.Add(jwtauth.DefaultRefetchInterval)
	if _, err := keys.Keys(ctx, "made-up-2"); kindOf(t, err) != fault.Unauthenticated || !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatalf("unknown kid after the interval: %v, want 401", err)
	}
	if n := jwks.fetches.Load(); n != 3 {
		t.Fatalf("fetches %d, want 3 (one refetch after the interval)", n)
	}
	if len(results) != 3 || results[0] != "ok" || results[2] != "ok" {
		t.Errorf("fetch results %v", results)
	}
}

// TestKeysCoalesce: concurrent unknown kids share one fetch.
func TestKeysCoalesce(t *testing.T) {
	k := newRSAKey(t, "k1")
	jwks := newJWKSServer(t, k)
	jwks.gate = make(chan struct{})
	keys := newKeys(jwks.URL, &clock{t: now}, nil)
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			kid := "k1"
			if i%2 == 1 {
				kid = "nope"
			}
			_, errs[i] = keys.Keys(context.Background(), kid)
		})
	}
	// Let the one fetch through once it has started.
	for jwks.fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(jwks.gate)
	wg.Wait()
	if n := jwks.fetches.Load(); n != 1 {
		t.Errorf("fetches %d, want 1", n)
	}
	for i, err := range errs {
		if (i%2 == 0) != (err == nil) {
			t.Errorf("caller %d: %v", i, err)
		}
	}
}

// TestKeysDown: known keys keep working while the endpoint fails; an
// unknown kid is then 503 with Retry-After, not 401; once the endpoint
// answers again it is 401.
func TestKeysDown(t *testing.T) {
	k := newRSAKey(t, "k1")
	jwks := newJWKSServer(t, k)
	clk := &clock{t: now}
	var results []string
	keys := newKeys(jwks.URL, clk, func(r string, _ error) { results = append(results, r) })
	ctx := context.Background()
	if _, err := keys.Keys(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	jwks.fail.Store(true)
	clk.Add(time.Minute)
	if d := keys.Refresh(ctx); d != jwtauth.FailureRetry {
		t.Errorf("failed refresh: next in %s, want %s", d, jwtauth.FailureRetry)
	}
	if _, err := keys.Keys(ctx, "k1"); err != nil {
		t.Fatalf("known key while the endpoint fails: %v", err)
	}
	for range 2 { // the refetch, then within its interval
		_, err := keys.Keys(ctx, "k2")
		var fe *fault.Error
		if !errors.As(err, &fe) || fe.Kind != fault.Unavailable || fe.RetryAfter.IsZero() {
			t.Fatalf("unknown kid while the endpoint fails: %v, want 503 with Retry-After", err)
		}
		if want := clk.Now().Add(jwtauth.DefaultRefetchInterval); fe.RetryAfter.After(want) {
			t.Errorf("Retry-After %s, want at most %s", fe.RetryAfter, want)
		}
	}
	if n := jwks.fetches.Load(); n != 3 {
		t.Errorf("fetches %d, want 3", n)
	}
	jwks.fail.Store(false)
	clk.Add(jwtauth.DefaultRefetchInterval)
	if _, err := keys.Keys(ctx, "k2"); kindOf(t, err) != fault.Unauthenticated {
		t.Fatalf("unknown kid once the endpoint answers: %v, want 401", err)
	}
	if want := []string{"ok", "error", "error", "ok"}; len(results) != 4 || results[1] != "error" || results[3] != "ok" {
		t.Errorf("fetch results %v, want %v", results, want)
	}
}

// TestKeysBreaker: the JWKS endpoint has its own breaker; while it is open
// no fetch is made and an unknown kid is 503.
func TestKeysBreaker(t *testing.T) {
	jwks := newJWKSServer(t, newRSAKey(t, "k1"))
	jwks.fail.Store(true)
	clk := &clock{t: now}
	b := breaker.New(breaker.Settings{Name: "jwks", Failures: 1, OpenTimeout: time.Hour})
	keys := jwtauth.NewKeys(jwtauth.KeySettings{URL: jwks.URL, Timeout: time.Second, Now: clk.Now, Breaker: b})
	keys.Refresh(context.Background()) // fails, opens the breaker
	clk.Add(time.Minute)
	_, err := keys.Keys(context.Background(), "k1")
	if kindOf(t, err) != fault.Unavailable || !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("Key with the breaker open: %v", err)
	}
	if n := jwks.fetches.Load(); n != 1 {
		t.Errorf("fetches %d, want 1", n)
	}
}

func TestKeysMaxAge(t *testing.T) {
	tests := []struct {
		cc   string
		want time.Duration
	}{
		{"", jwtauth.DefaultMaxAge},
		{"max-age=3600, must-revalidate", time.Hour},
		{"public, max-age=7200", 2 * time.Hour},
		{"max-age=10", jwtauth.MinMaxAge},
		{"max-age=999999999999", jwtauth.MaxMaxAge},
		{"no-cache", jwtauth.DefaultMaxAge},
		{"max-age=abc", jwtauth.DefaultMaxAge},
	}
	for _, tt := range tests {
		t.Run(tt.cc, func(t *testing.T) {
			jwks := newJWKSServer(t, newRSAKey(t, "k1"))
			jwks.cacheControl = tt.cc
			keys := newKeys(jwks.URL, &clock{t: now}, nil)
			if got := keys.Refresh(context.Background()); got != tt.want {
				t.Errorf("next refresh in %s, want %s", got, tt.want)
			}
		})
	}
}

// TestKeysRejects: symmetric keys, private halves and encryption keys are
// not signing keys; a set without one keeps the old keys.
func TestKeysRejects(t *testing.T) {
	k := newRSAKey(t, "k1")
	body := `{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0"},{"kty":"EC","kid":"weird","crv":"P-999"},` +
		`{"kty":"RSA","kid":"enc","use":"enc","n":"` + rsaN(k) + `","e":"AQAB"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
	defer srv.Close()
	keys := newKeys(srv.URL, &clock{t: now}, nil)
	for _, kid := range []string{"hmac", "weird", "enc"} {
		if _, err := keys.Keys(context.Background(), kid); kindOf(t, err) != fault.Unavailable {
			t.Errorf("kid %s: %v, want 503 (no usable key fetched)", kid, err)
		}
	}
}

func rsaN(k signingKey) string {
	pub := k.public()
	b, _ := pub.MarshalJSON()
	var m map[string]string
	jsonUnmarshal(b, &m)
	return m["n"]
}
