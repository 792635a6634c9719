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
