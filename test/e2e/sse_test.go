package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/authgate/authgate/internal/opatest"
	"github.com/authgate/authgate/internal/stacktest"
)

// sseUpstream is an MCP-style server that streams Server-Sent Events: it
// writes an event, flushes, and writes the next only when the test has
// acknowledged the previous one, so that an event that arrives at all has
// come through unbuffered. Then it holds the stream open until the client
// (authgate) goes away, and says so on gone.
type sseUpstream struct {
	srv  *httptest.Server
	n    int
	sent chan time.Time // when each event began to be written
	ack  chan struct{}
	gone chan struct{}
}

func startSSEUpstream(t *testing.T, n int) *sseUpstream {
	u := &sseUpstream{n: n, sent: make(chan time.Time, n), ack: make(chan struct{}), gone: make(chan struct{}, 1)}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { u.gone <- struct{}{} }()
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(200)
		rc.Flush()
		for k := range u.n {
			start := time.Now()
			fmt.Fprintf(w, "id: %d\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"n\":%d}}\n\n", k, k)
			if err := rc.Flush(); err != nil {
				return
			}
			u.sent <- start
			select {
			case <-u.ack:
			case <-r.Context().Done():
				return
			}
		}
		<-r.Context().Done()
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// readEvent reads one event (up to its blank line).
func readEvent(br *bufio.Reader) (string, error) {
	var ev strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return ev.String(), err
		}
		if line == "\n" {
			return ev.String(), nil
		}
		ev.WriteString(line)
	}
}

