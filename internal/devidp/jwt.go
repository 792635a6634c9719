package devidp

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// JWT access tokens, as an Okta custom authorization server issues them:
// RS256 with the kid in the header; claims ver, jti, iss, aud, iat, exp,
// cid, uid, scp (an array), sub. The keys are served at /v1/keys and named
// by jwks_uri in discovery. A JWT is also remembered like an opaque token,
// so that it can be introspected and revoked.

// keysMaxAge is the Cache-Control max-age of /v1/keys.
const keysMaxAge = time.Hour

// maxPublished is how many keys /v1/keys lists: the current one and those
// it replaced, so that tokens signed before a rotation stay verifiable.
const maxPublished = 3

// keyRing holds the signing key and the published keys, newest first.
// The first key is made on first use: RSA key generation is slow, and most
// uses of the server never sign.
type keyRing struct {
	once      sync.Once
	mu        sync.RWMutex
	current   *rsa.PrivateKey
	kid       string
	published []jose.JSONWebKey
	signer    jose.Signer
}

// ready makes the first key if there is none yet.
func (r *keyRing) ready() {
	r.once.Do(func() {
		r.mu.RLock()
		have := r.signer != nil
		r.mu.RUnlock()
		if !have {
			if _, err := r.rotate(); err != nil {
				panic("devidp: cannot make a signing key: " + err.Error()) // crypto/rand does not fail
			}
		}
	})
}

// rotate makes a new signing key, publishes it and returns its kid.
func (r *keyRing) rotate() (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	kid := randomString(12)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current, r.kid, r.signer = k, kid, signer
	pub := jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}
	r.published = append([]jose.JSONWebKey{pub}, r.published...)
	if len(r.published) > maxPublished {
		r.published = r.published[:maxPublished]
	}
	return kid, nil
}

func (r *keyRing) sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	r.ready()
	r.mu.RLock()
	signer := r.signer
	r.mu.RUnlock()
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func (r *keyRing) jwks() jose.JSONWebKeySet {
	r.ready()
	r.mu.RLock()
	defer r.mu.RUnlock()
	return jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), r.published...)}
}

// KID is the kid of the current signing key.
func (s *Server) KID() string {
	s.keys.ready()
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	return s.keys.kid
}

// PublicKey is the current signing key's public half.
func (s *Server) PublicKey() *rsa.PublicKey {
	s.keys.ready()
	s.keys.mu.RLock()
	defer s.keys.mu.RUnlock()
	return &s.keys.current.PublicKey
}

// RotateKey signs every later JWT with a new key, published at once at
// /v1/keys beside the previous ones. DEVELOPMENT ONLY, like the whole server.
func (s *Server) RotateKey() (kid string, err error) {
	s.keys.ready()
	return s.keys.rotate()
}

// KeysCalls returns the number of requests received on /v1/keys.
func (s *Server) KeysCalls() int64 { return s.keysCalls.Load() }

// IssueJWT mints a JWT access token for a registered client, as Issue does
// an opaque one.
func (s *Server) IssueJWT(clientID string, scopes []string, ttl time.Duration) (string, error) {
	c, ok := s.clients[clientID]
	if !ok {
		return "", fmt.Errorf("devidp: unknown client %q", clientID)
	}
	if ttl < 0 {
		return "", fmt.Errorf("devidp: token TTL %v is negative", ttl)
	}
	granted, err := grantScopes(c, scopes)
	if err != nil {
		return "", fmt.Errorf("devidp: client %q: %w", clientID, err)
	}
	return s.mintJWT(c.ID, "", granted, cmp.Or(ttl, s.ttl))
}

// Claims returns the claims IssueJWT would sign for a client's token, for
// tests that change some before calling SignClaims.
func (s *Server) Claims(clientID string, scopes []string, ttl time.Duration) map[string]any {
	now := s.now()
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]any{
		"ver": 1, "jti": "AT." + randomString(24), "iss": s.issuer, "aud": s.audience,
		"iat": now.Unix(), "exp": now.Add(cmp.Or(ttl, s.ttl)).Unix(),
		"cid": clientID, "uid": "00u" + randomString(12), "scp": scopes, "sub": clientID,
	}
}

// SignClaims signs any claims with the current key: tests make tokens with
// a wrong iss, aud or exp that are nonetheless properly signed.
func (s *Server) SignClaims(claims map[string]any) (string, error) { return s.keys.sign(claims) }

// mintJWT signs, stores and returns a new JWT access token whose aud is aud
// ("" for the server's audience).
func (s *Server) mintJWT(clientID, aud string, scopes []string, ttl time.Duration) (string, error) {
	claims := s.Claims(clientID, scopes, ttl)
	if aud != "" {
		claims["aud"] = aud
	}
	raw, err := s.keys.sign(claims)
	if err != nil {
		return "", err
	}
	now := s.now()
	t := token{clientID: clientID, aud: aud, scopes: scopes, iat: now, exp: now.Add(ttl),
		jti: claims["jti"].(string), uid: claims["uid"].(string)}
	s.mu.Lock()
	s.tokens[raw] = t
	s.mu.Unlock()
	return raw, nil
}

// handleKeys serves the JWKS. Okta does not rate-limit it; it may be cached.
func (s *Server) handleKeys() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("max-age=%d, must-revalidate", int(keysMaxAge/time.Second)))
		writeJSON(w, http.StatusOK, s.keys.jwks())
	}
}

// handleRotate serves POST .../devidp/rotate-key: a new signing key, for
// trying key rotation by hand. DEVELOPMENT ONLY.
func (s *Server) handleRotate() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		kid, err := s.RotateKey()
		if err != nil {
			writeError(w, &oauthError{status: http.StatusInternalServerError, Code: "server_error", Description: "cannot make a key"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
	}
}
