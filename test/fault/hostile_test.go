package fault_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
)

// exactIdP is an introspection stand-in for which exactly one token is
// active; it records every token it is asked about.
type exactIdP struct {
	active string
	mu     sync.Mutex
	seen   []string
}

func (e *exactIdP) handler(w http.ResponseWriter, r *http.Request) {
	tok := r.PostFormValue("token")
	e.mu.Lock()
	e.seen = append(e.seen, tok)
	e.mu.Unlock()
	if tok != e.active {
		w.Write([]byte(`{"active":false}`))
		return
	}
	introspection(w, withToken(r, "good"))
}

func (e *exactIdP) asked() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen...)
}

// withToken gives the stand-in's introspection a token it treats as active.
func withToken(r *http.Request, tok string) *http.Request {
	r.PostForm.Set("token", tok)
	return r
}

// rawRequest sends req as is on a new connection and returns the status
// line's code ("" if the server closed the connection without answering).
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if f := strings.Fields(line); len(f) >= 2 {
		return f[1]
	}
	return ""
}

// TestTokenVariantsNeverShareEntries: once a token is cached, a token that
// differs by one byte, by case or by padding is introspected on its own
// (and found inactive), never answered from the other's entry.
func TestTokenVariantsNeverShareEntries(t *testing.T) {
	o := startOPA(t)
	const tok = "good-Tk9xQ2VhbGx5LXJhbmRvbQ"
	idp := &exactIdP{active: tok}
	s := newStandIn(t, idp.handler)
	gw := stacktest.StartGateway(t, env(s.srv.URL, o.URL))
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 200})
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 200}) // now cached

	variants := map[string]string{
		"last byte changed":  tok[:len(tok)-1] + "R",
		"first byte changed": "h" + tok[1:],
		"byte appended":      tok + "A",
		"byte removed":       tok[:len(tok)-1],
		"one letter's case":  strings.Replace(tok, "T", "t", 1),
		"all upper case":     strings.ToUpper(tok),
		"all lower case":     strings.ToLower(tok),
		"padding appended":   tok + "=",
		"padding twice":      tok + "==",
	}
	for name, v := range variants {
		t.Run(name, func(t *testing.T) {
			before := len(idp.asked())
			check(t, stacktest.Get(t, gw.Traffic+"/sayhello", v), want{status: 401, code: "invalid_token"})
			asked := idp.asked()
			if len(asked) != before+1 || asked[len(asked)-1] != v {
				t.Errorf("the variant was not introspected as itself: %q", asked[before:])
			}
		})
	}
	// Whitespace: trailing spaces and tabs are not part of a header's value
	// (RFC 9110 section 5.5), so "tok " is tok itself; any other trailing
	// byte makes a value that cannot be a token and is refused unasked.
	t.Run("trailing whitespace", func(t *testing.T) {
		before := len(idp.asked())
		for _, suffix := range []string{"\v", "\f", "\u00a0", "\u3000", "%20", "\\t"} {
			code := rawRequest(t, gw.TrafficAddr(), "GET /sayhello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tok+suffix+"\r\nConnection: close\r\n\r\n")
			if code != "401" && code != "400" {
				t.Errorf("suffix %q: status %q, want 401 or 400", suffix, code)
			}
		}
		for _, suffix := range []string{" ", "\t", "  \t "} {
			code := rawRequest(t, gw.TrafficAddr(), "GET /sayhello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tok+suffix+"\r\nConnection: close\r\n\r\n")
			if code != "200" {
				t.Errorf("suffix %q (optional whitespace): status %q, want 200", suffix, code)
			}
		}
		if asked := idp.asked(); len(asked) != before {
			t.Errorf("whitespace variants reached the server: %q", asked[before:])
		}
	})
}

// TestHostileRequests: oversized headers, over-long tokens and slow
// clients get a clear 4xx or are cut off, without reaching the IdP.
func TestHostileRequests(t *testing.T) {
	o := startOPA(t)
	s := newStandIn(t, introspection)
	gw := stacktest.StartGateway(t, env(s.srv.URL, o.URL, "READ_HEADER_TIMEOUT", "500ms"))
	addr := gw.TrafficAddr()

	t.Run("headers over MaxHeaderBytes: 431", func(t *testing.T) {
		big := strings.Repeat("a", 100<<10)
		if code := rawRequest(t, addr, "GET /sayhello HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n"); code != "431" {
			t.Errorf("status %q, want 431", code)
		}
		if code := rawRequest(t, addr, "GET /sayhello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+big+"\r\n\r\n"); code != "431" {
			t.Errorf("huge token: status %q, want 431", code)
		}
	})
	t.Run("token over 8 KiB: 401 unasked", func(t *testing.T) {
		r := stacktest.Get(t, gw.Traffic+"/sayhello", "good"+strings.Repeat("a", 9<<10))
		check(t, r, want{status: 401, code: "invalid_token"})
		if !strings.Contains(r.Body, "token too long") {
			t.Errorf("body %s", r.Body)
		}
	})
	t.Run("many headers: 431", func(t *testing.T) {
		var b strings.Builder
		for i := range 5000 {
			b.WriteString("X-H")
			b.WriteString(strings.Repeat("h", i%20))
			b.WriteString(": v\r\n")
		}
		if code := rawRequest(t, addr, "GET /sayhello HTTP/1.1\r\nHost: x\r\n"+b.String()+"\r\n"); code != "431" {
			t.Errorf("status %q, want 431", code)
		}
	})
	t.Run("body never read", func(t *testing.T) {
		// authgate reads no request body: a huge declared body that never
		// comes does not hold up the answer.
		start := time.Now()
		code := rawRequest(t, addr, "GET /sayhello HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\npartial")
		if code != "401" || time.Since(start) > time.Second {
			t.Errorf("status %q after %s, want 401 at once", code, time.Since(start))
		}
	})
	t.Run("slowloris: cut at READ_HEADER_TIMEOUT", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		io.WriteString(conn, "GET /sayhello HTTP/1.1\r\nHost: x\r\n")
		var werr error
		for time.Since(start) < 5*time.Second {
			if _, werr = io.WriteString(conn, "X-Slow: 1\r\n"); werr != nil {
				break
			}
			conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			var buf [1]byte
			_, rerr := conn.Read(buf[:])
			if rerr != nil && !isTimeout(rerr) {
				werr = rerr
				break
			}
		}
		elapsed := time.Since(start)
		if werr == nil {
			t.Fatalf("a client dribbling headers was still connected after %s", elapsed)
		}
		if elapsed < 400*time.Millisecond || elapsed > 3*time.Second {
			t.Errorf("cut after %s, want about READ_HEADER_TIMEOUT (500ms)", elapsed)
		}
	})
	if n := s.calls.Load(); n != 0 {
		t.Errorf("%d introspections for hostile requests, want 0", n)
	}
}

