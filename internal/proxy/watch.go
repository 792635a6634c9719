package proxy

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/tokenid"
)

// Open streams and tunnels (stream.go, upgrade.go) outlive the check that
// let them open, so each one is watched for as long as it lives:
//
//   - a revocation this replica learns of (POST /revoke, a fleet message)
//     ends, at once, those opened with the token (Streams.Revoked, keyed
//     like every revocation by tokenid's Revocation key);
//   - when the token's cache entry ends (authn.Token.CachedUntil; without
//     one, CACHE_TTL after the stream opened), the token is looked up again
//     through the same Verifier as the request's: inactive ends the stream;
//     active keeps it until the new entry ends; an undecidable answer (the
//     IdP unavailable, or a stale entry served for it) keeps it only until
//     CACHE_STALE_IF_ERROR has passed since the entry ended;
//   - the token's exp ends it;
//   - shutdown ends them all (Streams.Close), so that Run need not wait
//     SHUTDOWN_TIMEOUT for them, and each still gets its access line.
//
// The policy is not asked again: it allowed the request that opened the
// stream, and a stream carries no further request to decide on.

// Why authgate ended a stream or tunnel, as the access log's ended_by says.
const (
	endExp         = "exp"         // the token's exp passed
	endRevoked     = "revoked"     // a revocation: POST /revoke or the fleet's
	endInactive    = "inactive"    // the re-check said the token is no longer valid
	endUnavailable = "unavailable" // the re-check could not decide past CACHE_STALE_IF_ERROR
	endShutdown    = "shutdown"    // authgate is stopping
)

// recheckRetry is how soon an undecidable re-check is tried again, within
// CACHE_STALE_IF_ERROR.
const recheckRetry = time.Second

// Streams is the registry of a gateway's open streams and tunnels, by the
// revocation key of the token each was opened with. Its zero value is not
// usable: NewStreams makes one.
type Streams struct {
	mu      sync.Mutex
	byKey   map[[sha256.Size]byte]map[*watch]struct{} // those opened with a token
	all     map[*watch]struct{}
	open    int           // watches not yet logged, for Wait
	closed  bool          // Close was called: a new watch ends at once
	drained chan struct{} // closed once closed and open is 0
	done    bool          // drained is closed
}

// NewStreams makes an empty registry.
func NewStreams() *Streams {
	return &Streams{byKey: map[[sha256.Size]byte]map[*watch]struct{}{}, all: map[*watch]struct{}{}, drained: make(chan struct{})}
}

// Revoked ends every open stream and tunnel opened with the token whose
// revocation key (tokenid.ID.Revocation) is key. It does not wait for them
// to be gone.
func (s *Streams) Revoked(key [sha256.Size]byte) {
	s.mu.Lock()
	ws := make([]*watch, 0, len(s.byKey[key]))
	for w := range s.byKey[key] {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.finish(endRevoked)
	}
}

// Close ends every open stream and tunnel, and from now on those that
// open; it does not wait (Wait does). For http.Server.RegisterOnShutdown.
func (s *Streams) Close() {
	s.mu.Lock()
	s.closed = true
	ws := make([]*watch, 0, len(s.all))
	for w := range s.all {
		ws = append(ws, w)
	}
	s.drain()
	s.mu.Unlock()
	for _, w := range ws {
		w.finish(endShutdown)
	}
}

// Wait waits, after Close, until every stream and tunnel has ended and
// been logged, or ctx ends (its error then).
func (s *Streams) Wait(ctx context.Context) error {
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Len is the number of streams and tunnels not yet over: open, or ended
// but not yet logged.
func (s *Streams) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// drain closes drained once the registry is closed and empty; s.mu held.
func (s *Streams) drain() {
	if s.closed && s.open == 0 && !s.done {
		s.done = true
		close(s.drained)
	}
}

func (s *Streams) add(w *watch) (closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open++
	if s.closed {
		return true
	}
	s.all[w] = struct{}{}
	if w.grant.Token == nil {
		return false // a public path: only shutdown ends it
	}
	set := s.byKey[w.key]
	if set == nil {
		set = map[*watch]struct{}{}
		s.byKey[w.key] = set
	}
	set[w] = struct{}{}
	return false
}

func (s *Streams) remove(w *watch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.all, w)
	if set := s.byKey[w.key]; set != nil && w.grant.Token != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(s.byKey, w.key)
		}
	}
}

func (s *Streams) logged() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	s.drain()
}

// watch keeps one open stream or tunnel no longer than its token (see the
// top of this file).
type watch struct {
	p     *Proxy
	key   [sha256.Size]byte // the token's revocation key
	grant Grant             // zero on a public path
	end   func()            // ends the stream or tunnel; called at most once

	ctx    context.Context // the re-checks'; cancelled when the watch stops
	cancel context.CancelFunc

	mu       sync.Mutex
	stop     func() bool // the pending timer's; nil when none
	exp      int64       // the token's exp (unix seconds); 0: none
	graceEnd time.Time   // while the re-check is undecidable: when it ends the stream; zero otherwise
	stopped  bool        // ended, by authgate or by itself: no more timers
	reason   string      // why authgate ended it; "" when it ended by itself
	isLogged bool
}

