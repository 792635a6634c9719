package app

// Several replicas (docs/fleet.md): the shared tier on Redis (REDIS_URL).

import (
	"crypto/sha256"
	"fmt"
	"log/slog"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/fleet"
	"github.com/authgate/authgate/internal/tokens"
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
		OnRevoked:       func(key [sha256.Size]byte) { late.tokens.RevokeKey(key, cfg.CacheTTL) },
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
type lateTokens struct{ tokens *tokens.Tokens }
