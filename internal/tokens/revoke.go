package tokens

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/gateway"
	"github.com/authgate/authgate/internal/jwtauth"
	"github.com/authgate/authgate/internal/tokenid"
	"github.com/authgate/authgate/pkg/introspect"
)

// RevokeKey revokes the token whose revocation id (tokenid.Revocation) is
// key in every issuer's caches, keeps it out for d, and ends its open
// streams and tunnels within the second, not at their next re-check. Every
// revocation goes through here: POST /revoke on this replica (Revoker), and
// those another replica announces (the tiers' callback, given at Start).
// Every cache, not only the token's issuer's: the id is the token's, so
// another issuer's cache cannot hold a different token under it.
func (t *Tokens) RevokeKey(key [sha256.Size]byte, d time.Duration) {
	for _, c := range t.chains {
		c.cache.RevokeKey(key, d)
		if c.introspect != nil {
			c.introspect.RevokeKey(key, d)
		}
	}
	if t.s.Streams != nil {
		t.s.Streams.Revoked(key)
	}
}

// Revoker returns POST /revoke's work (gateway.Deps' Revoke): this
// replica's caches, the fleet's (the token's issuer's tier, when set), and
// the token's issuer's (REVOKE_UPSTREAM), as revocationScope says.
func (t *Tokens) Revoker() func(ctx context.Context, req gateway.RevokeRequest) (gateway.Revocation, error) {
	cfg := t.s.Config
	r := &revoker{tokens: t, tombstone: cfg.CacheTTL, onRevoke: t.s.Metrics.Revocation,
		upstream: cfg.RevokeUpstream, issuers: map[*chain]*upstreamRevoker{}}
	for _, c := range t.chains {
		r.issuers[c] = &upstreamRevoker{client: c.client(c.iss.IntrospectURL()), issuer: c.iss.URL,
			timeout: c.iss.Timeout, url: c.iss.RevokeURL, urlVar: c.iss.Var("REVOKE_URL")}
	}
	return r.revoke
}

// revocationScope is where POST /revoke revokes token beyond this
// replica's caches: the issuers whose shared tiers get its tombstone, and
// the one the token is taken for, whose authorization server is told
// (REVOKE_UPSTREAM; nil: none). named is the form's issuer ("" for none).
//
// A JWT goes to the issuer its iss names (none for an unknown one), as a
// lookup would route it, and only that issuer's tier can hold an answer
// for it; a named issuer must be that one. An opaque token is tombstoned
// in every issuer's tier, since a lookup routes it by the request, which
// POST /revoke does not describe (OPAQUE_PATHS): any issuer may have
// answered it. It is taken for the named issuer, else the first whose
// cache on this replica holds an active answer for it (that issuer said
// it was its own), else the primary. Call it before the caches drop the
// token.
func (t *Tokens) revocationScope(token, named string) (tiers []*chain, upstream *chain, err error) {
	var want *chain
	if named != "" {
		for _, c := range t.chains {
			if c.iss.Name == named {
				want = c
			}
		}
		if want == nil {
			return nil, nil, &fault.Error{Kind: fault.BadRequest, Code: "invalid_request",
				Description: "issuer is not a configured issuer's name"}
		}
	}
	if t.byURL != nil {
		if iss, ok := jwtauth.PeekIssuer(token); ok {
			c := t.byURL[iss]
			if want != nil && want != c {
				return nil, nil, &fault.Error{Kind: fault.BadRequest, Code: "invalid_request",
					Description: "issuer is not the issuer the token's iss names"}
			}
			if c == nil {
				return nil, nil, nil
			}
			return []*chain{c}, c, nil
		}
	}
	if want != nil {
		return t.chains, want, nil
	}
	key := tokenid.Revocation(token)
	for _, c := range t.chains {
		if c.cache.Holds(key) || (c.introspect != nil && c.introspect.Holds(key)) {
			return t.chains, c, nil
		}
	}
	return t.chains, t.chains[0], nil
}

// revoker does POST /revoke's work.
type revoker struct {
	tokens    *Tokens
	tombstone time.Duration
	onRevoke  func(source string)
	upstream  bool
	issuers   map[*chain]*upstreamRevoker
}

// upstreamRevoker revokes at one issuer (REVOKE_UPSTREAM).
type upstreamRevoker struct {
	client  *introspect.Client
	issuer  string
	timeout time.Duration
	urlVar  string // the variable that sets url, for messages

	mu  sync.Mutex
	url string // the issuer's REVOKE_URL, or discovered on first use
}

// revoke implements gateway.Deps' Revoke. It keys by the token's
// revocation id (tokenid), so that every spelling of a JWS is revoked.
// A JWT of no configured issuer (ISSUERS set) is revoked here and in no
// tier nor IdP: no issuer would have accepted it. A request naming no
// configured issuer revokes nothing (BadRequest).
func (r *revoker) revoke(ctx context.Context, req gateway.RevokeRequest) (gateway.Revocation, error) {
	token, hint := req.Token, req.Hint
	tiers, c, err := r.tokens.revocationScope(token, req.Issuer)
	if err != nil {
		return gateway.Revocation{}, err
	}
	key := tokenid.Revocation(token)
	r.tokens.RevokeKey(key, r.tombstone)
	res := gateway.Revocation{Scope: "local", Upstream: "off"}
	if c != nil && r.tokens.byURL != nil {
		// Only with ISSUERS: a single issuer's answer stays as it was.
		res.Issuer = c.iss.Name
	}
	r.onRevoke("api")
	revoked, failed := 0, false
	for _, tc := range tiers {
		if tier := tc.parts.Tier; tier != nil {
			if tier.Revoke(ctx, key) == nil {
				revoked++
			} else {
				failed = true
			}
		}
	}
	if revoked > 0 && !failed {
		res.Scope = "fleet"
	}
	if c == nil {
		return res, nil
	}
	if !r.upstream {
		return res, nil
	}
	up := r.issuers[c]
	ctx, cancel := context.WithTimeout(ctx, up.timeout)
	defer cancel()
	url, err := up.endpoint(ctx)
	if err != nil {
		return res, err
	}
	if err := up.client.Revoke(ctx, url, token, hint); err != nil {
		var ie *introspect.Error
		switch {
		case !errors.As(err, &ie):
			return res, errors.New("revoke: failed")
		case ie.StatusCode == 0 && ie.Err != nil:
			// No answer: the cause (a transport error, its URL scrubbed;
			// the assertion's), which holds neither token nor secret.
			return res, fmt.Errorf("revoke: %w", ie.Err)
		}
		// The server's text may echo the token: its status only.
		return res, fmt.Errorf("revoke: status %d", ie.StatusCode)
	}
	res.Upstream = "revoked"
	return res, nil
}

// endpoint is the issuer's REVOKE_URL, else the revocation_endpoint its
// metadata names, read once it answers.
func (u *upstreamRevoker) endpoint(ctx context.Context) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.url != "" {
		return u.url, nil
	}
	m, err := introspect.Discover(ctx, u.client.HTTPClient, u.issuer)
	if err != nil {
		return "", err
	}
	if m.RevocationEndpoint == "" {
		why := "no revocation_endpoint in the authorization server's metadata"
		if m.Refused != nil {
			// It may have named one, refused as plain http.
			why = "no usable revocation_endpoint in the authorization server's metadata (" +
				strings.ReplaceAll(m.Refused.Error(), "\n", "; ") + ")"
		}
		return "", errors.New("discover: " + why + " (set " + u.urlVar + ")")
	}
	u.url = m.RevocationEndpoint
	return u.url, nil
}
