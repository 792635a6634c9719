package app

// Several replicas (docs/fleet.md): the shared tier on Redis (REDIS_URL).

import (
	"fmt"
	"log/slog"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/fleet"
)

// newTier connects iss's shared tier when REDIS_URL is set (nil
// otherwise): each issuer has its own, in its own key space, with its own
// channel and breaker (the primary's as before ISSUERS existed). The token
// caches it hands other replicas' revocations to are given at Start, once
// built over it.
func newTier(cfg *config.Config, iss *config.Issuer, log *slog.Logger, tel *telemetry, idp *breaker.Breaker) (*fleet.Tier, error) {
	if !cfg.Shared() {
		return nil, nil
	}
	name := ""
	if !iss.IsPrimary() {
		name = iss.Name
	}
	rdb, err := fleet.Dial(cfg.RedisURL, cfg.RedisTimeout)
	if err != nil {
		return nil, err
	}
	tier, err := fleet.New(fleet.Settings{
		Client:          rdb,
		Key:             cfg.FleetKey,
		PreviousKey:     cfg.FleetKeyPrev,
		Issuer:          name,
		Prefix:          cfg.RedisKeyPrefix,
		Timeout:         cfg.RedisTimeout,
		LockTTL:         iss.Timeout,
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