// watch starts watching a stream or tunnel opened with the token gr
// grants (nil: none), which end ends. The caller must call logged once
// the request is logged.
func (p *Proxy) watch(gr Granted, end func()) *watch {
	w := &watch{p: p, end: end}
	if gr != nil {
		w.grant = gr.Grant()
		w.key, w.exp = tokenid.Revocation(w.grant.Raw), w.grant.Token.Exp
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	if p.cfg.Streams.add(w) {
		w.finish(endShutdown)
		return w
	}
	if w.grant.Token == nil {
		return w
	}
	now := p.cfg.Now()
	w.mu.Lock()
	if !w.stopped { // a revocation or Close may have ended it since add
		w.schedule(w.grant.Token, now)
	}
	w.mu.Unlock()
	return w
}

// schedule sets the timer for what comes first: the token's exp, or the
// end of its cache entry (a re-check). w.mu held.
func (w *watch) schedule(tok *authn.Token, now time.Time) {
	if tok.Exp != 0 && (w.exp == 0 || tok.Exp < w.exp) {
		w.exp = tok.Exp // never later than the first answer's
	}
	var at time.Time
	switch {
	case tok.CachedUntil != 0:
		at = time.Unix(0, tok.CachedUntil)
	case w.p.cfg.CacheTTL > 0:
		at = now.Add(w.p.cfg.CacheTTL) // an answer no cache kept
	}
	w.setTimer(at, now)
}

// setTimer arms the timer for at, or the token's exp when earlier; a zero
// at means the exp only. w.mu held.
func (w *watch) setTimer(at, now time.Time) {
	if w.exp != 0 {
		if exp := time.Unix(w.exp, 0); at.IsZero() || exp.Before(at) {
			at = exp
		}
	}
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
	if at.IsZero() {
		return // neither exp nor cache entry: only a revocation or shutdown ends it
	}
	w.stop = w.p.cfg.AfterFunc(at.Sub(now), w.fire)
}

// fire is the timer's: the token expired, or its cache entry ended.
func (w *watch) fire() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stop = nil
	w.mu.Unlock()
	now := w.p.cfg.Now()
	if exp := w.expiry(); exp != 0 && now.Unix() >= exp {
		w.finish(endExp)
		return
	}
	tok, err := w.recheck()
	now = w.p.cfg.Now()
	switch {
	case err == nil && tok.Exp != 0 && now.Unix() >= tok.Exp:
		w.finish(endExp)
	case err == nil && (tok.CachedUntil == 0 || now.UnixNano() < tok.CachedUntil):
		w.mu.Lock()
		if !w.stopped {
			w.graceEnd = time.Time{}
			w.schedule(tok, now)
		}
		w.mu.Unlock()
	case err == nil || fault.Is(err, fault.Unavailable):
		// Undecidable: the IdP could not answer (a stale entry was served,
		// or none could be). The stream lives on for CACHE_STALE_IF_ERROR
		// past the end of the entry, asking again meanwhile.
		if !w.undecided(now) {
			w.finish(endUnavailable)
		}
	default:
		w.finish(endInactive) // Unauthenticated, or anything else: fail closed
	}
}

// undecided notes a re-check that could not decide, and arms the next one
// while CACHE_STALE_IF_ERROR lasts; false when it has passed.
func (w *watch) undecided(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return true
	}
	if w.graceEnd.IsZero() {
		w.graceEnd = now.Add(w.p.cfg.StaleIfError)
	}
	if !now.Before(w.graceEnd) {
		return false
	}
	w.setTimer(minTime(now.Add(recheckRetry), w.graceEnd), now)
	return true
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (w *watch) expiry() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.exp
}

// recheck looks the token up again as the check did (Grant.Recheck):
// through the cache, so a live entry answers and an ended one is
// introspected (or, a JWT, re-verified) anew.
func (w *watch) recheck() (*authn.Token, error) { return w.grant.Recheck(w.ctx) }

// finish ends the stream or tunnel for reason, once, unless it has ended.
func (w *watch) finish(reason string) {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.reason = reason
	w.halt()
	w.mu.Unlock()
	w.end()
}

// closed is called when the stream or tunnel has ended, whoever ended it:
// no timer or revocation touches it any more.
func (w *watch) closed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.halt()
	}
}

// halt stops the timer and the re-checks and leaves the registry; w.mu held.
func (w *watch) halt() {
	w.stopped = true
	if w.stop != nil {
		w.stop()
		w.stop = nil
	}
	w.cancel()
	w.p.cfg.Streams.remove(w)
}

// endedBy says why authgate ended it ("" when it ended by itself).
func (w *watch) endedBy() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason
}

// logged is called once the request's access line is written: Streams.Wait
// waits for it.
func (w *watch) logged() {
	w.closed()
	w.mu.Lock()
	first := !w.isLogged
	w.isLogged = true
	w.mu.Unlock()
	if first {
		w.p.cfg.Streams.logged()
	}
}
