package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
)

var errUpstream = errors.New("upstream failed")

// transitions records OnStateChange calls.
type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) record(name string, from, to breaker.State) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.got = append(tr.got, name+": "+from.String()+" -> "+to.String())
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.got)
}

// call asks the breaker and, when allowed, reports err as the call's result.
func call(t *testing.T, b *breaker.Breaker, err error) {
	t.Helper()
	done, aerr := b.Allow()
	if aerr != nil {
		t.Fatalf("Allow refused: %v", aerr)
	}
	done(err)
}

// waitState polls State until it is want. gobreaker's open timeout runs on
// the real clock, so this is a bounded poll, not a sleep.
func waitState(t *testing.T, b *breaker.Breaker, want breaker.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("State = %v after 5s, want %v", b.State(), want)
		}
	}
}

func TestBreakerOpensAfterFailures(t *testing.T) {
	const openTimeout = time.Hour // stays open for the whole test
	var tr transitions
	b := breaker.New(breaker.Settings{Name: "idp", Failures: 3, OpenTimeout: openTimeout, OnStateChange: tr.record})
	if b.Name() != "idp" || b.State() != breaker.Closed {
		t.Fatalf("new breaker: Name %q, State %v", b.Name(), b.State())
	}
	call(t, b, errUpstream)
	call(t, b, errUpstream)
	if b.State() != breaker.Closed {
		t.Fatalf("State = %v after 2 of 3 failures", b.State())
	}
	before := time.Now()
	call(t, b, errUpstream)
	after := time.Now()
	if b.State() != breaker.Open {
		t.Fatalf("State = %v after 3 failures, want open", b.State())
	}

	done, err := b.Allow()
	var fe *fault.Error
	if done != nil || !errors.As(err, &fe) || fe.Kind != fault.Unavailable || !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("open: Allow = %v; want Unavailable wrapping ErrOpen", err)
	}
	if errors.Is(err, breaker.ErrHeld) {
		t.Errorf("open: err %v is ErrHeld", err)
	}
	if lo, hi := before.Add(openTimeout), after.Add(openTimeout); fe.RetryAfter.Before(lo) || fe.RetryAfter.After(hi) {
		t.Errorf("RetryAfter = %v, want within [%v, %v]", fe.RetryAfter, lo, hi)
	}
	if want := []string{"idp: closed -> open"}; !slices.Equal(tr.list(), want) {
		t.Errorf("transitions = %q, want %q", tr.list(), want)
	}
}

func TestBreakerCycle(t *testing.T) {
	const openTimeout = 50 * time.Millisecond
	var tr transitions
	b := breaker.New(breaker.Settings{Name: "opa", Failures: 2, OpenTimeout: openTimeout, OnStateChange: tr.record})

	call(t, b, errUpstream)
	call(t, b, errUpstream)
	waitState(t, b, breaker.HalfOpen)

	// One probe at a time: a second caller is refused while it is in flight.
	probe, err := b.Allow()
	if err != nil {
		t.Fatalf("half-open: probe refused: %v", err)
	}
	_, err = b.Allow()
	var fe *fault.Error
	if !errors.As(err, &fe) || !errors.Is(err, breaker.ErrOpen) || !fe.RetryAfter.After(time.Now()) {
		t.Errorf("half-open, probe in flight: Allow = %v; want ErrOpen with a RetryAfter in the future", err)
	}
	probe(errUpstream) // the probe failed: open again
	waitState(t, b, breaker.HalfOpen)
	call(t, b, nil) // the probe succeeded: closed
	if b.State() != breaker.Closed {
		t.Fatalf("State = %v after a good probe, want closed", b.State())
	}
	call(t, b, nil)

	want := []string{
		"opa: closed -> open",
		"opa: open -> half-open",
		"opa: half-open -> open",
		"opa: open -> half-open",
		"opa: half-open -> closed",
	}
	if got := tr.list(); !slices.Equal(got, want) {
		t.Errorf("transitions = %q, want %q", got, want)
	}
}

