package devidp

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// private_key_jwt client authentication (RFC 7523, OIDC Core 9), as Okta
// accepts it: client_assertion_type jwt-bearer and a client_assertion
// signed with a key registered for the client, iss = sub = client id, aud
// the full URL of the endpoint called, exp at most an hour away, and a jti
// never seen before.

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLife is Okta's bound on exp - now.
const maxAssertionLife = time.Hour

var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512}

// seenAssertions remembers jtis until their assertions expire (replay).
type seenAssertions struct {
	mu   sync.Mutex
	jtis map[string]time.Time
}

// first records jti and reports whether it is new; expired ones are dropped.
func (a *seenAssertions) first(jti string, exp, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, e := range a.jtis {
		if !now.Before(e) {
			delete(a.jtis, k)
		}
	}
	if _, ok := a.jtis[jti]; ok {
		return false
	}
	a.jtis[jti] = exp
	return true
}

func (s *Server) authenticateAssertion(r *http.Request, form map[string][]string) (Client, *oauthError) {
	get := func(k string) string {
		if v := form[k]; len(v) == 1 {
			return v[0]
		}
		return ""
	}
	if get("client_assertion_type") != assertionType {
		return Client{}, invalidClient("client_assertion_type must be " + assertionType)
	}
	rejected := invalidClient("client assertion rejected")
	jws, err := jose.ParseSignedCompact(get("client_assertion"), assertionAlgs)
	if err != nil {
		return Client{}, invalidClient("client assertion is not a signed JWT")
	}
	var claims struct {
		Iss, Sub, Jti string
		Aud           any
		Exp           *float64
	}
	// Find the client from the unverified iss, then verify with its keys.
	if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims) != nil {
		return Client{}, rejected
	}
	c, ok := s.clients[claims.Iss]
	if !ok || len(c.Keys) == 0 {
		return Client{}, rejected
	}
	kid := jws.Signatures[0].Header.KeyID
	var payload []byte
	for _, k := range c.Keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if payload, err = jws.Verify(k.Key); err == nil {
			break
		}
	}
	if payload == nil {
		return Client{}, rejected
	}
	now := s.now()
	aud := s.issuerOrigin() + r.URL.Path
	switch {
	case claims.Sub != claims.Iss, !audience(claims.Aud, aud), claims.Jti == "", claims.Exp == nil:
		return Client{}, rejected
	}
	exp := time.Unix(int64(*claims.Exp), 0)
	if !now.Before(exp) || exp.Sub(now) > maxAssertionLife || !s.assertions.first(claims.Jti, exp, now) {
		return Client{}, rejected
	}
	return c, nil
}

// audience reports whether aud (a string or an array) names want.
func audience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if v == want {
				return true
			}
		}
	}
	return false
}

// issuerOrigin is the issuer's scheme and host.
func (s *Server) issuerOrigin() string { return s.issuer[:len(s.issuer)-len(s.path)] }
