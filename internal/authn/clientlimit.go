package authn

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"

	"github.com/authgate/authgate/internal/fault"
)

// ErrClientOverBudget is the cause of the Unavailable error a ClientLimited
// returns when the client's own budget for this second is spent.
var ErrClientOverBudget = errors.New("introspection budget of this client (OKTA_MAX_RPS_PER_CLIENT) spent")

type clientKey struct{}

// clientContext carries the client's address. It is a Context of its own
// rather than context.WithValue so that the gateway pays one allocation
// per request for it, not two (the string would be boxed).
type clientContext struct {
	context.Context
	addr string
}

func (c *clientContext) Value(key any) any {
	if key == (clientKey{}) {
		return c.addr
	}
	return c.Context.Value(key)
}

// WithClient returns ctx saying which client asks: its IP address, as the
// gateway computed remote_addr (TRUSTED_PROXIES honoured; "" when unknown).
// A ClientLimited under the Cache reads it.
func WithClient(ctx context.Context, addr string) context.Context {
	return &clientContext{Context: ctx, addr: addr}
}

// ClientOf returns the client address WithClient put in ctx.
func ClientOf(ctx context.Context) (addr string, ok bool) {
	addr, ok = ctx.Value(clientKey{}).(string)
	return addr, ok
}

// ClientLimited is a set of per-client budgets: a Verifier it makes with
// Through lets each client make at most a given number of calls per second
// to that Verifier's next and refuses the rest at once, so that
// one client sending garbage tokens (each one a miss) cannot spend the
// whole introspection budget. Put it under the Cache (cached tokens are
// never limited) and above RateLimited (a client past its own limit spends
// nothing of the global budget).
//
// A client is the address WithClient gave: an IPv4 address, or the /64 of
// an IPv6 one (what one host is usually given). Calls whose context names
// no client pass unlimited; clients whose address is unknown ("") share
// one limiter. Concurrent misses for one token share one call in the
// Cache, charged to the client that started it.
type ClientLimited struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	clients *simplelru.LRU[netip.Addr, *rate.Limiter]

	// OnRefuse, when set, is called for each call refused.
	OnRefuse func()
}

// NewClientLimited allows each client perSecond calls a second,
// with bursts of up to ceil(perSecond) (at least one). It remembers the
// most recent clients up to size (at least one): a client forgotten starts
// again with a full burst. now is the clock; nil means time.Now.
func NewClientLimited(perSecond float64, size int, now func() time.Time) *ClientLimited {
	if now == nil {
		now = time.Now
	}
	clients, _ := simplelru.NewLRU[netip.Addr, *rate.Limiter](max(size, 1), nil) // errors only for size < 1
	return &ClientLimited{limit: rate.Limit(perSecond), burst: max(1, int(math.Ceil(perSecond))),
		now: now, clients: clients}
}

// Len is the number of clients remembered.
func (l *ClientLimited) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clients.Len()
}

// Through returns a Verifier that calls next within the clients' budgets.
// Past a client's budget it returns an Unavailable error whose RetryAfter
// is when the client's next call would be allowed. A call next's global
// budget then refuses (ErrOverBudget) is given back: the server was not
// asked. The introspection chains of several issuers go through one
// ClientLimited: OKTA_MAX_RPS_PER_CLIENT is one client's budget, whichever
// issuer its tokens go to.
func (l *ClientLimited) Through(next Verifier) Verifier { return clientThrough{l: l, next: next} }

type clientThrough struct {
	l    *ClientLimited
	next Verifier
}

func (c clientThrough) Verify(ctx context.Context, token string) (*Token, error) {
	return c.l.verify(ctx, token, c.next)
}

func (l *ClientLimited) verify(ctx context.Context, token string, next Verifier) (*Token, error) {
	addr, ok := ClientOf(ctx)
	if !ok {
		return next.Verify(ctx, token)
	}
	now := l.now()
	r := l.limiter(clientOf(addr)).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		if l.OnRefuse != nil {
			l.OnRefuse()
		}
		return nil, &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
			Description: "authorization server budget for this client reached", RetryAfter: now.Add(d), Err: ErrClientOverBudget}
	}
	t, err := next.Verify(ctx, token)
	if errors.Is(err, ErrOverBudget) {
		r.CancelAt(now) // at the time reserved: a later one would restore nothing
	}
	return t, err
}

func (l *ClientLimited) limiter(client netip.Addr) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.clients.Get(client)
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.clients.Add(client, lim)
	}
	return lim
}

// clientOf is the limiter key of an address: the address, its /64 for
// IPv6, the zero Addr for what is not an address.
func clientOf(addr string) netip.Addr {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.Addr()
	}
	return a
}
