package app

import (
	"net/http"
	"reflect"
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
