package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// eventSource is an upstream that streams text/event-stream: event k is
// written and flushed when the test sends on next, and the stream stays
// open until the client goes; gone then reports it.
type eventSource struct {
	url  *url.URL
	next chan int
	gone chan struct{}
}

func startEventSource(t *testing.T) *eventSource {
	t.Helper()
	es := &eventSource{next: make(chan int), gone: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { es.gone <- struct{}{} }()
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.WriteHeader(200)
		rc := http.NewResponseController(w)
		rc.Flush()
		for {
			select {
			case k := <-es.next:
				fmt.Fprintf(w, "data: %d\n\n", k)
				rc.Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	es.url, _ = url.Parse(srv.URL)
	return es
}

// streamGateway is a proxy-mode harness in front of es, served by a real
// http.Server with the given write timeout; goodToken expires at exp.
func streamGateway(t *testing.T, es *eventSource, writeTimeout time.Duration, exp int64, opts ...func(*Deps)) (*harness, string) {
	t.Helper()
	proxy := func(d *Deps) { d.Upstream, d.UpstreamTimeout = es.url, time.Second }
	h := newHarness(t, append([]func(*Deps){proxy}, opts...)...)
	h.good.Exp = exp
	if exp != 0 {
		h.good.CachedUntil = time.Unix(exp, 0).UnixNano() // the cache entry ends at exp
	}
	srv := httptest.NewUnstartedServer(h.g.Traffic())
	srv.Config.WriteTimeout = writeTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return h, srv.URL
}

// openStream GETs the stream with the good token.
func openStream(t *testing.T, base string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/events", nil)
	req.Header.Set("Authorization", bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return resp, bufio.NewReader(resp.Body)
}

// event asks es for event k and reads it through the gateway.
func event(t *testing.T, es *eventSource, br *bufio.Reader, k int) {
	t.Helper()
	es.next <- k
	for _, want := range []string{fmt.Sprintf("data: %d\n", k), "\n"} {
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("event %d: read %q, %v; want %q", k, line, err, want)
		}
	}
}

// A stream lives longer than the server's write timeout: the deadline
// applies to each write of a stream, not to the whole answer.
func TestStreamOutlivesWriteTimeout(t *testing.T) {
	const writeTimeout = 150 * time.Millisecond
	for name, perWrite := range map[string]time.Duration{"no per-write bound": 0, "per-write bound": writeTimeout} {
		t.Run(name, func(t *testing.T) {
			es := startEventSource(t)
			_, base := streamGateway(t, es, writeTimeout, 0, func(d *Deps) { d.StreamWriteTimeout = perWrite })
			_, br := openStream(t, base)
			start := time.Now()
			for k := 0; time.Since(start) < 4*writeTimeout; k++ {
				event(t, es, br, k)
				// Let time pass, the thing under test: the server's write
				// deadline falls between two events.
				<-time.After(writeTimeout / 2)
			}
			event(t, es, br, 1000)
		})
	}
}

// The stream ends, cleanly, when the token's exp passes; the upstream
// stream is closed with it.
func TestStreamEndsAtExp(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	es := startEventSource(t)
	after := &fakeAfter{}
	h, base := streamGateway(t, es, time.Minute, now.Unix()+90, func(d *Deps) { d.AfterFunc = after.after })
	h.clock.Set(now)
	_, br := openStream(t, base)
	event(t, es, br, 1)
	event(t, es, br, 2)
	if d := after.duration(); d != 90*time.Second {
		t.Errorf("stream timer set for %s, want the 90s left to exp", d)
	}
	h.clock.Add(90 * time.Second)
	after.fire(t) // exp passes
	if line, err := br.ReadString('\n'); !errors.Is(err, io.EOF) || line != "" {
		t.Fatalf("after exp: read %q, %v; want a clean end of the stream", line, err)
	}
	<-es.gone // the upstream's stream was closed
	if l := h.waitLine(t, AccessLogMsg); l["ended_by"] != "exp" {
		t.Errorf("access line %v, want ended_by exp", l)
	}
	wantNoStreams(t, h.g)
}

// A token that has no exp is looked up again when its cache entry ends;
// a stream that ends by itself releases that timer.
func TestStreamWithoutExp(t *testing.T) {
	es := startEventSource(t)
	after := &fakeAfter{}
	h, base := streamGateway(t, es, time.Minute, 0, func(d *Deps) { d.AfterFunc = after.after })
	resp, br := openStream(t, base)
	event(t, es, br, 1)
	if want := time.Unix(0, h.good.CachedUntil).Sub(h.clock.Now()); after.duration() != want {
		t.Errorf("timer set for %s, want the %s left to the cache entry's end", after.duration(), want)
	}
	resp.Body.Close()
	<-es.gone
	h.waitLine(t, AccessLogMsg)
	if _, stops := after.state(); stops != 1 {
		t.Errorf("timer stopped %d times, want 1 (released)", stops)
	}
	wantNoStreams(t, h.g)
}

// wantNoStreams waits, for at most two seconds, until no stream or tunnel
// is registered: the last leaves the registry just after its access line
// is written (Call.Logged), so a test that has read that line can look a
// moment too early.
func wantNoStreams(t *testing.T, g *Gateway) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for n := g.Streams().Len(); n != 0; n = g.Streams().Len() {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams still registered", n)
		}
		time.Sleep(time.Millisecond) // between polls
	}
}
