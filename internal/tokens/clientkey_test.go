package tokens

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/config"
)

func TestLoadPrivateKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
		return p
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	sec1Small, _ := x509.MarshalECPrivateKey(p224)
	notPEM := filepath.Join(dir, "garbage")
	os.WriteFile(notPEM, []byte("not a key"), 0o600)
	tests := []struct {
		file, wantErr string
	}{
		{write("pkcs1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), ""},
		{write("pkcs8.pem", "PRIVATE KEY", pkcs8), ""},
		{write("sec1.pem", "EC PRIVATE KEY", sec1), ""},
		{filepath.Join(dir, "missing.pem"), "OKTA_PRIVATE_KEY_FILE: open " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{notPEM, "OKTA_PRIVATE_KEY_FILE: no PEM block"},
		{write("cert.pem", "CERTIFICATE", []byte{1}), `OKTA_PRIVATE_KEY_FILE: PEM block "CERTIFICATE" is not a private key`},
		{write("bad.pem", "PRIVATE KEY", []byte{1, 2}), "OKTA_PRIVATE_KEY_FILE: cannot parse the private key"},
		{write("small.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "OKTA_PRIVATE_KEY_FILE: RSA key of 1024 bits; at least 2048"},
		{write("p224.pem", "EC PRIVATE KEY", sec1Small), "OKTA_PRIVATE_KEY_FILE: EC key on a curve other than P-256, P-384 or P-521"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			k, err := loadPrivateKey(&config.Issuer{Name: config.PrimaryIssuer, AuthMethod: config.AuthPrivateKeyJWT, PrivateKeyFile: tt.file})
			if tt.wantErr == "" {
				if err != nil || k == nil {
					t.Fatalf("loadPrivateKey: %v, %v", k, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestLoadPrivateKeyNamesTheIssuer: an issuer's key file that cannot be
// read is refused under the issuer's own variable, never the primary's.
func TestLoadPrivateKeyNamesTheIssuer(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		iss  config.Issuer
		want string
	}{
		{config.Issuer{Name: config.PrimaryIssuer, AuthMethod: config.AuthPrivateKeyJWT, PrivateKeyFile: missing}, "OKTA_PRIVATE_KEY_FILE: "},
		{config.Issuer{Name: "org", AuthMethod: config.AuthPrivateKeyJWT, PrivateKeyFile: missing}, "ISSUER_ORG_PRIVATE_KEY_FILE: "},
	} {
		_, err := loadPrivateKey(&tc.iss)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.iss.Name, err, tc.want)
		}
	}
}
