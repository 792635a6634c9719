package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
)

// Bounds of the key cache's life and refetches (README, "Key rotation").
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

// KeySource finds the key that signed a token.
type KeySource interface {
	// Key returns the public key with the given kid ("" when the token
	// names none). Errors are *fault.Error: Unauthenticated (wrapping
	// ErrUnknownKey) when fresh keys do not hold it, Unavailable when the
	// keys could not be fetched to find out.
	Key(ctx context.Context, kid string) (*jose.JSONWebKey, error)
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
	byKID map[string]*jose.JSONWebKey
	only  *jose.JSONWebKey // the one key, when the set has exactly one
}

var _ KeySource = (*Keys)(nil)

// NewKeys returns a Keys that has no key yet: the first Key call, or Run,
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

// Key implements KeySource.
func (k *Keys) Key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	if key := k.lookup(kid); key != nil {
		return key, nil
	}
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
		return nil, &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "request cancelled while waiting for the signing keys", Err: ctx.Err()}
	}
	// Another caller's fetch may have brought the key, whatever ours did.
	if key := k.lookup(kid); key != nil {
		return key, nil
	}
	k.mu.Lock()
	failing, retry := k.failing, k.lastRefetch.Add(k.s.RefetchInterval)
	k.mu.Unlock()
	if errors.Is(err, errTooSoon) && failing {
		err = errors.New("JWKS endpoint failing; next refetch at " + retry.UTC().Format(time.RFC3339))
	}
	if err != nil && !errors.Is(err, errTooSoon) {
		// Undecidable: the key may be one the server published since.
		e := &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "signing keys unavailable", RetryAfter: retry, Err: err}
		var fe *fault.Error
		if errors.As(err, &fe) && fe.RetryAfter.After(retry) {
			e.RetryAfter = fe.RetryAfter // the breaker's
		}
		return nil, e
	}
	return nil, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token",
		Description: "token signed by an unknown key", Err: ErrUnknownKey}
}

var errTooSoon = errors.New("refetched less than the refetch interval ago")

func (k *Keys) lookup(kid string) *jose.JSONWebKey {
	set := k.set.Load()
	if set == nil {
		return nil
	}
	if kid == "" {
		return set.only
	}
	return set.byKID[kid]
}

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
		return nil, 0, scrubURLError(err)
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
	set := &keySet{byKID: map[string]*jose.JSONWebKey{}}
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
			set.byKID[key.KeyID] = &key
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
