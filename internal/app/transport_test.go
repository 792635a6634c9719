package app

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
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

// TestRefuseDowngrade: an issuer's client follows a redirect to https, and
// to plain http when it started there, but refuses one from https to plain
// http to another host, before it is sent.
func TestRefuseDowngrade(t *testing.T) {
	var sent atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sent.Add(1) }))
	defer plain.Close()
	// The plain server as a host that is not loopback: its address under
	// another name, which the client resolves to it.
	_, port, _ := net.SplitHostPort(plain.Listener.Addr().String())
	elsewhere := "http://idp.example:" + port
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-https":
			http.Redirect(w, r, "/ok", http.StatusTemporaryRedirect)
		case "/to-http":
			http.Redirect(w, r, elsewhere+"/introspect", http.StatusTemporaryRedirect)
		}
	}))
	defer tlsSrv.Close()
	tr := tlsSrv.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "idp.example:") {
			addr = plain.Listener.Addr().String()
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	hc := &http.Client{Transport: tr, CheckRedirect: refuseDowngrade}
	post := func(u string) error {
		resp, err := hc.Post(u, "application/x-www-form-urlencoded", strings.NewReader("token=t"))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := post(tlsSrv.URL + "/to-https"); err != nil {
		t.Errorf("https to https: %v", err)
	}
	if err := post(tlsSrv.URL + "/to-http"); err == nil || !strings.Contains(err.Error(), "redirect to plain http") {
		t.Errorf("https to plain http elsewhere: %v, want refused", err)
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("%d requests reached the plain http host", n)
	}
	if err := post(elsewhere + "/start"); err != nil {
		t.Errorf("plain http from the start: %v", err)
	}
}
