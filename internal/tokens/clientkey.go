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

// client is an IdP client authenticated as OKTA_AUTH_METHOD says: the
// introspection's at url, and POST /revoke's (REVOKE_UPSTREAM).
func (s *Settings) client(url string) *introspect.Client {
	cfg := s.Config
	return &introspect.Client{
		URL:          url,
		ClientID:     cfg.OktaClientID,
		ClientSecret: cfg.OktaClientSecret,
		AuthMethod:   cfg.OktaAuthMethod,
		PrivateKey:   s.privateKey,
		KeyID:        cfg.OktaPrivateKeyID,
		HTTPClient:   s.IdP,

		RequestHeader: requestid.SetHeader,
	}
}

// loadPrivateKey reads OKTA_PRIVATE_KEY_FILE (private_key_jwt): a PEM
// PKCS#8, PKCS#1 (RSA) or SEC 1 (EC) private key; nil when not set. The
// error names the variable, never the key.
func loadPrivateKey(cfg *config.Config) (crypto.Signer, error) {
	if cfg.OktaAuthMethod != config.AuthPrivateKeyJWT || cfg.OktaPrivateKeyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.OktaPrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("OKTA_PRIVATE_KEY_FILE: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("OKTA_PRIVATE_KEY_FILE: no PEM block")
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
		return nil, fmt.Errorf("OKTA_PRIVATE_KEY_FILE: PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("OKTA_PRIVATE_KEY_FILE: cannot parse the private key")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("OKTA_PRIVATE_KEY_FILE: RSA key of %d bits; at least 2048", k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
		return nil, errors.New("OKTA_PRIVATE_KEY_FILE: EC key on a curve other than P-256, P-384 or P-521")
	}
	return nil, errors.New("OKTA_PRIVATE_KEY_FILE: the key must be RSA or EC")
}
