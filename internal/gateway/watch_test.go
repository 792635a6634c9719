package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/pathrule"
	"github.com/authgate/authgate/internal/tokenid"
)

// tokenScript is the token cache's answers, which a test changes between
// two re-checks: goodToken is answered by answer, any other token is
// inactive.
type tokenScript struct {
	mu     sync.Mutex
	answer func(now time.Time) (*authn.Token, authn.Lookup, error)
	calls  int
	clock  *clock
}

func (s *tokenScript) lookup(_ context.Context, token string) (*authn.Token, authn.Lookup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token != goodToken {
		return nil, authn.Miss, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}
	}
	s.calls++
	return s.answer(s.clock.Now())
}

func (s *tokenScript) set(f func(now time.Time) (*authn.Token, authn.Lookup, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

func (s *tokenScript) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Answers of the token cache, at now.
func active(exp int64, cachedFor time.Duration) func(now time.Time) (*authn.Token, authn.Lookup, error) {
	return func(now time.Time) (*authn.Token, authn.Lookup, error) {
		until := now.Add(cachedFor)
		if exp != 0 && time.Unix(exp, 0).Before(until) {
			until = time.Unix(exp, 0)
		}
		return &authn.Token{Subject: "alice", Exp: exp, Validation: authn.ValidationIntrospection, CachedUntil: until.UnixNano()}, authn.Miss, nil
	}
}

func inactive(time.Time) (*authn.Token, authn.Lookup, error) {
	return nil, authn.Miss, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "token is not active"}
}

func idpDown(time.Time) (*authn.Token, authn.Lookup, error) {
	return nil, authn.Miss, &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable", Description: "authorization server unavailable"}
}

// staleServed is the cache serving an entry that ended at ended, the IdP
// being down (CACHE_STALE_IF_ERROR).
func staleServed(ended time.Time) func(time.Time) (*authn.Token, authn.Lookup, error) {
	return func(time.Time) (*authn.Token, authn.Lookup, error) {
		return &authn.Token{Subject: "alice", Validation: authn.ValidationIntrospection, CachedUntil: ended.UnixNano()}, authn.Stale, nil
	}
}

// watchedStream is a proxy-mode gateway in front of an event source, with
// the token cache scripted and the timers fired by hand; the clock is at
// t0 and the stream is open, its first event through.
type watchedStream struct {
	h      *harness
	es     *eventSource
	after  *fakeAfter
	script *tokenScript
	br     *bufio.Reader
}

var t0 = time.Unix(1_900_000_000, 0)

func openWatched(t *testing.T, first func(time.Time) (*authn.Token, authn.Lookup, error), opts ...func(*Deps)) *watchedStream {
	t.Helper()
	ws := &watchedStream{es: startEventSource(t), after: &fakeAfter{}, script: &tokenScript{answer: first}}
	deps := func(d *Deps) {
		d.AfterFunc = ws.after.after
		d.Tokens = &fakeTokens{LookupFn: ws.script.lookup}
		d.Now = ws.script.clockNow
	}
	ws.script.clock = &clock{t: t0}
	h, base := streamGateway(t, ws.es, time.Minute, 0, append([]func(*Deps){deps}, opts...)...)
	ws.h = h
	_, br := openStream(t, base)
	ws.br = br
	event(t, ws.es, br, 1)
	return ws
}

func (s *tokenScript) clockNow() time.Time { return s.clock.Now() }

// recheck moves the clock by d, makes the cache answer next and fires the
// timer, which must have been set for d.
func (ws *watchedStream) recheck(t *testing.T, d time.Duration, next func(time.Time) (*authn.Token, authn.Lookup, error)) {
	t.Helper()
	if got := ws.after.duration(); got != d {
		t.Fatalf("timer set for %s, want %s", got, d)
	}
	ws.script.clock.Add(d)
	ws.script.set(next)
	ws.after.fire(t)
}

// ended checks that the stream ended cleanly, the upstream's closed, and
// that the access line says why.
func (ws *watchedStream) ended(t *testing.T, by string) {
	t.Helper()
	if line, err := ws.br.ReadString('\n'); !errors.Is(err, io.EOF) || line != "" {
		t.Fatalf("read %q, %v; want a clean end of the stream", line, err)
	}
	<-ws.es.gone
	if l := ws.h.waitLine(t, AccessLogMsg); l["ended_by"] != by || l["status"] != 200.0 {
		t.Errorf("access line %v, want ended_by %q", l, by)
	}
	wantNoStreams(t, ws.h.g)
}

// open checks that the stream still carries events.
func (ws *watchedStream) open(t *testing.T, k int) {
	t.Helper()
	event(t, ws.es, ws.br, k)
}

// A stream is looked up again when its token's cache entry ends
// (CachedUntil): active keeps it until the new entry ends, inactive ends
// it; an undecidable answer ends it once CACHE_STALE_IF_ERROR has passed.
func TestStreamRecheck(t *testing.T) {
	type step struct {
		after  time.Duration // the timer the step fires, from the previous one
		answer func(time.Time) (*authn.Token, authn.Lookup, error)
	}
	for _, tc := range []struct {
		name  string
		stale time.Duration // CACHE_STALE_IF_ERROR
		steps []step
		ended string // "": still open after the steps
	}{
		{name: "active", steps: []step{{time.Minute, active(0, time.Minute)}, {time.Minute, active(0, 5*time.Minute)}, {5 * time.Minute, active(0, time.Minute)}}},
		{name: "inactive", steps: []step{{time.Minute, active(0, time.Minute)}, {time.Minute, inactive}}, ended: "inactive"},
		{name: "idp down, no stale-if-error", steps: []step{{time.Minute, idpDown}}, ended: "unavailable"},
		{name: "idp down within stale-if-error", stale: 30 * time.Second,
			steps: []step{{time.Minute, idpDown}, {time.Second, idpDown}, {time.Second, active(0, time.Minute)}, {time.Minute, active(0, time.Minute)}}},
		{name: "idp down past stale-if-error", stale: 2500 * time.Millisecond,
			steps: []step{{time.Minute, idpDown}, {time.Second, idpDown}, {time.Second, idpDown}, {500 * time.Millisecond, idpDown}}, ended: "unavailable"},
		{name: "stale entry served, then the idp answers", stale: 30 * time.Second,
			steps: []step{{time.Minute, staleServed(t0.Add(time.Minute))}, {time.Second, active(0, time.Minute)}, {time.Minute, active(0, time.Minute)}}},
		{name: "stale entry served past stale-if-error", stale: 1500 * time.Millisecond,
			steps: []step{{time.Minute, staleServed(t0.Add(time.Minute))}, {time.Second, staleServed(t0.Add(time.Minute))}, {500 * time.Millisecond, idpDown}}, ended: "unavailable"},
		{name: "a grace is not carried over", stale: 1500 * time.Millisecond,
			steps: []step{{time.Minute, idpDown}, {time.Second, active(0, time.Minute)}, {time.Minute, idpDown}, {time.Second, idpDown}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := openWatched(t, active(0, time.Minute), func(d *Deps) { d.StaleIfError = tc.stale })
			for i, s := range tc.steps {
				ws.recheck(t, s.after, s.answer)
				if i < len(tc.steps)-1 || tc.ended == "" {
					ws.open(t, 10+i)
				}
			}
			if tc.ended != "" {
				ws.ended(t, tc.ended)
			}
			if got, want := ws.script.count(), len(tc.steps)+1; got != want {
				t.Errorf("%d lookups, want %d (the check's and one per re-check)", got, want)
			}
		})
	}
}

// The token's exp ends a stream, whatever the re-checks said, and without
// asking again; a re-check never moves exp later.
func TestStreamEndsAtExpAfterRecheck(t *testing.T) {
	exp := t0.Unix() + 90
	ws := openWatched(t, active(exp, time.Minute))
	ws.recheck(t, time.Minute, active(exp+3600, time.Hour)) // an answer that claims a later exp
	ws.open(t, 2)
	ws.recheck(t, 30*time.Second, inactive) // exp: no lookup
	ws.ended(t, "exp")
	if n := ws.script.count(); n != 2 {
		t.Errorf("%d lookups, want 2 (the check and the one re-check)", n)
	}
}

// An answer that no cache kept (CachedUntil 0) and that has no exp is
// looked up again CACHE_TTL after the stream opened; with no CACHE_TTL
// either, nothing but a revocation or shutdown ends it.
func TestStreamUncachedWithoutExp(t *testing.T) {
	uncached := func(time.Time) (*authn.Token, authn.Lookup, error) {
		return &authn.Token{Subject: "alice", Validation: authn.ValidationIntrospection}, authn.Miss, nil
	}
	ws := openWatched(t, uncached, func(d *Deps) { d.CacheTTL = 5 * time.Minute })
	ws.recheck(t, 5*time.Minute, inactive)
	ws.ended(t, "inactive")

	ws = openWatched(t, uncached)
	if set, _ := ws.after.state(); set {
		t.Error("a timer was set without exp, cache entry or CACHE_TTL")
	}
}

// A revocation of its token ends a stream at once; a stream of another
// token stays.
func TestStreamEndsOnRevocation(t *testing.T) {
	ws := openWatched(t, active(0, time.Hour))
	ws.h.g.Streams().Revoked(tokenid.Revocation("another-token"))
	ws.open(t, 2)
	ws.h.g.Streams().Revoked(tokenid.Revocation(goodToken))
	ws.ended(t, "revoked")
	if _, stops := ws.after.state(); stops != 1 {
		t.Errorf("timer stopped %d times, want 1", stops)
	}
}

// A re-check in hybrid mode asks the same Verifier as the check did: the
// introspection on INTROSPECT_PATHS.
func TestStreamRecheckHybrid(t *testing.T) {
	var introspected sync.Mutex
	n := 0
	jwt := func(now time.Time) (*authn.Token, authn.Lookup, error) {
		return &authn.Token{Subject: "alice", Validation: authn.ValidationJWT, CachedUntil: now.Add(time.Hour).UnixNano()}, authn.Hit, nil
	}
	intro := &fakeTokens{LookupFn: func(_ context.Context, tok string) (*authn.Token, authn.Lookup, error) {
		introspected.Lock()
		defer introspected.Unlock()
		n++
		if n == 1 {
			return &authn.Token{Subject: "alice", Validation: authn.ValidationIntrospection, CachedUntil: t0.Add(time.Minute).UnixNano()}, authn.Miss, nil
		}
		return inactive(t0)
	}}
	ws := openWatched(t, jwt, func(d *Deps) {
		introspectOnPaths(d, intro, pathrule.Rule{Path: "/events"})
	})
	ws.recheck(t, time.Minute, jwt)
	ws.ended(t, "inactive")
	introspected.Lock()
	defer introspected.Unlock()
	if n != 2 {
		t.Errorf("introspected %d times, want 2", n)
	}
}

// A tunnel ends at its token's revocation and at a re-check that finds it
// inactive, with its access line.
func TestTunnelEndsOnRevocationAndRecheck(t *testing.T) {
	for _, how := range []string{"revoked", "inactive"} {
		t.Run(how, func(t *testing.T) {
			after := &fakeAfter{}
			script := &tokenScript{answer: active(0, time.Minute), clock: &clock{t: t0}}
			h := newHarness(t, func(d *Deps) {
				d.Upstream, d.UpstreamTimeout, d.Upgrades = startEchoUpgrade(t), time.Second, []string{"websocket"}
				d.AfterFunc, d.Tokens, d.Now = after.after, &fakeTokens{LookupFn: script.lookup}, script.clockNow
			})
			srv := httptest.NewServer(h.g.Traffic())
			defer srv.Close()
			conn, br := dialUpgrade(t, srv.Listener.Addr().String(), goodToken)
			io.WriteString(conn, "ping\n")
			if got, err := br.ReadString('\n'); err != nil || got != "echo ping\n" {
				t.Fatalf("echo: %q %v", got, err)
			}
			switch how {
			case "revoked":
				h.g.Streams().Revoked(tokenid.Revocation(goodToken))
			case "inactive":
				script.clock.Add(time.Minute)
				script.set(inactive)
				after.fire(t)
			}
			if n, err := br.ReadByte(); err == nil {
				t.Fatalf("the client's connection is still open (read %q)", n)
			}
			l := h.waitLine(t, AccessLogMsg)
			if l["status"] != 101.0 || l["ended_by"] != how || l["tunnel_expired"] != nil {
				t.Errorf("access line %v", l)
			}
		})
	}
}

// Shutdown (Streams.Close) ends every stream and tunnel, public paths'
// too, and Wait returns once each has its access line; one that opens
// afterwards ends at once.
func TestStreamsClose(t *testing.T) {
	es := startEventSource(t)
	up := startEchoUpgrade(t)
	h := newHarness(t, func(d *Deps) {
		d.Upstream, d.UpstreamTimeout, d.Upgrades = es.url, time.Second, []string{"websocket"}
		d.PublicPaths = []pathrule.Rule{{Path: "/public"}}
	})
	srv := httptest.NewServer(h.g.Traffic())
	defer srv.Close()
	_, br := openStream(t, srv.URL)
	event(t, es, br, 1)
	// A tunnel: the same gateway, the event source does not switch; so a
	// second gateway in front of the echo upstream shares the registry.
	h2 := newHarness(t, func(d *Deps) {
		d.Upstream, d.UpstreamTimeout, d.Upgrades = up, time.Second, []string{"websocket"}
		d.Streams = h.g.Streams()
	})
	srv2 := httptest.NewServer(h2.g.Traffic())
	defer srv2.Close()
	conn, tbr := dialUpgrade(t, srv2.Listener.Addr().String(), goodToken)
	io.WriteString(conn, "ping\n")
	if got, err := tbr.ReadString('\n'); err != nil || got != "echo ping\n" {
		t.Fatalf("echo: %q %v", got, err)
	}
	if n := h.g.Streams().Len(); n != 2 {
		t.Fatalf("%d open, want 2", n)
	}

	h.g.Streams().Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.g.Streams().Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	for _, hh := range []*harness{h, h2} {
		l := hh.accessLines(t)
		if len(l) != 1 || l[0]["ended_by"] != "shutdown" {
			t.Errorf("access lines %v, want one ended by shutdown", l)
		}
	}
	if line, err := br.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Errorf("stream: read %q, %v; want its clean end", line, err)
	}
	if _, err := tbr.ReadByte(); err == nil {
		t.Error("the tunnel is still open")
	}
	<-es.gone // the upstream's stream was closed

	// Opened after Close: ended at once (a public path's stream too).
	resp, err := srv.Client().Get(srv.URL + "/public")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(b) != 0 {
		t.Errorf("a stream opened after Close: %q, %v; want an empty answer", b, err)
	}
	if err := h.g.Streams().Wait(ctx); err != nil {
		t.Errorf("Wait: %v", err)
	}
}
