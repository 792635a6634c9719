package forwarded

import "github.com/authgate/authgate/internal/headername"

// forwardingExact are the forwarding headers matched by their whole name,
// lower-case with "-"; the X-Forwarded and X-Original- families are matched
// by prefix.
var forwardingExact = [...]string{
	"forwarded", "x-real-ip", "x-rewrite-url", "true-client-ip", "x-client-ip", "client-ip",
	"cf-connecting-ip", "x-cluster-client-ip", "fastly-client-ip",
}

// IsHeader reports whether name is a header by which a proxy tells where a
// request came from or what it first was (X-Forwarded-*, X-Original-*,
// Forwarded, X-Real-Ip, True-Client-Ip, ...), case-insensitively and with
// "_" read as "-": an untrusted client's copies must reach neither the
// policy nor the upstream.
func IsHeader(name string) bool {
	if len(name) < len("client-ip") {
		return false
	}
	switch name[0] | 0x20 { // the first letters of every name below
	case 'x', 'f', 't', 'c':
	default:
		return false
	}
	if headername.HasPrefix(name, "x-forwarded") || headername.HasPrefix(name, "x-original-") {
		return true
	}
	for _, n := range forwardingExact {
		if headername.Is(name, n) {
			return true
		}
	}
	return false
}
