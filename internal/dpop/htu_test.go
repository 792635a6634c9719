package dpop

import (
	"strings"
	"testing"
)

func TestNormalizeHTU(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://example.com/a", "https://example.com/a"},
		{"https://example.com", "https://example.com/"},
		{"https://example.com?x=1", "https://example.com/"},
		{"https://example.com#f", "https://example.com/"},
		{"https://example.com/a?b#c", "https://example.com/a"},
		{"https://example.com/a#c?d", "https://example.com/a"},
		{"HTTPS://EXAMPLE.COM/A", "https://example.com/A"}, // the path keeps its case
		{"https://example.com:443/a", "https://example.com/a"},
		{"http://example.com:80/a", "http://example.com/a"},
		{"https://example.com:80/a", "https://example.com:80/a"},
		{"http://example.com:443/a", "http://example.com:443/a"},
		{"https://example.com:/a", "https://example.com/a"},
		{"https://example.com:0443/a", "https://example.com/a"},
		{"https://example.com:8443/a", "https://example.com:8443/a"},
		{"https://[2001:DB8::1]:443/a", "https://[2001:db8::1]/a"},
		{"https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443/"},
		{"https://127.0.0.1:8443/a", "https://127.0.0.1:8443/a"},
		{"https://example.com/%7euser", "https://example.com/~user"},
		{"https://example.com/%41%2d%2E%5F", "https://example.com/A-._"},
		{"https://example.com/a%2fb", "https://example.com/a%2Fb"}, // an encoded slash stays encoded
		{"https://example.com/a%2Fb", "https://example.com/a%2Fb"},
		{"https://example.com/%e2%82%ac", "https://example.com/%E2%82%AC"},
		{"https://example.com/a b", "https://example.com/a%20b"},
		{"https://example.com/a|b^c", "https://example.com/a%7Cb%5Ec"},
		{"https://example.com/\u20ac", "https://example.com/%E2%82%AC"},
		{"https://example.com/a:b@c!$&'()*+,;=", "https://example.com/a:b@c!$&'()*+,;="},
		{"https://example.com/a/./b", "https://example.com/a/b"},
		{"https://example.com/a/../b", "https://example.com/b"},
		{"https://example.com/a/b/c/./../../g", "https://example.com/a/g"},
		{"https://example.com/a/b/..", "https://example.com/a/"},
		{"https://example.com/a/.", "https://example.com/a/"},
		{"https://example.com/..", "https://example.com/"},
		{"https://example.com/../../a", "https://example.com/a"},
		{"https://example.com/%2e%2E/a", "https://example.com/a"},
		{"https://example.com/a/.b/..c", "https://example.com/a/.b/..c"},
		{"https://example.com//a//", "https://example.com//a//"},
		{"https://example.com/a/", "https://example.com/a/"},
	} {
		got, err := NormalizeHTU(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeHTU(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{
		"",
		"/a",
		"example.com/a",
		"ftp://example.com/a",
		"https:/example.com/a",
		"https:///a",
		"https://",
		"https://user@example.com/a",
		"https://user:pw@example.com/a",
		"https://exa%6Dple.com/a",
		"https://example.com:99999/a",
		"https://example.com:65536/a",
		"https://example.com:8x/a",
		"https://example.com:-1/a",
		"https://example.com::443/a",
		"https://:443/a",
		"https://[::1/a",
		"https://[]/a",
		"https://[::1]x/a",
		"https://[fe80::1%25eth0]/a",
		"https://exa mple.com/a",
		"https://exa\x00mple.com/a",
		"https://example.com/%",
		"https://example.com/%4",
		"https://example.com/%zz",
		"https://example.com/a" + strings.Repeat("b", maxURILen),
		"https://example.com/" + strings.Repeat(" ", maxURILen/3), // short enough raw, too long encoded
	} {
		if got, err := NormalizeHTU(in); err == nil {
			t.Errorf("NormalizeHTU(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzNormalizeHTU: no panic, and normalising is idempotent.
func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{"https://example.com/a/../b?x#y", "http://[::1]:80/%7e%2f", "HTTPS://A:0443/./%2E%2e/", "https://a/b c|d", "http://a/" + strings.Repeat(" ", 3000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeHTU(s)
		if err != nil {
			return
		}
		again, err := NormalizeHTU(n)
		if err != nil || again != n {
			t.Fatalf("NormalizeHTU(%q) = %q, then %q, %v: not idempotent", s, n, again, err)
		}
	})
}
