package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/requestid"
	"github.com/authgate/authgate/pkg/introspect"
)

// client is a client of the issuer, authenticated as its AUTH_METHOD
// says, with its own credentials: the introspection's at url, and POST
// /revoke's (REVOKE_UPSTREAM).
func (c *chain) client(url string) *introspect.Client {
	iss := &c.iss
	return &introspect.Client{
		URL:          url,
		ClientID:     iss.ClientID,
		ClientSecret: iss.ClientSecret,
		AuthMethod:   iss.AuthMethod,
		PrivateKey:   c.privateKey,
		KeyID:        iss.PrivateKeyID,
		HTTPClient:   c.parts.IdP,

		RequestHeader: requestid.SetHeader,
	}
}

// loadPrivateKey reads the issuer's PRIVATE_KEY_FILE (OKTA_PRIVATE_KEY_FILE
// for the primary; private_key_jwt): a PEM PKCS#8, PKCS#1 (RSA) or SEC 1
// (EC) private key; nil when not set. The error names the variable, never
// the key.
func loadPrivateKey(iss *config.Issuer) (crypto.Signer, error) {
	if iss.AuthMethod != config.AuthPrivateKeyJWT || iss.PrivateKeyFile == "" {
		return nil, nil
	}
	v := iss.Var("PRIVATE_KEY_FILE")
	b, err := os.ReadFile(iss.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf(v+": %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New(v + ": no PEM block")
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf(v+": PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New(v + ": cannot parse the private key")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf(v+": RSA key of %d bits; at least 2048", k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
		return nil, errors.New(v + ": EC key on a curve other than P-256, P-384 or P-521")
	}
	return nil, errors.New(v + ": the key must be RSA or EC")
}
