package tokens

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/gateway"
)

// TestRevokeUpstreamReasons: a failed upstream revocation (REVOKE_UPSTREAM)
// keeps its reason for the log line, without the server's text: an
// endpoint the metadata named but discovery refused (plain http to another
// host) is said to be refused, not absent; a server that could not be
// reached gives the transport's cause, not "status 0".
func TestRevokeUpstreamReasons(t *testing.T) {
	const admin = "0123456789abcdef0123456789abcdef"
	var idp *httptest.Server
	idp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-authorization-server" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": idp.URL, "revocation_endpoint": "http://192.0.2.1/revoke"})
	}))
	defer idp.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // in the error
		not  []string // never in it
	}{
		{"refused by discovery", map[string]string{"REVOKE_UPSTREAM": "true", "ADMIN_API_TOKEN": admin},
			[]string{"revocation_endpoint http://192.0.2.1/revoke refused", "OKTA_REVOKE_URL"}, []string{"no revocation_endpoint"}},
		{"not reachable", map[string]string{"REVOKE_UPSTREAM": "true", "ADMIN_API_TOKEN": admin, "OKTA_REVOKE_URL": down.URL + "/revoke"},
			[]string{"revoke: post: dial tcp"}, []string{"status 0", down.URL, "opaque-secret-token", "s3cret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks := build(t, idp, tc.env)
			_, err := toks.Revoker()(context.Background(), gateway.RevokeRequest{Token: "opaque-secret-token"})
			if err == nil {
				t.Fatal("revoked upstream, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q holds %q", err, n)
				}
			}
		})
	}
}