// isTimeout: our own read deadline passed (the server is still there).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestHostileIdentity: an authorization server's identity values go into
// headers and logs. Control characters and members of the wrong type are
// refused (401 invalid_token), never sent or guessed at, and not logged;
// scopes split on ASCII spaces only.
func TestHostileIdentity(t *testing.T) {
	o := startOPA(t)
	claims := map[string]string{ // token -> the answer's members beyond active and exp
		"good-crlf":   `"sub":"demo\r\nX-Auth-Scopes: smuggled","client_id":"demo","scope":"read_sayhello"`,
		"good-nul":    `"sub":"demo\u0000smuggled","client_id":"demo","scope":"read_sayhello"`,
		"good-number": `"sub":42,"client_id":"demo","scope":"read_sayhello"`,
		"good-object": `"sub":{"smuggled":true},"client_id":"demo","scope":"read_sayhello"`,
		"good-cid":    `"client_id":"demo\nsmuggled","scope":"read_sayhello"`,
		"good-nbsp":   `"sub":"demo","client_id":"demo","scope":"smuggled\u00a0read_sayhello"`,
		"good-plain":  `"sub":"demo","client_id":"demo","scope":"read_sayhello"`,
	}
	s := newStandIn(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		c, ok := claims[r.PostFormValue("token")]
		if !ok {
			w.Write([]byte(`{"active":false}`))
			return
		}
		fmt.Fprintf(w, `{"active":true,"exp":%d,%s}`, time.Now().Add(time.Hour).Unix(), c)
	})
	gw := stacktest.StartGateway(t, env(s.srv.URL, o.URL))
	for _, tok := range []string{"good-crlf", "good-nul", "good-number", "good-object", "good-cid"} {
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", tok), want{status: 401, code: "invalid_token"})
		req, _ := http.NewRequest("GET", gw.Admin+"/verify/sayhello", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("X-Auth-Subject") != "" {
			t.Errorf("%s /verify: %d %v", tok, resp.StatusCode, resp.Header)
		}
	}
	// "smuggled\u00a0read_sayhello" is one scope, not read_sayhello.
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", "good-nbsp"), want{status: 403, code: "access_denied"})
	check(t, stacktest.Get(t, gw.Traffic+"/sayhello", "good-plain"), want{status: 200})
	if logs := gw.Logs.String(); strings.Contains(logs, "smuggled") {
		t.Errorf("a refused identity value was logged:\n%s", logs)
	}
}
