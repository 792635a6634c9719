package tokens

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/authgate/authgate/internal/fleet"
	"github.com/authgate/authgate/internal/gateway"
	"github.com/authgate/authgate/internal/tokenid"
	"github.com/authgate/authgate/pkg/introspect"
)

// RevokeKey revokes the token whose revocation id (tokenid.Revocation) is
// key in every cache, keeps it out for d, and ends its open streams and
// tunnels within the second, not at their next re-check. Every revocation
// goes through here: POST /revoke on this replica (Revoker), and those
// another replica announces (the tier's callback, given at Start).
func (t *Tokens) RevokeKey(key [sha256.Size]byte, d time.Duration) {
	t.cache.RevokeKey(key, d)
	if t.introspect != nil {
		t.introspect.RevokeKey(key, d)
	}
	if t.s.Streams != nil {
		t.s.Streams.Revoked(key)
	}
}

// Revoker returns POST /revoke's work (gateway.Deps' Revoke): this
// replica's caches, the fleet's (the tier, when set), and the IdP's
// (REVOKE_UPSTREAM).
func (t *Tokens) Revoker() func(ctx context.Context, token, hint string) (gateway.Revocation, error) {
	cfg := t.s.Config
	r := &revoker{tokens: t, tier: t.s.Tier, tombstone: cfg.CacheTTL, onRevoke: t.s.Metrics.Revocation,
		upstream: cfg.RevokeUpstream, client: t.s.client(cfg.IntrospectURL()), issuer: cfg.OktaIssuer,
		timeout: cfg.OktaTimeout, url: cfg.OktaRevokeURL}
	return r.revoke
}

// revoker does POST /revoke's work.
type revoker struct {
	tokens    *Tokens
	tier      *fleet.Tier // nil without REDIS_URL
	tombstone time.Duration
	onRevoke  func(source string)

	upstream bool
	client   *introspect.Client
	issuer   string
	timeout  time.Duration

	mu  sync.Mutex
	url string // OKTA_REVOKE_URL, or discovered on first use
}

// revoke implements gateway.Deps' Revoke. It keys by the token's
// revocation id (tokenid), so that every spelling of a JWS is revoked.
func (r *revoker) revoke(ctx context.Context, token, hint string) (gateway.Revocation, error) {
	key := tokenid.Revocation(token)
	r.tokens.RevokeKey(key, r.tombstone)
	res := gateway.Revocation{Scope: "local", Upstream: "off"}
	if r.tier != nil && r.tier.Revoke(ctx, key) == nil {
		res.Scope = "fleet"
	}
	r.onRevoke("api")
	if !r.upstream {
		return res, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	url, err := r.endpoint(ctx)
	if err != nil {
		return res, err
	}
	if err := r.client.Revoke(ctx, url, token, hint); err != nil {
		var ie *introspect.Error
		if errors.As(err, &ie) {
			// The server's text may echo the token: status and code only.
			return res, fmt.Errorf("revoke: status %d", ie.StatusCode)
		}
		return res, errors.New("revoke: failed")
	}
	res.Upstream = "revoked"
	return res, nil
}

// endpoint is OKTA_REVOKE_URL, else the revocation_endpoint the IdP's
// metadata names, read once it answers.
func (r *revoker) endpoint(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.url != "" {
		return r.url, nil
	}
	m, err := introspect.Discover(ctx, r.client.HTTPClient, r.issuer)
	if err != nil {
		return "", err
	}
	if m.RevocationEndpoint == "" {
		return "", errors.New("discover: no revocation_endpoint in the authorization server's metadata (set OKTA_REVOKE_URL)")
	}
	r.url = m.RevocationEndpoint
	return r.url, nil
}
