package certbind

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/fault"
)

// newCert makes a self-signed client certificate's DER.
func newCert(t testing.TB, cn string) []byte {
	t.Helper()
	// Ed25519: a fixed-length signature, so a fixed-length DER.
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Example"}},
		NotBefore:    time.Unix(1_700_000_000, 0),
		NotAfter:     time.Unix(1_900_000_000, 0),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// sf is the RFC 9440 header value of der.
func sf(der []byte) string { return ":" + base64.StdEncoding.EncodeToString(der) + ":" }

func TestParse(t *testing.T) {
	der := newCert(t, "client-1")
	// The "base64url alphabet" case below needs a "+" or "/" to change: a
	// random key and signature lack both about once in 60 certificates.
	for !strings.ContainsAny(base64.StdEncoding.EncodeToString(der), "+/") {
		der = newCert(t, "client-1")
	}
	sum := sha256.Sum256(der)
	x5t := base64.RawURLEncoding.EncodeToString(sum[:])
	for name, values := range map[string][]string{
		"RFC 9440":               {sf(der)},
		"unpadded":               {":" + base64.RawStdEncoding.EncodeToString(der) + ":"},
		"surrounding whitespace": {" \t" + sf(der) + " "},
	} {
		c, err := Parse(values)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.X5tS256 != x5t || c.Subject != "CN=client-1,O=Example" {
			t.Errorf("%s: %+v, want x5t %s and the subject", name, c, x5t)
		}
	}
	if c, err := Parse(nil); c != nil || err != nil {
		t.Errorf("no header: %v, %v; want nil, nil", c, err)
	}

	b64 := base64.StdEncoding.EncodeToString(der)
	pemCert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	// The last character of the padded base64 with an unused bit set.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	trimmed := strings.TrimRight(b64, "=")
	last := strings.IndexByte(alphabet, trimmed[len(trimmed)-1])
	unusedBit := trimmed[:len(trimmed)-1] + string(alphabet[last^1]) + b64[len(trimmed):]
	if len(der)%3 == 0 {
		t.Fatal("the DER has no unused bits to set; change the certificate")
	}
	for name, values := range map[string][]string{
		"two field lines":                {sf(der), sf(der)},
		"a list":                         {sf(der) + ", " + sf(der)},
		"parameters":                     {sf(der) + ";a=1"},
		"empty":                          {""},
		"empty byte sequence":            {"::"},
		"one colon":                      {":"},
		"bare base64":                    {b64},
		"a string item":                  {`"` + b64 + `"`},
		"base64url alphabet":             {":" + strings.NewReplacer("+", "-", "/", "_").Replace(b64) + ":"},
		"whitespace inside":              {":" + b64[:10] + " " + b64[10:] + ":"},
		"unused bits set":                {":" + unusedBit + ":"},
		"padding in the middle":          {":" + b64[:8] + "=" + b64[8:] + ":"},
		"trailing data":                  {sf(append(append([]byte{}, der...), 0))},
		"not a certificate":              {sf([]byte("not a certificate"))},
		"two certificates":               {sf(append(append([]byte{}, der...), newCert(t, "other")...))},
		"PEM":                            {pemCert},
		"nginx $ssl_client_escaped_cert": {url.QueryEscape(pemCert)},
		"Envoy XFCC":                     {`Hash=` + x5t + `;Cert="` + url.QueryEscape(pemCert) + `";Subject="CN=client-1"`},
		"too large":                      {":" + strings.Repeat("AAAA", maxHeaderLen/4) + ":"},
	} {
		c, err := Parse(values)
		if !errors.Is(err, ErrMalformed) || c != nil {
			t.Errorf("%s: %v, %v; want ErrMalformed", name, c, err)
		}
	}
}

func TestCheck(t *testing.T) {
	c, err := Parse([]string{sf(newCert(t, "client-1"))})
	if err != nil {
		t.Fatal(err)
	}
	other, err := Parse([]string{sf(newCert(t, "client-2"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		x5t  string
		cert *Cert
		ok   bool
	}{
		{"unbound, no certificate", "", nil, true},
		{"unbound, a certificate", "", c, true},
		{"bound, its certificate", c.X5tS256, c, true},
		{"bound, no certificate", c.X5tS256, nil, false},
		{"bound, another certificate", c.X5tS256, other, false},
		{"bound, the thumbprint in another case", strings.ToUpper(c.X5tS256), c, false},
		{"bound, padded thumbprint", c.X5tS256 + "=", c, false},
	} {
		err := Check(tc.x5t, tc.cert)
		if tc.ok != (err == nil) {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
			continue
		}
		if !tc.ok {
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind != fault.Unauthenticated || fe.ErrorCode() != "invalid_token" {
				t.Errorf("%s: %v, want 401 invalid_token", tc.name, err)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(":" + base64.StdEncoding.EncodeToString(newCert(f, "seed")) + ":")
	f.Add("::")
	f.Add(":AAAA:;a=1")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := Parse([]string{v})
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse(%q) = %v, %v: want exactly one of them", v, c, err)
		}
	})
}
