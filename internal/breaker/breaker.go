// Package breaker guards an upstream with a circuit breaker
// (github.com/sony/gobreaker/v2) and a hold gate: the breaker opens after
// consecutive failures for a fixed time; the gate holds calls until a time
// the upstream named itself (a 429's reset time), which a fixed open time
// cannot express.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/authgate/authgate/internal/fault"
)

// State is the breaker's state, numbered as the authgate_breaker_state
// metric reports it.
type State = gobreaker.State

// States.
const (
	Closed   = gobreaker.StateClosed
	HalfOpen = gobreaker.StateHalfOpen
	Open     = gobreaker.StateOpen
)

// Settings configure a Breaker.
type Settings struct {
	// Name names the upstream ("idp" or "opa") in errors and callbacks.
	Name string
	// Failures is how many consecutive failures open the breaker.
	Failures uint32
	// OpenTimeout is how long it stays open before letting one probe through.
	// It also bounds a hold: see Hold.
	OpenTimeout time.Duration
	// IsFailure says whether an error counts against the upstream; nil counts every error.
	IsFailure func(error) bool
	// OnStateChange is called on every transition, under gobreaker's lock:
	// it must not call back into the Breaker.
	OnStateChange func(name string, from, to State)
	// Now is the clock of the hold gate; nil means time.Now.
	Now func() time.Time
}

// Breaker is safe for concurrent use.
type Breaker struct {
	cb          *gobreaker.TwoStepCircuitBreaker[struct{}]
	name        string
	openTimeout time.Duration
	now         func() time.Time
	openedAt    atomic.Int64 // unix nanos of the last transition to open
	holdUntil   atomic.Int64 // unix nanos; 0 = no hold
}

// New returns a closed Breaker.
func New(s Settings) *Breaker {
	b := &Breaker{name: s.Name, openTimeout: s.OpenTimeout, now: s.Now}
	if b.now == nil {
		b.now = time.Now
	}
	failures := max(s.Failures, 1)
	isFailure := s.IsFailure
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        s.Name,
		Timeout:     s.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsSuccessful: func(err error) bool {
			return err == nil || (isFailure != nil && !isFailure(err))
		},
		// A caller that went away says nothing about the upstream.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openedAt.Store(time.Now().UnixNano())
			}
			if s.OnStateChange != nil {
				s.OnStateChange(name, from, to)
			}
		},
	})
	return b
}

// ErrOpen is the cause of the Unavailable error returned while the breaker is open.
var ErrOpen = errors.New("breaker open")

// ErrHeld is the cause while the hold gate is closed.
var ErrHeld = errors.New("held until the upstream's reset time")

// Allow asks to call the upstream. When allowed, the caller must call done
// with the call's error. Otherwise err is a fault.Unavailable error whose
// RetryAfter says when to try again.
func (b *Breaker) Allow() (done func(error), err error) {
	if h := b.holdUntil.Load(); h != 0 {
		if until := time.Unix(0, h); b.now().Before(until) {
			return nil, &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
				Description: b.name + " unavailable", RetryAfter: until, Err: fmt.Errorf("%s: %w", b.name, ErrHeld)}
		}
		b.holdUntil.CompareAndSwap(h, 0)
	}
	done, err = b.cb.Allow()
	if err != nil {
		retry := time.Unix(0, b.openedAt.Load()).Add(b.openTimeout)
		if now := time.Now(); retry.Before(now) {
			retry = now.Add(time.Second) // half-open and its probe is in flight
		}
		return nil, &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: b.name + " unavailable", RetryAfter: retry, Err: fmt.Errorf("%s: %w", b.name, ErrOpen)}
	}
	return done, nil
}

// MinMaxHold is the least a hold may last when OpenTimeout is shorter.
const MinMaxHold = time.Minute

// Hold refuses calls until the given time (a rate limit's reset). A later
// time extends the hold; an earlier one does not shorten it. A time in the
// past is ignored. The hold ends at most max(OpenTimeout, MinMaxHold) from
// now: the time comes from the upstream (Retry-After, X-Rate-Limit-Reset),
// and a wrong or hostile one (a day away) must not stop every call for that
// long; once the hold ends, one call asks again and a new 429 holds anew.
func (b *Breaker) Hold(until time.Time) {
	now := b.now()
	if !until.After(now) {
		return
	}
	if limit := now.Add(max(b.openTimeout, MinMaxHold)); until.After(limit) {
		until = limit
	}
	n := until.UnixNano()
	for {
		cur := b.holdUntil.Load()
		if cur >= n || b.holdUntil.CompareAndSwap(cur, n) {
			return
		}
	}
}

// HeldUntil reports the end of the current hold, or the zero time.
func (b *Breaker) HeldUntil() time.Time {
	h := b.holdUntil.Load()
	if h == 0 || !b.now().Before(time.Unix(0, h)) {
		return time.Time{}
	}
	return time.Unix(0, h)
}

// State reports the breaker's state. Asking moves an open breaker whose time
// is up to half-open, as gobreaker does.
func (b *Breaker) State() State { return b.cb.State() }

// Name is the upstream's name.
func (b *Breaker) Name() string { return b.name }

// Health says how the breaker stands, for /readyz: "ok", "rate limited"
// (a hold is on), "breaker open" or "breaker half-open".
func (b *Breaker) Health() string {
	if !b.HeldUntil().IsZero() {
		return "rate limited"
	}
	switch b.State() {
	case Open:
		return "breaker open"
	case HalfOpen:
		return "breaker half-open"
	}
	return "ok"
}
