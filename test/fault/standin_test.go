// Package fault_test injects faults into authgate's upstreams and asserts
// what the client sees: the status, the error code, Retry-After, and above
// all that no fault ever turns into a 200. OPA is the real binary wherever
// the fault does not need a stand-in; authgate runs in-process (app.Run).
package fault_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/opatest"
	"github.com/authgate/authgate/internal/stacktest"
)

// standIn is an httptest server whose behaviour a test switches at will,
// counting the requests it receives (but not OPA health checks).
type standIn struct {
	srv     *httptest.Server
	calls   atomic.Int64
	handler atomic.Pointer[http.HandlerFunc]
}

func newStandIn(t *testing.T, h http.HandlerFunc) *standIn {
	t.Helper()
	s := &standIn{}
	s.set(h)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return // 200 {}: only decisions are faulty
		}
		s.calls.Add(1)
		(*s.handler.Load())(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) set(h http.HandlerFunc) { s.handler.Store(&h) }

// introspection answers like an RFC 7662 server: tokens starting with
// "good" are active with scope read_sayhello, others inactive.
func introspection(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !strings.HasPrefix(r.PostFormValue("token"), "good") {
		w.Write([]byte(`{"active":false}`))
		return
	}
	json.NewEncoder(w).Encode(map[string]any{
		"active": true, "scope": "read_sayhello", "client_id": "demo", "sub": "demo",
		"exp": time.Now().Add(time.Hour).Unix(),
	})
}

// status answers with a status and a body.
func status(code int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write([]byte(body))
	}
}

// slow answers correctly, but only after d or when the client goes away.
func slow(d time.Duration, then http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			then(w, r)
		case <-r.Context().Done():
		}
	}
}

// resetMidBody promises a 200 with a body, sends part of it and resets the
// connection (RST, not FIN).
func resetMidBody(w http.ResponseWriter, r *http.Request) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"active\":true,\"sco")
	buf.Flush()
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
}

// refusedURL is an http URL on a loopback port nobody listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// env is authgate's configuration for the given upstream URLs, with short
// timeouts and a breaker that stays closed unless a test says otherwise.
func env(idpURL, opaURL string, extra ...string) map[string]string {
	e := map[string]string{
		"OKTA_ISSUER":           idpURL + "/oauth2/default",
		"OKTA_INTROSPECT_URL":   idpURL + "/oauth2/default/v1/introspect",
		"OKTA_CLIENT_ID":        stacktest.GatewayClient,
		"OKTA_CLIENT_SECRET":    stacktest.GatewaySecret,
		"OKTA_TIMEOUT":          "300ms",
		"OKTA_BREAKER_FAILURES": "1000",
		"OPA_AUTHZ_URL":         opaURL + stacktest.DecisionPath,
		"OPA_TIMEOUT":           "300ms",
		"OPA_BREAKER_FAILURES":  "1000",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		e[extra[i]] = extra[i+1]
	}
	return e
}

var tokenSeq atomic.Int64

// freshToken is a token no cache has seen; good ones are active at the stand-in.
func freshToken(good bool) string {
	p := "bad"
	if good {
		p = "good"
	}
	return p + "-" + strconv.FormatInt(tokenSeq.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// want describes the answer a client must get.
type want struct {
	status int
	code   string
	// retryAfter: "" means the header must be absent, "*" any positive
	// number of seconds, otherwise "lo-hi" inclusive bounds.
	retryAfter string
}

func check(t *testing.T, r stacktest.Response, w want) {
	t.Helper()
	if r.Status == http.StatusOK && w.status != http.StatusOK {
		t.Fatalf("ALLOWED under a fault: 200 %s", r.Body)
	}
	if r.Status != w.status {
		t.Fatalf("status %d, want %d (body %s)", r.Status, w.status, r.Body)
	}
	if w.code != "" {
		if got := r.ErrorCode(t); got != w.code {
			t.Errorf("error %q, want %q", got, w.code)
		}
	}
	ra := r.Header.Get("Retry-After")
	switch w.retryAfter {
	case "":
		if ra != "" {
			t.Errorf("Retry-After %q, want none", ra)
		}
	case "*":
		if n, err := strconv.Atoi(ra); err != nil || n < 1 {
			t.Errorf("Retry-After %q, want a positive number of seconds", ra)
		}
	default:
		lo, hi, _ := strings.Cut(w.retryAfter, "-")
		l, _ := strconv.Atoi(lo)
		h, _ := strconv.Atoi(hi)
		if n, err := strconv.Atoi(ra); err != nil || n < l || n > h {
			t.Errorf("Retry-After %q, want %d to %d seconds", ra, l, h)
		}
	}
}

func startOPA(t *testing.T) *opatest.Server { return stacktest.StartOPA(t) }
