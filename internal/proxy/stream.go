package proxy

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Streamed answers in proxy mode: Server-Sent Events (text/event-stream,
// MCP's Streamable HTTP transport). httputil.ReverseProxy already flushes
// such an answer after every write (its flushInterval is -1 for
// text/event-stream), so each event reaches the client as the upstream
// writes it. Two things it does not do:
//
//   - the traffic server's WriteTimeout runs from the end of the request
//     headers and would cut a long-lived stream: a stream's write deadline
//     is instead set anew before each write (StreamWriteTimeout), so a
//     stream lives as long as it keeps flowing, and a client that stops
//     reading is still dropped;
//   - a stream would outlive the token that opened it: it is watched
//     (watch.go), and ends at the token's exp, its revocation, a re-check
//     that finds it inactive, or shutdown (the upstream stream is closed,
//     and the client's ends cleanly: it reconnects, and a new check
//     decides).

// Call is one proxied request's state, kept by the caller in its pooled
// per-request record: the request's writer and token, and the stream or
// tunnel it opened. The proxy's shared hooks find it in the request's
// context (CallKey): ReverseProxy shows no hook both the response and
// the request's writer and token.
type Call struct {
	w      http.ResponseWriter
	grant  Granted // the request's token (nil on a public path), for a stream's watch
	stream *stream // the answer's stream, when it is one
	tunnel *tunnel // the upgrade's tunnel, once proxied
}

// CallKey is the context key under which a request's context gives its
// *Call: the caller's context answers it (Value), with no allocation of
// the proxy's.
type CallKey struct{}

// Serve proxies req, writing to w, for the token gr grants (nil: none).
// req's context must give c under CallKey.
func (c *Call) Serve(p *Proxy, w http.ResponseWriter, req *http.Request, gr Granted) {
	c.w, c.grant = w, gr
	p.rp.ServeHTTP(w, req)
}

// Reset drops the request's references.
func (c *Call) Reset() { *c = Call{} }

// modifyResponse is the proxy's ModifyResponse: it makes a
// text/event-stream body a stream of the request's Call. An upgrade the
// upstream answered with a stream rather than a 101 is left as it is: its
// tunnel's watch already covers the whole exchange (ending it cancels the
// request), and a second watch would be one the access log never releases.
func (p *Proxy) modifyResponse(res *http.Response) error {
	if !isEventStream(res.Header) {
		return nil
	}
	c, _ := res.Request.Context().Value(CallKey{}).(*Call)
	if c == nil {
		return errors.New("proxy: a request without its Call")
	}
	if c.tunnel != nil {
		return nil
	}
	c.stream = p.newStream(c.w, res.Body, c.grant)
	res.Body = c.stream
	return nil
}

// watched is the watch of the call's stream or tunnel; nil when it opened
// neither.
func (c *Call) watched() *watch {
	switch {
	case c.tunnel != nil:
		return c.tunnel.watch
	case c.stream != nil:
		return c.stream.watch
	}
	return nil
}

// EndedBy says why authgate ended the call's stream or tunnel, as the
// access log's ended_by does: exp, revoked, inactive, unavailable,
// shutdown; "" when it ended by itself or there was none.
func (c *Call) EndedBy() string {
	if w := c.watched(); w != nil {
		return w.endedBy()
	}
	return ""
}

// Logged is called once the request's access line is written: a shutdown
// waits for it (Streams.Wait).
func (c *Call) Logged() {
	if w := c.watched(); w != nil {
		w.logged()
	}
}

// isEventStream reports whether h's Content-Type is text/event-stream,
// parameters aside, without mime.ParseMediaType's allocations: it runs on
// every proxied answer.
func isEventStream(h http.Header) bool {
	ct := h.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

// stream is an upstream's text/event-stream body as the proxy reads it.
type stream struct {
	body         io.ReadCloser
	rc           *http.ResponseController
	writeTimeout time.Duration // 0: no deadline at all
	ended        atomic.Bool   // authgate ended it (watch.go): body was closed on purpose
	watch        *watch
}

// newStream wraps body, whose answer w is about to write, for the token gr
// grants, and starts watching it.
func (p *Proxy) newStream(w http.ResponseWriter, body io.ReadCloser, gr Granted) *stream {
	s := &stream{body: body, rc: http.NewResponseController(w), writeTimeout: p.cfg.StreamWriteTimeout}
	s.extend() // for the headers, written next
	s.watch = p.watch(gr, s.end)
	return s
}

// end ends the stream: closing the body unblocks the proxy's read.
func (s *stream) end() {
	s.ended.Store(true)
	s.body.Close()
}

// Read reads the upstream's next bytes and gives the write that follows its
// own deadline. Once authgate has ended the stream, the closed body reads
// as the end of the stream, so that the client's answer ends cleanly.
func (s *stream) Read(p []byte) (int, error) {
	n, err := s.body.Read(p)
	if err != nil && s.ended.Load() {
		return n, io.EOF
	}
	if n > 0 {
		s.extend()
	}
	return n, err
}

// extend sets the write deadline for the next write. An error means the
// writer cannot (a wrapper without Unwrap): the server's own timeout then
// applies, as before.
func (s *stream) extend() {
	var d time.Time
	if s.writeTimeout > 0 {
		d = time.Now().Add(s.writeTimeout) // a socket deadline: real time
	}
	s.rc.SetWriteDeadline(d) //nolint:errcheck // see above
}

// Close stops watching the stream and closes the upstream body.
func (s *stream) Close() error {
	s.watch.closed()
	return s.body.Close()
}
