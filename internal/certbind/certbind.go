// Package certbind checks certificate-bound access tokens (RFC 8705
// section 3) behind a TLS-terminating proxy: the proxy forwards the client
// certificate it verified in the Client-Cert header (RFC 9440), and a token
// whose cnf["x5t#S256"] names a certificate passes only with that
// certificate.
//
// The header is believed only from TRUSTED_PROXIES (the caller's
// decision, package forwarded), and parsed strictly: one field line
// holding one RFC 8941 byte sequence (":" standard base64 ":"), no
// parameters, decoding to one DER X.509 certificate and nothing after it.
// Other formats are not read: Envoy's x-forwarded-client-cert (XFCC, a
// list of key=value pairs with a URL-encoded PEM) and nginx's
// $ssl_client_escaped_cert (a URL-encoded PEM) are refused as malformed.
//
// The certificate's validity, chain and revocation are the proxy's job
// (it terminated TLS); this package only binds the token to it.
package certbind

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/authgate/authgate/internal/fault"
)

// DefaultHeader is CLIENT_CERT_HEADER's default: RFC 9440's field name.
const DefaultHeader = "Client-Cert"

// maxHeaderLen bounds a Client-Cert value: a leaf certificate is a few KiB;
// a 16 KiB one would be a curiosity.
const maxHeaderLen = 16 << 10

// ErrMalformed is the error of a Client-Cert field that is not one RFC 9440
// certificate. It comes from a trusted proxy, so it is the proxy's
// configuration that is wrong: the caller refuses a certificate-bound
// token (Check with a nil certificate) and logs it.
var ErrMalformed = errors.New("client certificate header is malformed")

// Cert is the client certificate a trusted proxy forwarded.
type Cert struct {
	// X5tS256 is the unpadded base64url SHA-256 of the DER: what a bound
	// token's cnf["x5t#S256"] holds (input.client_cert.x5t_s256).
	X5tS256 string
	// Subject is the certificate's subject in RFC 2253 form
	// (input.client_cert.subject).
	Subject string
}

// Parse reads the values of the Client-Cert field (http.Header.Values):
// nil and no error when there is none; ErrMalformed (wrapped) when there is
// more than one field line, or a value that is not one sf-binary item
// holding a DER X.509 certificate.
func Parse(values []string) (*Cert, error) {
	switch len(values) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, malformed("more than one field line")
	}
	v := strings.Trim(values[0], " \t") // OWS (RFC 9110 section 5.5), SP (RFC 8941 section 4.2)
	if len(v) > maxHeaderLen {
		return nil, malformed("too large")
	}
	// RFC 8941 section 3.3.5: ":" base64 ":". A list, parameters or any
	// other item is refused: RFC 9440 defines none.
	if len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
		return nil, malformed("not a byte sequence")
	}
	b64 := v[1 : len(v)-1]
	for i := 0; i < len(b64); i++ {
		if c := b64[i]; !isBase64(c) {
			return nil, malformed("not a byte sequence")
		}
	}
	der, err := decode(b64)
	if err != nil || len(der) == 0 {
		return nil, malformed("not standard base64")
	}
	// ParseCertificate refuses trailing data after the certificate.
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, malformed("not a DER X.509 certificate")
	}
	return &Cert{X5tS256: Thumbprint(der), Subject: c.Subject.String()}, nil
}

// decode reads standard base64, padded or not (RFC 8941 section 3.3.5:
// parsers should not fail when the padding is absent), refusing set
// unused bits: no encoder writes them.
func decode(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.Strict().DecodeString(s)
	}
	return base64.RawStdEncoding.Strict().DecodeString(s)
}

func isBase64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '='
}

func malformed(why string) error {
	return errors.Join(ErrMalformed, errors.New(why))
}

// Thumbprint is the x5t#S256 of a DER certificate: its SHA-256 in
// unpadded base64url (RFC 8705 section 3.1).
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Check decides whether a token whose cnf["x5t#S256"] is x5t ("" when the
// token is not bound to a certificate) may be used with the client
// certificate c (nil when there is none, or its header was malformed). An
// unbound token passes; a bound one passes only with its certificate, the
// thumbprints compared in constant time. A refusal is a *fault.Error,
// Unauthenticated, Code invalid_token.
func Check(x5t string, c *Cert) error {
	switch {
	case x5t == "":
		return nil
	case c == nil:
		return invalidToken("certificate-bound token without a client certificate")
	case subtle.ConstantTimeCompare([]byte(x5t), []byte(c.X5tS256)) != 1:
		return invalidToken("certificate-bound token presented with another certificate")
	}
	return nil
}

func invalidToken(desc string) *fault.Error {
	return &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: desc}
}
