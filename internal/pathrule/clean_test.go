package pathrule

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanPath(t *testing.T) {
	cases := []struct {
		uri, want string // want "" means rejected
	}{
		{"/sayhello", "/sayhello"},
		{"/", "/"},
		{"/a/b/", "/a/b/"},
		{"//a///b", "/a/b"},
		{"/a//", "/a/"},
		{"/.well-known/x", "/.well-known/x"},
		{"/a%20b", "/a b"},
		{"/%61dmin", "/admin"}, // an encoded unreserved character is the character
		{"/a;b", ""},
		{"/admin;jsessionid=x", ""},
		{"/admin%3Bx", ""},
		{"/a%2Fb{", ""}, // RawPath that EscapedPath would not use
		{"/a%5cb{", ""},
		{"/a%2e%2e{/admin", "/a..{/admin"},
		{"/a%ff", ""},
		{"/caf%C3%A9", "/café"},
		{"/a/../admin", ""},
		{"/a/./b", ""},
		{"/..", ""},
		{"/a/%2e%2e/admin", ""},
		{"/a/%2E%2e/admin", ""},
		{"/a/.%2e/admin", ""},
		{"/a/%2e/b", ""},
		{"/public/..;/admin", ""},
		{"/public/.;x/admin", ""},
		{"/a%2Fb", ""},
		{"/a%2fb", ""},
		{"/a/%2e%2e%2fadmin", ""},
		{"/a%5Cb", ""},
		{"/a%5c..%5cadmin", ""},
		{"/a\\b", ""},
		{"/a%252e%252e/admin", ""},
		{"/a%25", ""},
		{"/a%00b", ""},
		{"/a%0d%0aX-Injected:1", ""},
		{"/a%zz", ""},
		{"/a%2", ""},
		{"/a%2F{", ""}, // whatever else the raw path holds
		{"/a%2f|", ""},
		{"/a%5C^", ""},
		{"/a%25`", ""},
		{`/a%2F"`, ""},
		{"/a{|^`", "/a{|^`"},
		{"", ""},
		{"*", ""},
	}
	for _, tc := range cases {
		raw, _, _ := strings.Cut(tc.uri, "?")
		got, err := Clean(raw)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: accepted as %q, want rejected", tc.uri, got)
		case tc.want != "" && err != nil:
			t.Errorf("%s: rejected (%v), want %q", tc.uri, err, tc.want)
		case got != tc.want:
			t.Errorf("%s: %q, want %q", tc.uri, got, tc.want)
		}
	}
}

// FuzzCleanPath checks that an accepted path is clean, and that cleaning is
// idempotent: what the upstream gets (the canonical encoding of the result)
// cleans to itself, so policy and upstream read the same path.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/a/b", "//a//b/", "/a/%2e%2e/b", "/a%2Fb", "/%61", "/a;b/..;/c", "/a%252e", "/.well-known/x", "/a%20b", "/a%2Fb{", "/%ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		raw, _, _ := strings.Cut(target, "?")
		p, err := Clean(raw)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.ContainsAny(p, "\\\x00;") || !utf8.ValidString(p) {
			t.Fatalf("%q cleaned to %q", target, p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q cleaned to %q, which has a dot segment", target, p)
			}
		}
		sent := (&url.URL{Path: p}).EscapedPath()
		if q, err := Clean(sent); err != nil || q != p {
			t.Fatalf("%q: upstream path %q cleans to %q (%v), want %q", target, sent, q, err, p)
		}
	})
}
