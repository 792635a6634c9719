// Package devidp is a DEVELOPMENT-ONLY OAuth 2.0 authorization server that
// mimics the parts of an Okta custom authorization server that authgate uses:
// the client credentials grant, token introspection (RFC 7662), revocation
// (RFC 7009), discovery (RFC 8414), and Okta's rate-limit headers. A token
// request may name its resource (RFC 8707 resource indicator), which then
// becomes the token's aud, as MCP clients expect.
//
// Tokens are opaque random strings, or Okta-shaped JWT access tokens
// (jwt.go), held in memory; nothing survives a restart, not even the
// signing key. It lets the whole stack run and be tested without an Okta tenant.
// It must never be exposed to untrusted networks or used in production.
package devidp

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Client is an OAuth client allowed to use the server.
type Client struct {
	ID     string
	Secret string
	// Scopes are the scopes the client may request. A client without scopes
	// gets tokens without scope.
	Scopes []string
	// Keys, when set, are the client's public keys for private_key_jwt
	// (RFC 7523); such a client needs no secret.
	Keys []jose.JSONWebKey
}

// Config configures a Server. The zero values of Audience and TokenTTL select
// defaults; Issuer and Clients are required.
type Config struct {
	// Issuer is the absolute http(s) URL of the authorization server, such as
	// "http://127.0.0.1:9000/oauth2/default". Routes are served under its path.
	Issuer string
	// Audience is the "aud" of issued tokens; default "api://default".
	Audience string
	// Clients are the registered clients; at least one, with unique IDs.
	Clients []Client
	// TokenTTL is the lifetime of tokens from the token endpoint; default 1h.
	TokenTTL time.Duration
	// Latency is an artificial delay added to every /v1/introspect answer to
	// simulate an Okta round trip; 0 means none.
	Latency time.Duration
	// RateLimit is the per-minute request limit over all /v1/* endpoints,
	// reported in X-Rate-Limit-* headers and enforced with 429 answers; 0
	// means no limit and no headers.
	RateLimit int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// JWT makes the token endpoint issue JWT access tokens (signed with
	// the key served at /v1/keys) instead of opaque strings.
	JWT bool
}

// Server is an in-memory authorization server. It is safe for concurrent use.
type Server struct {
	issuer   string // without trailing slash
	path     string // path of issuer, without trailing slash
	audience string
	clients  map[string]Client
	ttl      time.Duration
	latency  time.Duration
	now      func() time.Time
	limiter  *rateLimiter // nil when unlimited

	introspectCalls atomic.Int64
	keysCalls       atomic.Int64
	keys            *keyRing
	jwt             bool
	assertions      *seenAssertions

	mu      sync.RWMutex
	tokens  map[string]token
	sweepAt int // map size at which Issue next drops expired tokens
}

// token is what the server remembers about an issued access token.
type token struct {
	clientID string
	aud      string // "" means the server's audience
	scopes   []string
	iat, exp time.Time
	jti, uid string
}

// minSweep is the token count below which mint does not sweep expired
// tokens: lookups already drop them lazily.
const minSweep = 1024

// New validates cfg and returns a Server. It reports every problem at once.
func New(cfg Config) (*Server, error) {
	var errs []error
	u, err := url.Parse(cfg.Issuer)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("issuer %q: want an absolute http or https URL", cfg.Issuer))
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		errs = append(errs, fmt.Errorf("issuer %q: must not have user info, query or fragment", cfg.Issuer))
	case !validPath(u.Path):
		errs = append(errs, fmt.Errorf("issuer %q: path may contain only letters, digits, '/', '-', '.', '_' and '~'", cfg.Issuer))
	}
	if len(cfg.Clients) == 0 {
		errs = append(errs, errors.New("no clients"))
	}
	errs = append(errs, validateClients(cfg.Clients)...)
	if cfg.TokenTTL < 0 {
		errs = append(errs, fmt.Errorf("token TTL %v is negative", cfg.TokenTTL))
	}
	if cfg.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %v is negative", cfg.Latency))
	}
	if cfg.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("rate limit %d is negative", cfg.RateLimit))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("devidp: invalid config: %w", err)
	}

	s := &Server{
		path:       strings.TrimRight(u.Path, "/"),
		audience:   cmp.Or(cfg.Audience, "api://default"),
		clients:    make(map[string]Client, len(cfg.Clients)),
		ttl:        cmp.Or(cfg.TokenTTL, time.Hour),
		latency:    cfg.Latency,
		now:        cfg.Now,
		tokens:     make(map[string]token),
		sweepAt:    minSweep,
		jwt:        cfg.JWT,
		keys:       &keyRing{},
		assertions: &seenAssertions{jtis: map[string]time.Time{}},
	}
	if s.now == nil {
		s.now = time.Now
	}
	u.Path = s.path
	s.issuer = u.String()
	if cfg.RateLimit > 0 {
		s.limiter = &rateLimiter{limit: cfg.RateLimit}
	}
	for _, c := range cfg.Clients {
		c.Scopes = slices.Clone(c.Scopes)
		s.clients[c.ID] = c
	}
	return s, nil
}

