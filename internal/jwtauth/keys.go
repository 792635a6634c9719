package jwtauth

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/pkg/introspect"
)

// Bounds of the key cache's life and refetches (docs/token-validation.md, "Key rotation").
const (
	// DefaultRefetchInterval is the least time between two refetches that
	// unknown kids trigger: a flood of made-up kids costs one fetch per
	// interval, not one per token.
	DefaultRefetchInterval = 10 * time.Second
	// MinMaxAge and MaxMaxAge bound the server's Cache-Control max-age.
	MinMaxAge = 5 * time.Minute
	MaxMaxAge = 24 * time.Hour
	// DefaultMaxAge is the keys' life when the server gives no max-age.
	DefaultMaxAge = time.Hour
	// FailureRetry is when a background refresh that failed is tried again.
	FailureRetry = 30 * time.Second
	// MaxJWKSBytes bounds a JWKS document.
	MaxJWKSBytes = 1 << 20
)

// ErrUnknownKey is the cause of the error for a kid the issuer's current
// keys do not hold.
var ErrUnknownKey = errors.New("no key of the issuer's JWKS has this kid")

// KeySource finds the keys that may have signed a token.
type KeySource interface {
	// Keys returns the public keys held under kid (several when keys of
	// different types share it), or for kid "" the one key of a set that
	// has exactly one. Errors are *fault.Error: Unauthenticated (wrapping
	// ErrUnknownKey) when a fetch completed for this question, or the set
	// held, cannot hold the key; Unavailable, with a RetryAfter, while
	// that cannot be known: the keys could not be fetched, or not yet
	// (an unknown kid refetches at most once per RefetchInterval).
	Keys(ctx context.Context, kid string) ([]*jose.JSONWebKey, error)
	// Recheck is asked when none of held, the keys Keys gave for kid,
	// verified a token: the server may have replaced a key and kept its
	// kid. It refetches as an unknown kid does (shared, rate-limited) and
	// returns the keys then held under kid; nil when no fetch completed
	// or the keys are those held.
	Recheck(ctx context.Context, kid string, held []*jose.JSONWebKey) []*jose.JSONWebKey
}

// KeySettings configure a Keys.
type KeySettings struct {
	// URL is the JWKS endpoint. When empty, Discover names it on the first
	// fetch that needs it (and again after a failure).
	URL      string
	Discover func(ctx context.Context) (string, error)
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds one fetch, detached from the request that caused it.
	Timeout time.Duration
	// Breaker, when set, guards the JWKS endpoint: its own, not the
	// introspection endpoint's.
	Breaker *breaker.Breaker
	// RefetchInterval is the least time between refetches for unknown
	// kids; zero means DefaultRefetchInterval.
	RefetchInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnFetch, when set, is told of each fetch: "ok" or "error", with the cause.
	OnFetch func(result string, err error)
	// RequestHeader, when set, may add headers to each fetch (a request id).
	RequestHeader func(ctx context.Context, h http.Header)
}

// Keys is a KeySource that caches an issuer's JWKS. A kid it does not hold
// triggers one refetch, shared by every caller waiting for it and at most
// one per RefetchInterval; a failed fetch keeps the keys it had. Run
// refreshes the keys in the background as the server's max-age says.
//
// Only a fetch that completed while the caller waited decides that a kid
// is unknown (401). Between two refetches an unknown kid is undecidable:
// the server may have published the key a moment ago, so the answer is 503
// with Retry-After at the next refetch, which no cache stores. Otherwise
// one made-up kid per interval would use up every refetch, and a valid
// token signed by a newly published key would be refused, and that
// refusal cached.
type Keys struct {
	s      KeySettings
	now    func() time.Time
	set    atomic.Pointer[keySet]
	flight singleflight.Group

	mu          sync.Mutex
	url         string    // resolved JWKS URL
	lastRefetch time.Time // last refetch an unknown kid triggered
	failing     bool      // the last fetch failed
	maxAge      time.Duration
}

type keySet struct {
	byKID map[string][]*jose.JSONWebKey
	only  *jose.JSONWebKey // the one key, when the set has exactly one
}

var _ KeySource = (*Keys)(nil)

// NewKeys returns a Keys that has no key yet: the first Keys call, or Run,
// fetches them.
func NewKeys(s KeySettings) *Keys {
	if s.RefetchInterval <= 0 {
		s.RefetchInterval = DefaultRefetchInterval
	}
	if s.HTTPClient == nil {
		s.HTTPClient = http.DefaultClient
	}
	k := &Keys{s: s, now: s.Now, url: s.URL, maxAge: DefaultMaxAge}
	if k.now == nil {
		k.now = time.Now
	}
	return k
}

