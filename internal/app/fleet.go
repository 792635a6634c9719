package app

// Several replicas (docs/fleet.md): the shared tier on Redis (REDIS_URL).

import (
	"fmt"
	"log/slog"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/fleet"
)

// newTier connects the shared tier when REDIS_URL is set (nil otherwise).
// The token caches it hands other replicas' revocations to are given at
// Start, once built over it.
func newTier(cfg *config.Config, log *slog.Logger, tel *telemetry, idp *breaker.Breaker) (*fleet.Tier, error) {
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