// IntrospectCalls returns the number of requests received on /v1/introspect,
// including rejected ones.
func (s *Server) IntrospectCalls() int64 { return s.introspectCalls.Load() }

// Issue mints an access token for a registered client, as the token endpoint
// does. No scopes select all the client's scopes; a ttl of 0 selects
// Config.TokenTTL. Tests use it to make short-lived tokens.
func (s *Server) Issue(clientID string, scopes []string, ttl time.Duration) (string, error) {
	return s.issue(clientID, "", scopes, ttl)
}

// IssueFor is Issue for a token whose aud is resource, as the token
// endpoint's resource parameter (RFC 8707) asks.
func (s *Server) IssueFor(clientID, resource string, scopes []string, ttl time.Duration) (string, error) {
	if err := checkResource(resource); err != nil {
		return "", fmt.Errorf("devidp: resource %q: %w", resource, err)
	}
	return s.issue(clientID, resource, scopes, ttl)
}

func (s *Server) issue(clientID, aud string, scopes []string, ttl time.Duration) (string, error) {
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
	return s.mint(c.ID, aud, granted, cmp.Or(ttl, s.ttl)), nil
}

// checkResource checks an RFC 8707 resource indicator: an absolute URI
// without a fragment.
func checkResource(r string) error {
	u, err := url.Parse(r)
	if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(r, "#") {
		return errors.New("must be an absolute URI without a fragment (RFC 8707)")
	}
	return nil
}

// mint stores and returns a new token whose aud is aud ("" for the
// server's audience). It drops expired tokens when the store has grown
// large, so that tokens issued and never presented again (as in load
// tests) do not accumulate.
func (s *Server) mint(clientID, aud string, scopes []string, ttl time.Duration) string {
	now := s.now()
	t := token{
		clientID: clientID,
		aud:      aud,
		scopes:   scopes,
		iat:      now,
		exp:      now.Add(ttl),
		jti:      "AT." + randomString(24),
		uid:      "00u" + randomString(12),
	}
	raw := randomString(32)

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) >= s.sweepAt {
		for k, v := range s.tokens {
			if !now.Before(v.exp) {
				delete(s.tokens, k)
			}
		}
		// Doubling the threshold keeps sweeping amortised O(1) per token
		// even when most tokens are still live.
		s.sweepAt = max(2*len(s.tokens), minSweep)
	}
	s.tokens[raw] = t
	return raw
}

// Revoke makes a token inactive. Unknown tokens are ignored.
func (s *Server) Revoke(raw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, raw)
}

// lookup returns the token if it is known and not expired, dropping it from
// the store if it has expired.
func (s *Server) lookup(raw string) (token, bool) {
	now := s.now()
	s.mu.RLock()
	t, ok := s.tokens[raw]
	s.mu.RUnlock()
	if !ok {
		return token{}, false
	}
	if now.Before(t.exp) {
		return t, true
	}
	s.mu.Lock()
	// Re-check: the token may have been revoked meanwhile; expiry is final.
	if t, ok := s.tokens[raw]; ok && !now.Before(t.exp) {
		delete(s.tokens, raw)
	}
	s.mu.Unlock()
	return token{}, false
}

// grantScopes returns the scopes granted to c for a request of requested:
// all of c's scopes when none are requested, else requested without
// duplicates, provided c may request each of them. Error messages are valid
// RFC 6749 error descriptions.
func grantScopes(c Client, requested []string) ([]string, error) {
	if len(requested) == 0 {
		return slices.Clone(c.Scopes), nil
	}
	granted := make([]string, 0, len(requested))
	for _, sc := range requested {
		switch {
		case !validScope(sc):
			return nil, errors.New("malformed scope")
		case !slices.Contains(c.Scopes, sc):
			return nil, fmt.Errorf("scope %s is not allowed for this client", sc)
		case !slices.Contains(granted, sc):
			granted = append(granted, sc)
		}
	}
	return granted, nil
}

// randomString returns n random bytes encoded as unpadded base64url.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// validPath reports whether p needs no escaping in a URL nor in a
// http.ServeMux pattern.
func validPath(p string) bool {
	for _, r := range p {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case r == '/', r == '-', r == '.', r == '_', r == '~':
		default:
			return false
		}
	}
	return true
}
