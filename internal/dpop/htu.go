package dpop

import (
	"errors"
	"strconv"
	"strings"
)

// errHTU is the error of a URI that cannot be an htu: not absolute http(s),
// userinfo, a bad port, a bad host, a malformed percent-encoding.
var errHTU = errors.New("not an absolute http(s) URI")

// maxURILen bounds a URI to normalise: a proof's htu and a request's URI
// are both well below it (Go's server takes 64 KiB of headers in all).
const maxURILen = 8 << 10

// NormalizeHTU returns the form of an absolute http or https URI that an
// htu claim is compared in (RFC 9449 section 4.3, RFC 3986 sections 6.2.2
// and 6.2.3): the query and the fragment dropped; scheme and host in lower
// case; the scheme's default port and an empty port removed, a port
// written without leading zeros; in the path every percent-encoding in
// upper-case hex, unreserved characters decoded, every other character that
// is not allowed raw in a path encoded, dot segments removed, and an empty
// path written "/".
//
// Both sides of the comparison go through it: the proof's htu and the URI
// the client sent its request to (scheme and host as it addressed them, the
// request target as it wrote it), never a path authgate cleaned. A URI it
// cannot read (another scheme, userinfo, no host, a port that is not a
// number up to 65535, a host with characters a host cannot have, a '%' not
// followed by two hex digits) is an error, and so is a URI longer than
// maxURILen before or after normalising.
func NormalizeHTU(uri string) (string, error) {
	if len(uri) > maxURILen {
		return "", errHTU
	}
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return "", errHTU
	}
	var defaultPort string
	switch strings.ToLower(scheme) {
	case "http":
		scheme, defaultPort = "http", "80"
	case "https":
		scheme, defaultPort = "https", "443"
	default:
		return "", errHTU
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	host, err := normalizeAuthority(authority, defaultPort)
	if err != nil {
		return "", err
	}
	path, err = normalizePath(path)
	if err != nil {
		return "", err
	}
	n := scheme + "://" + host + path
	if len(n) > maxURILen { // encoding can triple a path: the result is bounded too
		return "", errHTU
	}
	return n, nil
}

// normalizeAuthority lower-cases the host and drops a default or empty
// port. Userinfo is refused: no client addresses a request with it.
func normalizeAuthority(a, defaultPort string) (string, error) {
	if a == "" || strings.ContainsAny(a, "@%") {
		return "", errHTU
	}
	host, port := a, ""
	if strings.HasPrefix(a, "[") { // IP literal
		end := strings.IndexByte(a, ']')
		if end < 0 {
			return "", errHTU
		}
		host, port = a[:end+1], a[end+1:]
		if port != "" && port[0] != ':' {
			return "", errHTU
		}
		for i := 1; i < len(host)-1; i++ {
			if c := host[i]; !isHex(c) && c != ':' && c != '.' {
				return "", errHTU
			}
		}
		if len(host) == 2 {
			return "", errHTU
		}
	} else {
		if i := strings.IndexByte(a, ':'); i >= 0 {
			host, port = a[:i], a[i:]
		}
		if host == "" {
			return "", errHTU
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; !isUnreserved(c) && !isSubDelim(c) {
				return "", errHTU
			}
		}
	}
	host = strings.ToLower(host)
	if port == "" || port == ":" {
		return host, nil
	}
	digits := port[1:]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", errHTU
		}
	}
	n, err := strconv.ParseUint(digits, 10, 16)
	if err != nil {
		return "", errHTU
	}
	if p := strconv.FormatUint(n, 10); p != defaultPort {
		return host + ":" + p, nil
	}
	return host, nil
}

// normalizePath normalises the percent-encoding of p, then removes its dot
// segments (RFC 3986 section 6.2.2: decoding first, so that "%2E%2E" is a
// dot segment too).
func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	var b strings.Builder
	b.Grow(len(p) + 8)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", errHTU
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			if isUnreserved(d) {
				b.WriteByte(d)
			} else {
				writeEscaped(&b, d)
			}
		case isUnreserved(c) || isSubDelim(c) || c == ':' || c == '@' || c == '/':
			b.WriteByte(c)
		default: // not allowed raw in a path: what a client would have sent encoded
			writeEscaped(&b, c)
		}
	}
	return removeDotSegments(b.String()), nil
}

// removeDotSegments is RFC 3986 section 5.2.4 for an absolute path.
func removeDotSegments(in string) string {
	if !strings.Contains(in, ".") {
		return in
	}
	out := make([]string, 0, strings.Count(in, "/"))
	segs := strings.Split(in, "/")[1:] // in starts with "/"
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

func writeEscaped(b *strings.Builder, c byte) {
	const upper = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(upper[c>>4])
	b.WriteByte(upper[c&15])
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isSubDelim(c byte) bool {
	return strings.IndexByte("!$&'()*+,;=", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
