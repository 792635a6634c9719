package authn_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/pkg/introspect"
)

// fakeIntrospector stands in for introspect.Client.
type fakeIntrospector struct {
	IntrospectFn func(ctx context.Context, token string) (*introspect.Response, error)
	calls        atomic.Int32
}

var _ authn.Introspector = (*fakeIntrospector)(nil)

func (f *fakeIntrospector) Introspect(ctx context.Context, token string) (*introspect.Response, error) {
	f.calls.Add(1)
	return f.IntrospectFn(ctx, token)
}

// fakeVerifier stands in for the Verifier a Cache or Guarded wraps.
type fakeVerifier struct {
	VerifyFn func(ctx context.Context, token string) (*authn.Token, error)
	calls    atomic.Int32
}

var _ authn.Verifier = (*fakeVerifier)(nil)

func (f *fakeVerifier) Verify(ctx context.Context, token string) (*authn.Token, error) {
	f.calls.Add(1)
	return f.VerifyFn(ctx, token)
}

// clock is a fake clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
