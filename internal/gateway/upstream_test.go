package gateway

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestUpstreamErrors: a failed upstream exchange is answered like every
// other error (writeFault): 502 bad_gateway when the upstream cannot be
// reached, 504 gateway_timeout when it does not answer within
// UPSTREAM_TIMEOUT, JSON bodies exactly as docs/modes.md says, no
// challenge; the access line keeps the check's outcome.
func TestUpstreamErrors(t *testing.T) {
	// A port nothing listens on: taken, then released.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed, _ := url.Parse("http://" + l.Addr().String())
	l.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer slow.Close()
	defer close(release)
	slowURL, _ := url.Parse(slow.URL)

	for _, tc := range []struct {
		name     string
		upstream *url.URL
		status   int
		body     string
	}{
		{"unreachable", closed, 502, `{"error":"bad_gateway","error_description":"upstream unavailable"}` + "\n"},
		{"too slow", slowURL, 504, `{"error":"gateway_timeout","error_description":"upstream did not answer in time"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(d *Deps) { d.Upstream, d.UpstreamTimeout = tc.upstream, 200*time.Millisecond })
			w := h.serve(h.g.Traffic(), newRequest(http.MethodGet, "/api/items", "Authorization", bearer))
			if w.Code != tc.status || w.Body.String() != tc.body || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%d %q %v, want %d %q", w.Code, w.Body, w.Header(), tc.status, tc.body)
			}
			if v := w.Header().Get("WWW-Authenticate"); v != "" {
				t.Errorf("challenge %q on a %d", v, tc.status)
			}
			for _, l := range h.lines(t) {
				if l["msg"] == AccessLogMsg && (l["status"] != float64(tc.status) || l["outcome"] != "allow") {
					t.Errorf("access line %v", l)
				}
			}
		})
	}
}
