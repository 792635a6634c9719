package app

import (
	"bytes"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/config"
)

// TestTransportsKeepProxyFromEnvironment: the tuned transports, TLS or not,
// still honour HTTPS_PROXY and NO_PROXY.
func TestTransportsKeepProxyFromEnvironment(t *testing.T) {
	want := reflect.ValueOf(http.ProxyFromEnvironment).Pointer()
	idp, err := idpTransport(&config.Issuer{Name: config.PrimaryIssuer})
	if err != nil {
		t.Fatal(err)
	}
	opa, err := opaTransport(&config.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for name, tr := range map[string]*http.Transport{"idp": idp, "opa": opa} {
		if tr.Proxy == nil || reflect.ValueOf(tr.Proxy).Pointer() != want {
			t.Errorf("%s transport: Proxy is not http.ProxyFromEnvironment", name)
		}
	}
}

// TestIDPTransportNamesTheIssuer: an issuer's CA file that cannot be read
// is refused under the issuer's own variable.
func TestIDPTransportNamesTheIssuer(t *testing.T) {
	_, err := idpTransport(&config.Issuer{Name: "org", CAFile: t.TempDir() + "/missing.pem"})
	if err == nil || !strings.HasPrefix(err.Error(), "ISSUER_ORG_CA_FILE: ") {
		t.Errorf("%v, want an error naming ISSUER_ORG_CA_FILE", err)
	}
}

// TestWarnPlainRedis: a redis:// REDIS_URL to a host that is not loopback
// gets a startup warning (rediss:// is the advice); loopback and rediss://
// do not.
func TestWarnPlainRedis(t *testing.T) {
	for url, want := range map[string]bool{
		"redis://10.0.0.7:6379/0":  true,
		"redis://127.0.0.1:6379/0": false,
		"rediss://redis.internal":  false,
		"":                         false,
	} {
		var buf bytes.Buffer
		warnPlainHTTP(&config.Config{RedisURL: url}, slog.New(slog.NewTextHandler(&buf, nil)))
		if got := strings.Contains(buf.String(), "REDIS_URL is redis:// (no TLS)"); got != want {
			t.Errorf("REDIS_URL=%q: warned %v, want %v (log: %q)", url, got, want, buf.String())
		}
	}
}
