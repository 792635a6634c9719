package introspect_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authgate/authgate/pkg/introspect"
)

// metadataServer serves doc (with %s replaced by its own URL) as the
// openid-configuration of issuer path /oauth2/default; the RFC 8414
// document is missing, as some servers have only one.
func metadataServer(t *testing.T, doc map[string]string) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/oauth2/default/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		out := map[string]string{}
		for k, v := range doc {
			out[k] = strings.ReplaceAll(v, "%s", srv.URL)
		}
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDiscover(t *testing.T) {
	srv := metadataServer(t, map[string]string{"issuer": "%s/oauth2/default", "jwks_uri": "%s/keys",
		"introspection_endpoint": "%s/in", "revocation_endpoint": "%s/rev"})
	m, err := introspect.Discover(context.Background(), nil, srv.URL+"/oauth2/default")
	if err != nil || m.JWKSURI != srv.URL+"/keys" || m.IntrospectionEndpoint != srv.URL+"/in" || m.RevocationEndpoint != srv.URL+"/rev" || m.Refused != nil {
		t.Fatalf("Discover = %+v, %v", m, err)
	}
	if _, err := introspect.Discover(context.Background(), nil, srv.URL+"/oauth2/other"); err == nil {
		t.Error("Discover of an issuer the document does not name succeeded")
	}
}

// TestDiscoverPlainHTTP: an endpoint the document names obeys the rule of
// a configured one: plain http only to loopback, unless the issuer itself
// is plain http to another host. A refused endpoint is not used, and
// Refused names it.
func TestDiscoverPlainHTTP(t *testing.T) {
	srv := metadataServer(t, map[string]string{"issuer": "%s/oauth2/default",
		"jwks_uri": "http://keys.example/keys", "introspection_endpoint": "http://127.0.0.1:1/in",
		"revocation_endpoint": "http://idp.example/rev"})
	m, err := introspect.Discover(context.Background(), nil, srv.URL+"/oauth2/default")
	if err != nil {
		t.Fatal(err)
	}
	if m.JWKSURI != "" || m.RevocationEndpoint != "" || m.IntrospectionEndpoint != "http://127.0.0.1:1/in" {
		t.Errorf("endpoints %+v: want jwks_uri and revocation_endpoint refused, the loopback one kept", m)
	}
	if m.Refused == nil || !strings.Contains(m.Refused.Error(), "jwks_uri http://keys.example/keys refused: plain http to a host that is not loopback") ||
		!strings.Contains(m.Refused.Error(), "revocation_endpoint http://idp.example/rev refused") {
		t.Errorf("Refused = %v", m.Refused)
	}
}

// TestDiscoverPlainHTTPIssuer: an issuer served over plain http to
// another host (its configuration allowed it: ALLOW_INSECURE_HTTP) vouches
// for no more than that: its plain-http endpoints are kept.
func TestDiscoverPlainHTTPIssuer(t *testing.T) {
	srv := metadataServer(t, map[string]string{"issuer": "http://idp.example/oauth2/default",
		"jwks_uri": "http://idp.example/keys", "revocation_endpoint": "http://idp.example/rev"})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}}}
	m, err := introspect.Discover(context.Background(), hc, "http://idp.example/oauth2/default")
	if err != nil || m.JWKSURI != "http://idp.example/keys" || m.RevocationEndpoint != "http://idp.example/rev" || m.Refused != nil {
		t.Fatalf("Discover = %+v, %v", m, err)
	}
}

func TestPlainHTTPNonLoopback(t *testing.T) {
	for raw, want := range map[string]bool{
		"http://idp.example/x": true, "HTTP://10.0.0.1/": true, "http://[::1]:8080/": false,
		"http://127.0.0.2/": false, "http://LocalHost:1/": false, "https://idp.example/": false, "": false,
	} {
		if got := introspect.PlainHTTPNonLoopback(raw); got != want {
			t.Errorf("PlainHTTPNonLoopback(%q) = %v, want %v", raw, got, want)
		}
	}
}
