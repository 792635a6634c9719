package forwarded

import "testing"

// TestIsHeader: the forwarding headers in the spellings a client may send
// them (any case, "_" for "-"), and names that merely look alike.
func TestIsHeader(t *testing.T) {
	for _, name := range []string{
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Prefix",
		"X-Forwarded-Server", "X-Forwarded-Uri", "X-Forwarded-Method", "X-Forwarded-Ssl", "X-Forwarded",
		"X-Real-Ip", "X-Original-Url", "X-Original-Uri", "X-Original-Method", "X-Rewrite-Url", "True-Client-Ip",
		"X-Client-Ip", "Client-Ip", "Cf-Connecting-Ip", "X-Cluster-Client-Ip", "Fastly-Client-Ip", "Forwarded",
		"X_Forwarded_For", "X_Forwarded_Host", "x_real_ip", "X_ORIGINAL_URL", "true_client_ip", "x-forwarded-prefix",
		"FORWARDED",
	} {
		if !IsHeader(name) {
			t.Errorf("IsHeader(%q) = false, want true", name)
		}
	}
	for _, name := range []string{
		"", "X", "Accept", "User-Agent", "X-Request-Id", "X-Forward", "X-Original", "X-Originals", "Forwarded-For",
		"X-Real-Ips", "Client-Ip-X", "Cf-Connecting", "Content-Type", "Cookie", "X-Auth-Subject", "X-Forwardex-For",
	} {
		if IsHeader(name) {
			t.Errorf("IsHeader(%q) = true, want false", name)
		}
	}
}
