package app

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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
	// jwksBreaker guards the JWKS endpoint (nil in introspect mode).
	jwksBreaker *breaker.Breaker
}

// run refreshes the keys in the background until ctx ends.
func (t *tokens) run(ctx context.Context) {
	if t.keys != nil {
		go t.keys.Run(ctx)
	}
}

// revokeKey revokes the token whose revocation id (tokenid.Revocation) is
// key in every cache (POST /revoke here, or announced by another replica)
// and keeps it out for d. Every revocation goes through here.
func (t *tokens) revokeKey(key [sha256.Size]byte, d time.Duration) {
	t.cache.RevokeKey(key, d)
	if t.introspect != nil {
		t.introspect.RevokeKey(key, d)
	}
}

// gatewayDeps gives the gateway the introspection of INTROSPECT_PATHS.
func (t *tokens) gatewayDeps(cfg *config.Config, d *gateway.Deps) {
	if t.jwksBreaker != nil {
		// Not required: the keys held keep validating while the JWKS
		// endpoint is down.
		d.Ready = append(d.Ready, gateway.ReadyCheck{Name: "jwks", Check: func(context.Context) string { return t.jwksBreaker.Health() }})
	}
	if t.introspect == nil {
		return
	}
	d.Introspect = t.introspect
	for _, p := range cfg.IntrospectPathRules() {
		d.IntrospectPaths = append(d.IntrospectPaths, gateway.PublicPath{Method: p.Method, Path: p.Path, Prefix: p.Prefix})
	}
}

// requiredAudience is the audience every token must carry, introspected or
// verified as a JWT: the one place both read it (OKTA_AUDIENCE, else
// RESOURCE_URI, RFC 8707; empty: not checked).
func requiredAudience(cfg *config.Config) string { return cfg.RequiredAudience() }

// newIntrospection is the introspection chain: the per-client budget
// (OKTA_MAX_RPS_PER_CLIENT) over the global one (OKTA_MAX_RPS) over the
// breaker over the client. Hybrid mode calls it once: its two caches share
// the budgets and the breaker.
type newIntrospection func(url string) authn.Verifier

// buildTokens makes the verifiers. In jwt and hybrid mode without
// OKTA_JWKS_URL, discovery names the keys (and the introspection endpoint
// when OKTA_INTROSPECT_URL is empty); if it fails at start-up, the keys'
// first fetch asks again, and introspection uses the default endpoint.
//
// shared, when not nil, is the replicas' shared level (REDIS_URL, package
// fleet) behind each cache, for what is introspected: every token in
// introspect mode, in hybrid mode those Hybrid does not verify locally (and
// every token on INTROSPECT_PATHS). A JWT verified locally (jwt mode, and
// hybrid's JWTs of OKTA_ISSUER) stays in this replica's cache: its
// signature check costs less than a Redis round trip and spends no budget.
// Revocations reach every cache all the same (revokeKey).
func buildTokens(ctx context.Context, cfg *config.Config, log *slog.Logger, tel *telemetry, hc *http.Client,
	introspection newIntrospection, shared authn.Shared) (*tokens, error) {
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
		out.jwksBreaker = jwksBreaker
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
		inner = &jwtauth.Verifier{Keys: out.keys, Issuer: strings.TrimSpace(cfg.OktaIssuer), Audience: requiredAudience(cfg),
			Algorithms: algs, Leeway: cfg.JWTLeeway, Typ: cfg.JWTTyp, OnResult: tel.metrics.JWTValidation}
	}
	var err error
	var innerShared authn.Shared // jwt mode: none
	switch cfg.TokenValidation {
	case config.ValidationHybrid:
		in := introspection(introspectURL)
		h := &jwtauth.Hybrid{JWT: inner, Introspect: in, Issuer: strings.TrimSpace(cfg.OktaIssuer)}
		inner = h
		if shared != nil {
			innerShared = jwtauth.SharedIntrospections{Shared: shared, Hybrid: h}
		}
		if len(cfg.IntrospectPathRules()) > 0 {
			// The same introspection answers as the main cache's, under the
			// same keys: the two share the shared level.
			if out.introspect, err = newCache(cfg, log, tel, in, shared); err != nil {
				return nil, err
			}
		}
	case config.ValidationIntrospect:
		inner = introspection(introspectURL)
		innerShared = shared
	}
	if out.cache, err = newCache(cfg, log, tel, inner, innerShared); err != nil {
		return nil, err
	}
	return out, nil
}

// newCache puts v behind a token cache configured by CACHE_*, with shared
// (nil: none) as its second level.
func newCache(cfg *config.Config, log *slog.Logger, tel *telemetry, v authn.Verifier, shared authn.Shared) (*authn.Cache, error) {
	stale := &staleLog{log: log, interval: 10 * time.Second}
	c, err := authn.NewCache(v, authn.CacheSettings{
		Size:         cfg.CacheSize,
		TTL:          cfg.CacheTTL,
		NegativeTTL:  cfg.CacheNegativeTTL,
		Timeout:      cfg.OktaTimeout,
		StaleIfError: cfg.CacheStaleIfError,
		OnStale:      stale.served,
		OnEvict:      tel.metrics.CacheEvicted,
		Shared:       shared,
	})
	if err != nil {
		return nil, fmt.Errorf("CACHE_SIZE: %w", err)
	}
	return c, nil
}

// loadPrivateKey reads OKTA_PRIVATE_KEY_FILE (private_key_jwt): a PEM
// PKCS#8, PKCS#1 (RSA) or SEC 1 (EC) private key; nil when not set. The
// error names the variable, never the key.
func loadPrivateKey(cfg *config.Config) (crypto.Signer, error) {
	if cfg.OktaAuthMethod != config.AuthPrivateKeyJWT || cfg.OktaPrivateKeyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.OktaPrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("OKTA_PRIVATE_KEY_FILE: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("OKTA_PRIVATE_KEY_FILE: no PEM block")
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("OKTA_PRIVATE_KEY_FILE: PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("OKTA_PRIVATE_KEY_FILE: cannot parse the private key")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("OKTA_PRIVATE_KEY_FILE: RSA key of %d bits; at least 2048", k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
		return nil, errors.New("OKTA_PRIVATE_KEY_FILE: EC key on a curve other than P-256, P-384 or P-521")
	}
	return nil, errors.New("OKTA_PRIVATE_KEY_FILE: the key must be RSA or EC")
}
