package app

// Several replicas (README, "Running several replicas"): the
// shared tier on Redis (REDIS_URL) and push revocation (ADMIN_API_TOKEN).

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/fleet"
	"github.com/authgate/authgate/internal/gateway"
	"github.com/authgate/authgate/internal/tokenid"
	"github.com/authgate/authgate/pkg/introspect"
)

// newTier connects the shared tier when REDIS_URL is set (nil otherwise).
// The caches it hands revocations to are set once built (late.tokens),
// before Start.
func newTier(cfg *config.Config, log *slog.Logger, tel *telemetry, idp *breaker.Breaker, late *lateTokens) (*fleet.Tier, error) {
	tel.metrics.Fleet(cfg.Shared())
	if !cfg.Shared() {
		return nil, nil
	}
	if cfg.PlainRedisNonLoopback() {
		log.Warn("REDIS_URL is redis:// (no TLS) to a host that is not loopback: whoever is on the path sees and can replay the traffic; use rediss://")
	}
	rdb, err := fleet.Dial(cfg.RedisURL, cfg.RedisTimeout)
	if err != nil {
		return nil, err
	}
	tier, err := fleet.New(fleet.Settings{
		Client:          rdb,
		Key:             cfg.FleetKey,
		PreviousKey:     cfg.FleetKeyPrev,
		Prefix:          cfg.RedisKeyPrefix,
		Timeout:         cfg.RedisTimeout,
		LockTTL:         cfg.OktaTimeout,
		Tombstone:       cfg.CacheTTL,
		Observer:        tel.metrics,
		Log:             log,
		OnRevoked:       func(key [sha256.Size]byte) { late.tokens.revokeKey(key, cfg.CacheTTL) },
		OnHold:          idp.Hold,
		OnBreakerChange: tel.breakerChange,
	})
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("FLEET_KEY: %w", err)
	}
	tel.metrics.WatchBreaker(tier.Breaker())
	return tier, nil
}

// lateTokens are the token caches, for the callbacks made before they exist.
type lateTokens struct{ tokens *tokens }

// revoker does POST /revoke's work: this replica's caches, the fleet's
// (tier, when set), and the IdP's (REVOKE_UPSTREAM).
type revoker struct {
	tokens    *tokens
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

func newRevoker(cfg *config.Config, toks *tokens, tier *fleet.Tier, client *introspect.Client, tel *telemetry) *revoker {
	return &revoker{tokens: toks, tier: tier, tombstone: cfg.CacheTTL, onRevoke: tel.metrics.Revocation,
		upstream: cfg.RevokeUpstream, client: client, issuer: cfg.OktaIssuer, timeout: cfg.OktaTimeout, url: cfg.OktaRevokeURL}
}

// revoke implements gateway.Deps' Revoke. It keys by the token's
// revocation id (tokenid), so that every spelling of a JWS is revoked.
func (r *revoker) revoke(ctx context.Context, token, hint string) (gateway.Revocation, error) {
	key := tokenid.Revocation(token)
	r.tokens.revokeKey(key, r.tombstone)
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
