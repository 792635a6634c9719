package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/gateway"
	"github.com/authgate/authgate/internal/jwtauth"
	"github.com/authgate/authgate/internal/requestid"
)

// tokens are the token verifiers TOKEN_VALIDATION asks for (README, "Token
// validation").
type tokens struct {
	// cache answers the gateway: introspection, local JWT validation, or
	// the hybrid of the two, behind the token cache.
	cache *authn.Cache
	// introspect is the introspection alone behind a cache of its own, for
	// INTROSPECT_PATHS; nil unless hybrid mode has such paths.
	introspect *authn.Cache
	// keys is the issuer's JWKS (nil in introspect mode); run refreshes it.
	keys *jwtauth.Keys
}

// run refreshes the keys in the background until ctx ends.
func (t *tokens) run(ctx context.Context) {
	if t.keys != nil {
		go t.keys.Run(ctx)
	}
}

// gatewayDeps gives the gateway the introspection of INTROSPECT_PATHS.
func (t *tokens) gatewayDeps(cfg *config.Config, d *gateway.Deps) {
	if t.introspect == nil {
		return
	}
	d.Introspect = t.introspect
	for _, p := range cfg.IntrospectPathRules() {
		d.IntrospectPaths = append(d.IntrospectPaths, gateway.PublicPath{Method: p.Method, Path: p.Path, Prefix: p.Prefix})
	}
}

// newIntrospection is the introspection chain: rate limit (OKTA_MAX_RPS)
// over the breaker over the client.
type newIntrospection func(url string) authn.Verifier

// buildTokens makes the verifiers. In jwt and hybrid mode without
// OKTA_JWKS_URL, discovery names the keys (and the introspection endpoint
// when OKTA_INTROSPECT_URL is empty); if it fails at start-up, the keys'
// first fetch asks again, and introspection uses the default endpoint.
func buildTokens(ctx context.Context, cfg *config.Config, log *slog.Logger, tel *telemetry, hc *http.Client,
	introspection newIntrospection) (*tokens, error) {
	out := &tokens{}
	introspectURL := cfg.IntrospectURL()
	var inner authn.Verifier
	if cfg.ValidatesJWT() {
		jwksURL := cfg.OktaJWKSURL
		discover := func(ctx context.Context) (string, error) {
			m, err := jwtauth.Discover(ctx, hc, cfg.OktaIssuer)
			if err != nil {
				return "", err
			}
			return m.JWKSURI, nil
		}
		if jwksURL == "" {
			dctx, cancel := context.WithTimeout(ctx, cfg.OktaTimeout)
			m, err := jwtauth.Discover(dctx, hc, cfg.OktaIssuer)
			cancel()
			switch {
			case err != nil:
				log.Warn("authorization server discovery failed; asking again on the first key fetch",
					"issuer", cfg.OktaIssuer, "error", err.Error())
			default:
				jwksURL = m.JWKSURI
				if cfg.OktaIntrospectURL == "" && m.IntrospectionEndpoint != "" {
					introspectURL = m.IntrospectionEndpoint
				}
			}
		}
		jwksBreaker := breaker.New(breaker.Settings{Name: "jwks", Failures: cfg.OktaBreakerFailures,
			OpenTimeout: cfg.OktaBreakerOpenTimeout, IsFailure: authn.IsUpstreamFailure, OnStateChange: tel.breakerChange})
		tel.metrics.WatchBreaker(jwksBreaker)
		out.keys = jwtauth.NewKeys(jwtauth.KeySettings{
			URL: jwksURL, Discover: discover, HTTPClient: hc, Timeout: cfg.OktaTimeout, Breaker: jwksBreaker,
			RequestHeader: requestid.SetHeader,
			OnFetch: func(result string, err error) {
				tel.metrics.JWKSFetch(result)
				if err != nil {
					log.Warn("JWKS fetch failed; keeping the keys held", "error", err.Error())
				}
			},
		})
		algs := make([]jose.SignatureAlgorithm, 0, len(cfg.Algorithms()))
		for _, a := range cfg.Algorithms() {
			algs = append(algs, jose.SignatureAlgorithm(a))
		}
		inner = &jwtauth.Verifier{Keys: out.keys, Issuer: strings.TrimSpace(cfg.OktaIssuer), Audience: cfg.OktaAudience,
			Algorithms: algs, Leeway: cfg.JWTLeeway, Typ: cfg.JWTTyp, OnResult: tel.metrics.JWTValidation}
	}
	var err error
	switch cfg.TokenValidation {
	case config.ValidationHybrid:
		in := introspection(introspectURL)
		inner = &jwtauth.Hybrid{JWT: inner, Introspect: in, Issuer: strings.TrimSpace(cfg.OktaIssuer)}
		if len(cfg.IntrospectPathRules()) > 0 {
			if out.introspect, err = newCache(cfg, log, tel, in); err != nil {
				return nil, err
			}
		}
	case config.ValidationIntrospect:
		inner = introspection(introspectURL)
	}
	if out.cache, err = newCache(cfg, log, tel, inner); err != nil {
		return nil, err
	}
	return out, nil
}

// newCache puts v behind a token cache configured by CACHE_*.
func newCache(cfg *config.Config, log *slog.Logger, tel *telemetry, v authn.Verifier) (*authn.Cache, error) {
	stale := &staleLog{log: log, interval: 10 * time.Second}
	c, err := authn.NewCache(v, authn.CacheSettings{
		Size:         cfg.CacheSize,
		TTL:          cfg.CacheTTL,
		NegativeTTL:  cfg.CacheNegativeTTL,
		Timeout:      cfg.OktaTimeout,
		StaleIfError: cfg.CacheStaleIfError,
		OnStale:      stale.served,
		OnEvict:      tel.metrics.CacheEvicted,
	})
	if err != nil {
		return nil, fmt.Errorf("CACHE_SIZE: %w", err)
	}
	return c, nil
}