// TestSSEThroughProxy: text/event-stream is relayed event by event, each
// flushed as written, and the stream ends when the token's exp passes.
func TestSSEThroughProxy(t *testing.T) {
	const events = 5
	i := stacktest.StartIDP(t, 0)
	up := startSSEUpstream(t, events)
	gw := stacktest.StartGateway(t, resourceEnv(i, startModesOPA(t), up.srv.URL))

	// The token expires about 2 s from now: exp is whole seconds.
	issued := time.Now()
	tok, err := i.IssueFor(stacktest.DemoClient, mcpResource, []string{"api_read"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Unix(issued.Add(2*time.Second).Unix(), 0) // at most the token's exp

	req, _ := http.NewRequest("GET", gw.Traffic+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	client := &http.Client{Timeout: 20 * time.Second} // a bound, should the stream never end
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	var latencies []time.Duration
	for k := range events {
		ev, err := readEvent(br)
		got := time.Now()
		if err != nil {
			t.Fatalf("event %d: %v (read %q)", k, err, ev)
		}
		sent := <-up.sent
		if !strings.HasPrefix(ev, fmt.Sprintf("id: %d\n", k)) || !strings.Contains(ev, fmt.Sprintf(`"params":{"n":%d}`, k)) {
			t.Fatalf("event %d: %q", k, ev)
		}
		latencies = append(latencies, got.Sub(sent))
		up.ack <- struct{}{} // only now does the upstream write the next
	}
	t.Logf("per-event latency, upstream write → client read, through authgate: %v", latencies)

	// No more events: the stream stays open until the token's exp, then
	// ends cleanly (a complete chunked body, not a reset connection).
	ev, err := readEvent(br)
	ended := time.Now()
	if !errors.Is(err, io.EOF) || ev != "" {
		t.Fatalf("after the last event: %q, %v; want a clean end of stream", ev, err)
	}
	if ended.Before(exp) {
		t.Errorf("stream ended at %s, before the token's exp %s", ended.Format(time.StampMilli), exp.Format(time.StampMilli))
	}
	select {
	case <-up.gone: // authgate closed its side of the upstream stream
	case <-time.After(10 * time.Second):
		t.Error("the upstream stream was not closed when the client's ended")
	}
	gw.AssertNoLeaks(t, tok)
}

// liveUpstream is an upstream with the two kinds of connection that outlive
// their request: a Server-Sent Events stream on /api/events (an event per
// "next", held open until authgate goes away) and a WebSocket echo on
// /api/ws (golang.org/x/net/websocket, the real handshake and framing).
type liveUpstream struct {
	srv    *httptest.Server
	next   chan int
	sseEnd chan struct{} // an event stream was closed
	wsEnd  chan struct{} // a WebSocket was closed
}

func startLiveUpstream(t *testing.T) *liveUpstream {
	t.Helper()
	u := &liveUpstream{next: make(chan int), sseEnd: make(chan struct{}, 8), wsEnd: make(chan struct{}, 8)}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/events", func(w http.ResponseWriter, r *http.Request) {
		defer func() { u.sseEnd <- struct{}{} }()
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		rc.Flush()
		for {
			select {
			case k := <-u.next:
				fmt.Fprintf(w, "id: %d\ndata: {\"n\":%d}\n\n", k, k)
				rc.Flush()
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.Handle("/api/ws", websocket.Handler(func(ws *websocket.Conn) {
		defer func() { u.wsEnd <- struct{}{} }()
		for {
			var msg string
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				return
			}
			if err := websocket.Message.Send(ws, "echo "+msg); err != nil {
				return
			}
		}
	}))
	u.srv = httptest.NewServer(mux)
	t.Cleanup(u.srv.Close)
	return u
}

// liveEnv is authgate in proxy mode in front of u, with the gateway policy
// of o (GET /api/... needs api_read) and POST /revoke.
func liveEnv(i *stacktest.IDP, o *opatest.Server, u *liveUpstream) map[string]string {
	env := stacktest.StackEnv(i, o)
	env["OPA_AUTHZ_URL"] = o.URL + gatewayDecision
	env["UPSTREAM_URL"] = u.srv.URL
	env["ADMIN_API_TOKEN"] = adminToken
	return env
}

// sseClient is an event stream read through authgate.
type sseClient struct {
	resp *http.Response
	br   *bufio.Reader
	u    *liveUpstream
}

// openSSE opens /api/events on the gateway at base with token.
func openSSE(t *testing.T, base, token string, u *liveUpstream) *sseClient {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("event stream: %d %s", resp.StatusCode, b)
	}
	return &sseClient{resp: resp, br: bufio.NewReader(resp.Body), u: u}
}

// event has the upstream send event k and reads it through authgate.
func (c *sseClient) event(t *testing.T, k int) {
	t.Helper()
	c.u.next <- k
	ev, err := readEvent(c.br)
	if err != nil || !strings.HasPrefix(ev, fmt.Sprintf("id: %d\n", k)) {
		t.Fatalf("event %d: %q, %v", k, ev, err)
	}
}

// ended waits for the stream's clean end (a complete chunked body, not a
// reset), in the background: it delivers the read's error.
func (c *sseClient) ended() <-chan error {
	ch := make(chan error, 1)
	go func() {
		ev, err := readEvent(c.br)
		if err == nil || ev != "" {
			err = fmt.Errorf("read %q, %v: not the end of the stream", ev, err)
		} else if errors.Is(err, io.EOF) {
			err = nil
		}
		ch <- err
	}()
	return ch
}

// openWS opens a WebSocket to /api/ws through the gateway at base with token.
func openWS(t *testing.T, base, token string) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig(strings.Replace(base, "http://", "ws://", 1)+"/api/ws", base)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header = http.Header{"Authorization": {"Bearer " + token}}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("WebSocket through authgate: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// echo sends msg on ws and reads the upstream's echo.
func echo(t *testing.T, ws *websocket.Conn, msg string) {
	t.Helper()
	ws.SetDeadline(time.Now().Add(10 * time.Second))
	if err := websocket.Message.Send(ws, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil || got != "echo "+msg {
		t.Fatalf("echo: %q, %v", got, err)
	}
}

// wsEnded waits, in the background, for ws to be closed under the client:
// it delivers nil then, an error if a message came instead.
func wsEnded(ws *websocket.Conn) <-chan error {
	ch := make(chan error, 1)
	go func() {
		ws.SetDeadline(time.Now().Add(30 * time.Second))
		var msg string
		err := websocket.Message.Receive(ws, &msg)
		switch {
		case err == nil:
			ch <- fmt.Errorf("got %q: the WebSocket is still open", msg)
		case errors.Is(err, io.EOF) || !isTimeout(err):
			ch <- nil
		default:
			ch <- err
		}
	}()
	return ch
}

// openLive opens an event stream and a WebSocket through the gateway at
// base with token, sees each carry one message (event 1, an echo), and
// returns what delivers when each ends (ended, wsEnded).
func openLive(t *testing.T, base, token string, u *liveUpstream) (sseDone, wsDone <-chan error) {
	t.Helper()
	sse := openSSE(t, base, token, u)
	sse.event(t, 1)
	ws := openWS(t, base, token)
	echo(t, ws, "ping")
	return sse.ended(), wsEnded(ws)
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// within waits for ch at most d, and says how long it took.
func within(t *testing.T, what string, ch <-chan error, start time.Time, d time.Duration) time.Duration {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(d - time.Since(start)):
		t.Fatalf("%s: not within %s", what, d)
	}
	took := time.Since(start)
	t.Logf("%s after %s", what, took)
	return took
}

// endedBy waits for the access lines of gw's stream and tunnel, and checks
// that authgate ended both for reason.
func endedBy(t *testing.T, gw *stacktest.Gateway, reason string) {
	t.Helper()
	for _, route := range []string{"stream", "tunnel"} {
		stacktest.Eventually(t, 10*time.Second, "the "+route+"'s access line, ended by "+reason, func() bool {
			for _, l := range gw.Logs.Lines("request") {
				_, tunnel := l["tunnel_duration"]
				if l["ended_by"] == reason && tunnel == (route == "tunnel") {
					return true
				}
			}
			return false
		})
	}
}

// POST /revoke ends the token's open event stream and WebSocket within a
// second, each with its access line; the token's other requests get 401.
func TestRevokeEndsStreamAndTunnel(t *testing.T) {
	i := stacktest.StartIDP(t, 0)
	u := startLiveUpstream(t)
	gw := stacktest.StartGateway(t, liveEnv(i, startModesOPA(t), u))
	tok := i.Token(t, "api_read")
	other := i.Token(t, "api_read")

	sseDone, wsDone := openLive(t, gw.Traffic, tok, u)
	otherWS := openWS(t, gw.Traffic, other) // another token's: stays
	echo(t, otherWS, "ping")

	start := time.Now()
	if got := revoke(t, gw, adminToken, tok); got.Status != 200 {
		t.Fatalf("revoke: %d %s", got.Status, got.Body)
	}
	within(t, "event stream ended", sseDone, start, time.Second)
	within(t, "WebSocket closed", wsDone, start, time.Second)
	<-u.sseEnd // authgate closed its side of the upstream's stream
	<-u.wsEnd
	endedBy(t, gw, "revoked")
	echo(t, otherWS, "still there")
	gw.AssertNoLeaks(t, tok)
}

// Shutdown ends the open event stream and WebSocket at once: Run returns
// nil well before SHUTDOWN_TIMEOUT, and both have their access lines.
func TestShutdownEndsStreamAndTunnel(t *testing.T) {
	i := stacktest.StartIDP(t, 0)
	u := startLiveUpstream(t)
	env := liveEnv(i, startModesOPA(t), u)
	env["SHUTDOWN_TIMEOUT"] = "20s"
	gw := stacktest.StartGateway(t, env)
	tok := i.Token(t, "api_read")
	sseDone, wsDone := openLive(t, gw.Traffic, tok, u)

	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- gw.Stop() }()
	within(t, "Run returned", stopped, start, 5*time.Second)
	within(t, "event stream ended", sseDone, start, 5*time.Second)
	within(t, "WebSocket closed", wsDone, start, 5*time.Second)
	endedBy(t, gw, "shutdown")
	if l := gw.Logs.Lines("stopped"); len(l) != 1 {
		t.Errorf("no \"stopped\" line:\n%s", gw.Logs)
	}
}

// A token the IdP revoked (authgate not told) ends the open event stream
// and WebSocket when its cache entry ends (CACHE_TTL): looked up again, it
// is inactive.
func TestIdPInactiveEndsStreamAndTunnel(t *testing.T) {
	i := stacktest.StartIDP(t, 0)
	u := startLiveUpstream(t)
	env := liveEnv(i, startModesOPA(t), u)
	env["CACHE_TTL"] = "500ms"
	gw := stacktest.StartGateway(t, env)
	tok := i.Token(t, "api_read")
	sseDone, wsDone := openLive(t, gw.Traffic, tok, u)

	start := time.Now()
	i.Revoke(tok)
	within(t, "event stream ended", sseDone, start, 10*time.Second)
	within(t, "WebSocket closed", wsDone, start, 10*time.Second)
	endedBy(t, gw, "inactive")
}