func TestBreakerIsFailure(t *testing.T) {
	b := breaker.New(breaker.Settings{Name: "idp", Failures: 1, OpenTimeout: time.Hour,
		IsFailure: func(err error) bool { return fault.Is(err, fault.Unavailable) }})
	for range 10 {
		call(t, b, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token"})
		call(t, b, nil)
	}
	if b.State() != breaker.Closed {
		t.Fatalf("State = %v after answers that are not failures", b.State())
	}
	call(t, b, &fault.Error{Kind: fault.Unavailable})
	if b.State() != breaker.Open {
		t.Errorf("State = %v after an Unavailable, want open", b.State())
	}
}

func TestBreakerExcludesCancellation(t *testing.T) {
	for _, err := range []error{
		context.Canceled,
		fmt.Errorf("opa: %w", context.Canceled),
		&fault.Error{Kind: fault.Unavailable, Err: fmt.Errorf("post: %w", context.Canceled)},
	} {
		b := breaker.New(breaker.Settings{Name: "opa", Failures: 1, OpenTimeout: time.Hour})
		for range 10 {
			call(t, b, err)
		}
		if b.State() != breaker.Closed {
			t.Errorf("%v: State = %v, want closed", err, b.State())
		}
	}
	// A deadline is the upstream's slowness: it counts.
	b := breaker.New(breaker.Settings{Name: "opa", Failures: 1, OpenTimeout: time.Hour})
	call(t, b, fmt.Errorf("opa: %w", context.DeadlineExceeded))
	if b.State() != breaker.Open {
		t.Errorf("DeadlineExceeded: State = %v, want open", b.State())
	}
}

func TestBreakerCancelledProbeFreesTheSlot(t *testing.T) {
	b := breaker.New(breaker.Settings{Name: "opa", Failures: 1, OpenTimeout: 50 * time.Millisecond})
	call(t, b, errUpstream)
	waitState(t, b, breaker.HalfOpen)
	call(t, b, context.Canceled) // the probe's caller went away
	if b.State() != breaker.HalfOpen {
		t.Fatalf("State = %v after a cancelled probe, want half-open", b.State())
	}
	call(t, b, nil) // another probe may go
	if b.State() != breaker.Closed {
		t.Errorf("State = %v, want closed", b.State())
	}
}

func TestBreakerHold(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := breaker.New(breaker.Settings{Name: "idp", Failures: 1, OpenTimeout: time.Hour, Now: func() time.Time { return now }})
	if !b.HeldUntil().IsZero() {
		t.Fatalf("new breaker HeldUntil = %v", b.HeldUntil())
	}
	until := now.Add(30 * time.Second)
	b.Hold(until)
	if got := b.HeldUntil(); !got.Equal(until) {
		t.Fatalf("HeldUntil = %v, want %v", got, until)
	}

	b.Hold(now.Add(10 * time.Second)) // earlier: does not shorten
	if got := b.HeldUntil(); !got.Equal(until) {
		t.Fatalf("after an earlier Hold: HeldUntil = %v, want %v", got, until)
	}

	now = until.Add(-time.Nanosecond)
	done, err := b.Allow()
	var fe *fault.Error
	if done != nil || !errors.As(err, &fe) || fe.Kind != fault.Unavailable || !errors.Is(err, breaker.ErrHeld) || !fe.RetryAfter.Equal(until) {
		t.Fatalf("held: Allow = %v; want Unavailable wrapping ErrHeld with RetryAfter %v", err, until)
	}
	if errors.Is(err, breaker.ErrOpen) {
		t.Errorf("held: err %v is ErrOpen", err)
	}
	if b.State() != breaker.Closed {
		t.Errorf("a hold is not the breaker: State = %v", b.State())
	}

	now = until
	if !b.HeldUntil().IsZero() {
		t.Errorf("HeldUntil at the end of the hold = %v, want zero", b.HeldUntil())
	}
	call(t, b, nil)

	later := until.Add(time.Minute)
	b.Hold(later) // a later time extends
	if got := b.HeldUntil(); !got.Equal(later) {
		t.Errorf("after a later Hold: HeldUntil = %v, want %v", got, later)
	}
}

func TestBreakerHoldIsSafeForConcurrentUse(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	b := breaker.New(breaker.Settings{Name: "idp", OpenTimeout: time.Hour, Now: func() time.Time { return base }})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { b.Hold(base.Add(time.Duration(i) * time.Second)) })
	}
	wg.Wait()
	if got, want := b.HeldUntil(), base.Add(49*time.Second); !got.Equal(want) {
		t.Errorf("HeldUntil = %v, want the latest %v", got, want)
	}
}

func TestBreakerHoldIsBounded(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name        string
		openTimeout time.Duration
		hold        time.Duration // from now; negative is in the past
		want        time.Duration // HeldUntil from now; 0 means no hold
	}{
		{"within the open timeout", 5 * time.Minute, 2 * time.Minute, 2 * time.Minute},
		{"a day away, clamped to the open timeout", 5 * time.Minute, 24 * time.Hour, 5 * time.Minute},
		{"a day away, short open timeout: clamped to a minute", 10 * time.Second, 24 * time.Hour, breaker.MinMaxHold},
		{"under a minute with a short open timeout: kept", 10 * time.Second, 45 * time.Second, 45 * time.Second},
		{"in the past: ignored", 5 * time.Minute, -time.Hour, 0},
		{"now: ignored", 5 * time.Minute, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := start
			b := breaker.New(breaker.Settings{Name: "idp", OpenTimeout: tt.openTimeout, Now: func() time.Time { return now }})
			b.Hold(now.Add(tt.hold))
			got := b.HeldUntil()
			if tt.want == 0 {
				if !got.IsZero() {
					t.Fatalf("HeldUntil = %v, want no hold", got)
				}
				call(t, b, nil)
				return
			}
			if want := now.Add(tt.want); !got.Equal(want) {
				t.Fatalf("HeldUntil = %v, want %v", got, want)
			}
			now = now.Add(tt.want) // the clamped hold is over: calls go through
			call(t, b, nil)
		})
	}
}
