// Package requestid is the X-Request-Id of the request being served: which
// client values are accepted, how one is generated otherwise, and how it
// rides in a context to the calls made for the request (IdP, OPA).
package requestid

import (
	"context"
	"math/rand/v2"
	"net/http"
	"unsafe"
)

// Header is the header that carries the id, in canonical form.
const Header = "X-Request-Id"

// MaxLen bounds an id accepted from a client.
const MaxLen = 128

// Valid reports whether a client's id can be kept as is: 1 to MaxLen
// characters of letters, digits and "-._:+/=@" (UUIDs, ULIDs, hex and
// base64 ids pass; nothing that could forge a log line or a header does).
func Valid(s string) bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !safe[s[i]] {
			return false
		}
	}
	return true
}

var safe = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c], t[c+'a'-'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._:+/=@" {
		t[c] = true
	}
	return t
}()

// box holds a generated id and the one-element header value that carries
// it, in one allocation.
type box struct {
	vals [1]string
	buf  [32]byte
}

const hexDigits = "0123456789abcdef"

// fill makes a fresh id in b: 32 lower-case hex digits, 128 random bits.
// Why math/rand/v2: its top-level source is the runtime's per-thread
// ChaCha8, seeded from the operating system; ids need to be unique and
// unguessable enough to correlate logs, not secret, and crypto/rand per
// request would cost a system call under some kernels.
func (b *box) fill() []string {
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := 0; i < 16; i++ {
		b.buf[15-i] = hexDigits[hi&0xf]
		b.buf[31-i] = hexDigits[lo&0xf]
		hi >>= 4
		lo >>= 4
	}
	// The string points into the same allocation as the slice that holds
	// it, and buf is never written again. unsafe stays because it is
	// measured: string(b.buf[:]) makes Attach two allocations instead of one
	// (BenchmarkAttach, and TestAttach asserts it).
	b.vals[0] = unsafe.String(&b.buf[0], len(b.buf))
	return b.vals[:]
}

// New returns a fresh id as a one-element header value.
func New() []string { return new(box).fill() }

// FromHeader returns the request's id values when exactly one well-formed
// id was sent, else a new one; fresh says which.
func FromHeader(h http.Header) (vals []string, fresh bool) {
	if v := h[Header]; len(v) == 1 && Valid(v[0]) {
		return v, false
	}
	return New(), true
}

type ctxKey struct{}

// idContext carries the id; a type of its own rather than
// context.WithValue, and with room for a generated id, so that settling a
// request's id costs one allocation.
type idContext struct {
	context.Context
	vals []string // one element, shared read-only with the request's header
	box  box
}

func (c *idContext) Value(key any) any {
	if key == (ctxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// NewContext returns ctx carrying the id in vals, a one-element header value
// as New and FromHeader return it, which must not be modified afterwards.
func NewContext(ctx context.Context, vals []string) context.Context {
	return &idContext{Context: ctx, vals: vals[:1:1]}
}

// Attach settles the id of a request with header h, as FromHeader does, and
// returns ctx carrying it and the one-element header value to share between
// the request and the response (not to be modified). One allocation.
func Attach(ctx context.Context, h http.Header) (context.Context, []string) {
	c := &idContext{Context: ctx}
	if v := h[Header]; len(v) == 1 && Valid(v[0]) {
		c.vals = v[:1:1]
	} else {
		c.vals = c.box.fill()
	}
	return c, c.vals
}

// FromContext returns the id ctx carries, if any.
func FromContext(ctx context.Context) (string, bool) {
	if c, ok := ctx.Value(ctxKey{}).(*idContext); ok {
		return c.vals[0], true
	}
	return "", false
}

// SetHeader sets the X-Request-Id of h to the id ctx carries, if any: the
// hook the IdP and OPA clients call for each request they send.
func SetHeader(ctx context.Context, h http.Header) {
	if c, ok := ctx.Value(ctxKey{}).(*idContext); ok {
		h[Header] = c.vals // cap 1: an append elsewhere copies, never writes into it
	}
}