// Keys implements KeySource.
func (k *Keys) Keys(ctx context.Context, kid string) ([]*jose.JSONWebKey, error) {
	if keys := k.lookup(kid); keys != nil {
		return keys, nil
	}
	if set := k.set.Load(); kid == "" && set != nil {
		// No refetch makes a token without kid unambiguous among several
		// keys.
		return nil, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token",
			Description: "token names no key and the issuer has several", Err: ErrUnknownKey}
	}
	err := k.refetch(ctx)
	// Another caller's fetch may have brought the key, whatever ours did.
	if keys := k.lookup(kid); keys != nil {
		return keys, nil
	}
	if err == nil {
		return nil, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token",
			Description: "token signed by an unknown key", Err: ErrUnknownKey}
	}
	return nil, err
}

// Recheck implements KeySource.
func (k *Keys) Recheck(ctx context.Context, kid string, held []*jose.JSONWebKey) []*jose.JSONWebKey {
	if k.refetch(ctx) != nil {
		return nil
	}
	keys := k.lookup(kid)
	if sameKeys(keys, held) {
		return nil
	}
	return keys
}

// sameKeys reports whether a and b hold the same public keys, with the
// same alg, in the same order.
func sameKeys(a, b []*jose.JSONWebKey) bool {
	return slices.EqualFunc(a, b, func(x, y *jose.JSONWebKey) bool {
		pub, ok := x.Key.(interface{ Equal(crypto.PublicKey) bool })
		return ok && pub.Equal(y.Key) && x.Algorithm == y.Algorithm
	})
}

// refetch fetches the keys for a caller that needs one it does not hold,
// sharing a fetch under way, and at most once per RefetchInterval. It
// returns nil when a fetch completed; else an Unavailable *fault.Error
// whose RetryAfter is when the next refetch may run (or the breaker's,
// when later).
func (k *Keys) refetch(ctx context.Context) error {
	ch := k.flight.DoChan("", func() (any, error) {
		if !k.mayRefetch() {
			return nil, errTooSoon
		}
		return nil, k.fetch(ctx)
	})
	var err error
	select {
	case r := <-ch:
		err = r.Err
	case <-ctx.Done():
		return &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "request cancelled while waiting for the signing keys", Err: ctx.Err()}
	}
	if err == nil {
		return nil
	}
	k.mu.Lock()
	failing, retry := k.failing, k.lastRefetch.Add(k.s.RefetchInterval)
	k.mu.Unlock()
	desc := "signing keys unavailable"
	switch {
	case errors.Is(err, errTooSoon) && failing:
		err = errors.New("JWKS endpoint failing; next refetch at " + retry.UTC().Format(time.RFC3339))
	case errors.Is(err, errTooSoon):
		desc = "token signed by a key not held yet; the keys are refetched at most every " + k.s.RefetchInterval.String()
	}
	// Undecidable: the key may be one the server published since.
	e := &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
		Description: desc, RetryAfter: retry, Err: err}
	var fe *fault.Error
	if errors.As(err, &fe) && fe.RetryAfter.After(retry) {
		e.RetryAfter = fe.RetryAfter // the breaker's
	}
	return e
}

var errTooSoon = errors.New("refetched less than the refetch interval ago")

func (k *Keys) lookup(kid string) []*jose.JSONWebKey {
	set := k.set.Load()
	switch {
	case set == nil:
		return nil
	case kid == "" && set.only != nil:
		return []*jose.JSONWebKey{set.only}
	}
	return set.byKID[kid]
}

// Held reports whether the keys were ever fetched: until then no JWT can
// be verified.
func (k *Keys) Held() bool { return k.set.Load() != nil }

// mayRefetch says whether an unknown kid may trigger a fetch now, and if so
// starts the interval.
func (k *Keys) mayRefetch() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if !k.lastRefetch.IsZero() && now.Sub(k.lastRefetch) < k.s.RefetchInterval {
		return false
	}
	k.lastRefetch = now
	return true
}

