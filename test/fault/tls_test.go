package fault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/app"
	"github.com/authgate/authgate/internal/stacktest"
)

// writePEM writes one PEM block to a new file in dir and returns its path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientCert makes a self-signed client certificate; it returns the
// certificate (to trust on the server) and the paths of its PEM files.
func clientCert(t *testing.T, dir string) (cert *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "authgate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, writePEM(t, dir, "client.pem", "CERTIFICATE", der), writePEM(t, dir, "client-key.pem", "PRIVATE KEY", kder)
}

// TestOutboundTLS: a private CA for the IdP (OKTA_CA_FILE) and for OPA
// (OPA_CA_FILE), mTLS to OPA (OPA_CLIENT_CERT_FILE, OPA_CLIENT_KEY_FILE).
// Without the right trust or certificate, requests fail closed (503).
func TestOutboundTLS(t *testing.T) {
	dir := t.TempDir()
	idp := httptest.NewTLSServer(http.HandlerFunc(introspection))
	t.Cleanup(idp.Close)
	idpCA := writePEM(t, dir, "idp-ca.pem", "CERTIFICATE", idp.Certificate().Raw)

	client, certFile, keyFile := clientCert(t, dir)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(client)
	var decisions atomic.Int64
	opa := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			decisions.Add(1)
		}
		w.Write([]byte(`{"result":true}`))
	}))
	opa.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs}
	opa.StartTLS()
	t.Cleanup(opa.Close)
	opaCA := writePEM(t, dir, "opa-ca.pem", "CERTIFICATE", opa.Certificate().Raw)

	full := env(idp.URL, opa.URL, "OKTA_CA_FILE", idpCA, "OPA_CA_FILE", opaCA,
		"OPA_CLIENT_CERT_FILE", certFile, "OPA_CLIENT_KEY_FILE", keyFile)
	without := func(keys ...string) map[string]string {
		e := map[string]string{}
		for k, v := range full {
			e[k] = v
		}
		for _, k := range keys {
			delete(e, k)
		}
		return e
	}
	unavailable := want{status: 503, code: "temporarily_unavailable", retryAfter: "*"}

	t.Run("all trusted, mTLS", func(t *testing.T) {
		gw := stacktest.StartGateway(t, full)
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), want{status: 200})
		if r := stacktest.Get(t, gw.Admin+"/readyz", ""); r.Status != 200 {
			t.Errorf("/readyz over mTLS: %d %s", r.Status, r.Body)
		}
	})
	t.Run("IdP CA not trusted", func(t *testing.T) {
		gw := stacktest.StartGateway(t, without("OKTA_CA_FILE"))
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), unavailable)
	})
	t.Run("OPA CA not trusted", func(t *testing.T) {
		gw := stacktest.StartGateway(t, without("OPA_CA_FILE"))
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), unavailable)
	})
	t.Run("no client certificate", func(t *testing.T) {
		before := decisions.Load()
		gw := stacktest.StartGateway(t, without("OPA_CLIENT_CERT_FILE", "OPA_CLIENT_KEY_FILE"))
		check(t, stacktest.Get(t, gw.Traffic+"/sayhello", freshToken(true)), unavailable)
		if decisions.Load() != before {
			t.Errorf("OPA answered a client without a certificate")
		}
	})
}

// runErr runs authgate with env and returns Run's error, which must come
// before it listens.
func runErr(t *testing.T, e map[string]string) error {
	t.Helper()
	e["ENV_FILE"] = filepath.Join(t.TempDir(), "none.env")
	os.WriteFile(e["ENV_FILE"], nil, 0o600)
	e["LISTEN_ADDR"], e["ADMIN_ADDR"], e["METRICS_ADDR"] = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := app.Run(ctx, nil, func(k string) (string, bool) { v, ok := e[k]; return v, ok }, io.Discard)
	if ctx.Err() != nil {
		t.Fatal("authgate started; want a startup error")
	}
	return err
}

// TestStartupRefusals: authgate does not start with an IdP over plain http
// to another host, nor with TLS files it cannot use; the error names the
// variable.
func TestStartupRefusals(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	_, certFile, _ := clientCert(t, dir)
	https := "https://127.0.0.1:1"
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{name: "http IdP on another host", env: env("http://idp.example.com", "http://127.0.0.1:1"),
			want: []string{"OKTA_ISSUER: http:// to a host that is not loopback", "OKTA_INTROSPECT_URL: http://", "ALLOW_INSECURE_HTTP=true"}},
		{name: "missing OKTA_CA_FILE", env: env(https, "http://127.0.0.1:1", "OKTA_CA_FILE", filepath.Join(dir, "nope.pem")),
			want: []string{"OKTA_CA_FILE: open ", "no such file"}},
		{name: "garbage OPA_CA_FILE", env: env(https, https, "OPA_CA_FILE", garbage),
			want: []string{"OPA_CA_FILE: ", "no PEM certificate found"}},
		{name: "key does not match", env: env(https, https, "OPA_CLIENT_CERT_FILE", certFile, "OPA_CLIENT_KEY_FILE", garbage),
			want: []string{"OPA_CLIENT_CERT_FILE, OPA_CLIENT_KEY_FILE: "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := runErr(t, tc.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestInsecureAllowed: ALLOW_INSECURE_HTTP=true starts with a warning; OPA
// over plain http to another host starts with a warning.
func TestInsecureAllowed(t *testing.T) {
	gw := stacktest.StartGateway(t, env("http://idp.invalid", "http://opa.invalid:8181", "ALLOW_INSECURE_HTTP", "true"))
	logs := gw.Logs.String()
	for _, w := range []string{
		"OPA_AUTHZ_URL is plain http to a host that is not loopback",
		"OKTA_ISSUER is plain http to a host that is not loopback (ALLOW_INSECURE_HTTP=true)",
	} {
		if !strings.Contains(logs, w) {
			t.Errorf("no warning %q in:\n%s", w, logs)
		}
	}
	gw2 := stacktest.StartGateway(t, env("http://localhost:1", "http://127.0.0.1:1"))
	if strings.Contains(gw2.Logs.String(), "plain http") {
		t.Errorf("warning for loopback URLs:\n%s", gw2.Logs.String())
	}
}
