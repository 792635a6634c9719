package gateway

import (
	"bufio"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/pathrule"
)

// FuzzVerifyPath asks /verify about whatever path, Envoy style
// (/verify/{path}) and Traefik style (X-Forwarded-Uri), through the server's
// own request parser. A path that is decided was written without an encoded
// slash, backslash or percent sign, is clean, and cleans to itself once
// re-encoded: the proxy's upstream and the policy read the same path.
func FuzzVerifyPath(f *testing.F) {
	for _, s := range []string{"a/b", "public-api%2Fx{", "a%2fb|", "a%5Cb^", "a%252Fb`", `a%2F"`, "%2e%2e/a", "a//b/", "%61", "a?q={", "a;b"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	g := &Gateway{}
	f.Fuzz(func(t *testing.T, s string, envoy bool) {
		var wire string
		if envoy {
			wire = "GET /verify/" + s + " HTTP/1.1\r\nHost: authgate\r\n\r\n"
		} else {
			wire = "GET /verify HTTP/1.1\r\nHost: authgate\r\nX-Forwarded-Uri: /" + s + "\r\n\r\n"
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire)))
		if err != nil {
			return // the server would not have read it either
		}
		if !envoy && len(req.Header["X-Forwarded-Uri"]) != 1 {
			return
		}
		var in authz.Input
		if g.describeForwarded(req, &in, &authn.Request{}) != nil {
			return
		}
		raw := pathrule.RawPath(req)
		if !envoy {
			raw, _, _ = strings.Cut(strings.TrimSpace(req.Header.Get("X-Forwarded-Uri")), "?")
		}
		for _, enc := range []string{"%2f", "%5c", "%25"} {
			if strings.Contains(strings.ToLower(raw), enc) {
				t.Fatalf("%q (envoy %v) decided as %q although it holds %s", s, envoy, in.Path, enc)
			}
		}
		p := in.Path
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.ContainsAny(p, "\\\x00;") || !utf8.ValidString(p) {
			t.Fatalf("%q decided as %q", s, p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q decided as %q, which has a dot segment", s, p)
			}
		}
		if q, err := pathrule.Clean((&url.URL{Path: p}).EscapedPath()); err != nil || q != p {
			t.Fatalf("%q: decided path %q cleans again to %q (%v)", s, p, q, err)
		}
	})
}
