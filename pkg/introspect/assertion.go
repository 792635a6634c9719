package introspect

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// AssertionType is the client_assertion_type of RFC 7523 section 2.2.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a client assertion is valid: short, since
// each call makes a fresh one (Okta accepts at most an hour).
const AssertionLifetime = 5 * time.Minute

// assertion makes a fresh client assertion (RFC 7523 section 3): iss and
// sub the client id, aud the endpoint URL it is sent to (Okta wants the
// full URL), a unique jti, iat now and exp AssertionLifetime later.
func (c *Client) assertion(aud string) (string, error) {
	alg, err := keyAlgorithm(c.PrivateKey)
	if err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if c.KeyID != "" {
		opts = opts.WithHeader("kid", c.KeyID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: c.PrivateKey}, opts)
	if err != nil {
		return "", errors.New("private_key_jwt: cannot sign with the private key")
	}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	jti := make([]byte, 16)
	rand.Read(jti) // never fails since Go 1.24
	claims, _ := json.Marshal(map[string]any{
		"iss": c.ClientID, "sub": c.ClientID, "aud": aud,
		"iat": now.Unix(), "exp": now.Add(AssertionLifetime).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti),
	})
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", errors.New("private_key_jwt: signing the client assertion failed")
	}
	return jws.CompactSerialize()
}

// keyAlgorithm is the JWS algorithm for a private key: RS256 for RSA, the
// ECDSA algorithm of the key's curve.
func keyAlgorithm(k any) (jose.SignatureAlgorithm, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return jose.RS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	case nil:
		return "", errors.New("private_key_jwt: no private key")
	}
	return "", errors.New("private_key_jwt: the private key must be RSA or EC (P-256, P-384, P-521)")
}
