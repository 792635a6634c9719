package pathrule

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/authgate/authgate/internal/fault"
)

// One path for everything: the path OPA sees, the path PUBLIC_PATHS and
// INTROSPECT_PATHS match, the path Echo routes on and the path sent upstream are the same cleaned
// path, so that no encoding trick can make a request look like one path to
// the policy and another to the upstream. Rules (README, "Paths"):
//
//   - rejected with 400: an encoded slash (%2F), backslash (%5C) or percent
//     sign (%25, i.e. double encoding), a raw backslash, control characters
//     (also when encoded: %00, %0A...), a "." or ".." segment, whether written
//     plainly or encoded (%2e, %2E%2e...), a ";" anywhere, plain or encoded
//     (Tomcat and Spring read "/admin;x" as "/admin" and "..;" as ".."), bytes
//     that are not UTF-8, and a path not starting with "/";
//   - normalised: runs of "/" become one "/"; any other percent-encoding is
//     decoded, and the upstream gets the canonical encoding of the result.

// errBadPath is the answer to a path that could be read two ways.
func errBadPath(why string) error {
	return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "path not accepted: " + why}
}

// RawPath is the path of req as the client wrote it: the request target
// (RequestURI) up to its query, the scheme and authority of an
// absolute-form target dropped. Not the URL's EscapedPath, which re-encodes
// the decoded path when the raw one holds a character it does not expect
// ("{", "|", "^", '"', "`"), so that a %2F is read as "/"; nor RawPath, which
// net/url leaves empty when the default encoding gives the same string. A
// request built in-process (no RequestURI) falls back to those.
func RawPath(req *http.Request) string {
	t := req.RequestURI
	if t == "" {
		if req.URL.RawPath != "" {
			return req.URL.RawPath
		}
		return req.URL.EscapedPath()
	}
	if i := strings.IndexByte(t, '?'); i >= 0 {
		t = t[:i] // first: in "http://h?/a", "/a" is the query
	}
	if !strings.HasPrefix(t, "/") {
		// absolute-form, scheme://authority[/path]; anything else ("*",
		// authority-form) has no path and is refused by Clean.
		if _, rest, ok := strings.Cut(t, "://"); ok {
			t = ""
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				t = rest[i:]
			}
		}
	}
	return t
}

// Clean returns the cleaned, decoded form of raw, a path as the
// client wrote it (percent-encoded, no query). Errors are *fault.Error of
// kind BadRequest. Every mode reads paths through it, from the raw request
// target: the encoded characters that are refused are looked for in what
// the client sent, never in a re-encoding of it.
func Clean(raw string) (string, error) {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] != '%' {
			continue
		}
		switch strings.ToUpper(raw[i+1 : i+3]) {
		case "2F":
			return "", errBadPath("encoded slash")
		case "5C":
			return "", errBadPath("encoded backslash")
		case "25":
			return "", errBadPath("encoded percent sign")
		}
	}
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", errBadPath("malformed percent-encoding")
	}
	if !strings.HasPrefix(p, "/") {
		return "", errBadPath("must start with /")
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f || c == '\\':
			return "", errBadPath("control character or backslash")
		case c == ';':
			return "", errBadPath("semicolon (path parameter)")
		}
	}
	if !utf8.ValidString(p) {
		return "", errBadPath("not UTF-8")
	}
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p, nil // the common case: nothing to clean
	}
	var b strings.Builder
	b.Grow(len(p))
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" {
			continue
		}
		if seg == "." || seg == ".." {
			return "", errBadPath("dot segment")
		}
		b.WriteByte('/')
		b.WriteString(seg)
	}
	if b.Len() == 0 || strings.HasSuffix(p, "/") {
		b.WriteByte('/')
	}
	return b.String(), nil
}