// Refresh fetches the keys now (sharing a fetch already under way) and
// returns when to refresh next: the server's max-age, bounded, after a
// success; FailureRetry after a failure.
func (k *Keys) Refresh(ctx context.Context) time.Duration {
	r := <-k.flight.DoChan("", func() (any, error) { return nil, k.fetch(ctx) })
	if r.Err != nil {
		return FailureRetry
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.maxAge
}

// Run refreshes the keys until ctx ends, first at once.
func (k *Keys) Run(ctx context.Context) {
	for {
		t := time.NewTimer(k.Refresh(ctx))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// fetch gets the JWKS and, when it holds usable keys, replaces the set.
func (k *Keys) fetch(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.s.Timeout)
	defer cancel()
	defer func() {
		k.mu.Lock()
		k.failing = err != nil
		k.mu.Unlock()
	}()
	url, err := k.resolve(ctx)
	if err != nil {
		k.report(err)
		return err
	}
	done := func(error) {}
	if k.s.Breaker != nil {
		if done, err = k.s.Breaker.Allow(); err != nil {
			return err // refused by our own breaker: no fetch to count
		}
	}
	set, maxAge, err := k.get(ctx, url)
	if err != nil {
		err = &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable", Description: "JWKS fetch failed", Err: err}
	}
	done(err)
	k.report(err)
	if err != nil {
		return err
	}
	k.set.Store(set)
	k.mu.Lock()
	k.maxAge = maxAge
	k.mu.Unlock()
	return nil
}

func (k *Keys) report(err error) {
	if k.s.OnFetch == nil {
		return
	}
	if err != nil {
		k.s.OnFetch("error", err)
		return
	}
	k.s.OnFetch("ok", nil)
}

// resolve returns the JWKS URL, asking Discover until it once succeeds.
func (k *Keys) resolve(ctx context.Context) (string, error) {
	k.mu.Lock()
	url := k.url
	k.mu.Unlock()
	if url != "" {
		return url, nil
	}
	if k.s.Discover == nil {
		return "", errors.New("no JWKS URL")
	}
	url, err := k.s.Discover(ctx)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	k.mu.Lock()
	k.url = url
	k.mu.Unlock()
	return url, nil
}

func (k *Keys) get(ctx context.Context, url string) (*keySet, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, errors.New("bad JWKS URL")
	}
	if k.s.RequestHeader != nil {
		k.s.RequestHeader(ctx, req.Header)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.s.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, introspect.ScrubURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("JWKS endpoint answered status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading JWKS: %w", err)
	}
	if len(body) > MaxJWKSBytes {
		return nil, 0, fmt.Errorf("JWKS larger than %d bytes", MaxJWKSBytes)
	}
	set, err := parseKeySet(body)
	if err != nil {
		return nil, 0, err
	}
	return set, maxAge(resp.Header.Get("Cache-Control")), nil
}

// parseKeySet keeps the set's public signing keys. Each key is parsed by
// go-jose on its own, so that one key of a type go-jose does not know (a
// future kty) does not take the others down with it.
func parseKeySet(body []byte) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.New("JWKS is not a JSON object with a keys array")
	}
	set := &keySet{byKID: map[string][]*jose.JSONWebKey{}}
	n := 0
	for _, raw := range doc.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			continue
		}
		// Public asymmetric signing keys only: a symmetric (oct) key in a
		// JWKS would let HMAC tokens be "verified" with published bytes.
		if !key.Valid() || !key.IsPublic() || (key.Use != "" && key.Use != "sig") {
			continue
		}
		if _, ok := key.Key.([]byte); ok {
			continue
		}
		n++
		set.only = &key
		if key.KeyID != "" {
			// Keys of different types may share a kid (an RSA and an EC
			// key rotated together): keep each, the verifier tries those
			// whose type fits the token's alg.
			set.byKID[key.KeyID] = append(set.byKID[key.KeyID], &key)
		}
	}
	if n == 0 {
		// An empty set is more likely a broken answer than a server that
		// revoked every key: keep the keys we have.
		return nil, errors.New("JWKS holds no usable public signing key")
	}
	if n > 1 {
		set.only = nil // a token without kid is then ambiguous
	}
	return set, nil
}

// maxAge reads Cache-Control's max-age, bounded by MinMaxAge and MaxMaxAge;
// DefaultMaxAge when absent.
func maxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(d), "=")
		if !ok || !strings.EqualFold(name, "max-age") {
			continue
		}
		secs, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
		if err != nil || secs < 0 {
			break
		}
		return min(max(time.Duration(min(secs, int64(MaxMaxAge/time.Second)))*time.Second, MinMaxAge), MaxMaxAge)
	}
	return DefaultMaxAge
}
