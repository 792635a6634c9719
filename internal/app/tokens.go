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
	"github.com/authgate/authgate/internal/lograte"
	"github.com/authgate/authgate/internal/requestid"
	"github.com/authgate/authgate/pkg/introspect"
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
	// streams are the gateway's open streams and tunnels: a revocation
	// ends those of the token (nil: none to end).
	streams *gateway.Streams
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
	if t.streams != nil {
		t.streams.Revoked(key) // within the second, not at the next re-check
	}
}

// gatewayDeps gives the gateway the readiness checks of the keys and the
// introspection of INTROSPECT_PATHS.
func (t *tokens) gatewayDeps(cfg *config.Config, d *gateway.Deps) {
	d.Ready = append(d.Ready, t.readyChecks(cfg.TokenValidation)...)
	if t.introspect == nil {
		return
	}
	d.Introspect = t.introspect
	d.IntrospectPaths = cfg.IntrospectPathRules()
}

// readyChecks are the keys' entries of /readyz (none in introspect mode):
// "jwks", the JWKS endpoint's breaker, never required (the keys held keep
// validating while the endpoint is down); "signing_keys", whether a key
// set was ever fetched, required in jwt mode, where no token can be
// valid until then (in hybrid mode introspection still answers).
func (t *tokens) readyChecks(mode string) []gateway.ReadyCheck {
	if t.keys == nil {
		return nil
	}
	return []gateway.ReadyCheck{
		{Name: "jwks", Check: func(context.Context) string { return t.jwksBreaker.Health() }},
		{Name: "signing_keys", Required: mode == config.ValidationJWT, Check: func(context.Context) string {
			if t.keys.Held() {
				return "ok"
			}
			return "none fetched yet"
		}},
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
	var jwksURL string
	if cfg.ValidatesJWT() {
		jwksURL = cfg.OktaJWKSURL
		// discover names the JWKS endpoint, and reports what it refused.
		discover := func(ctx context.Context) (*introspect.Metadata, string, error) {
			m, err := introspect.Discover(ctx, hc, cfg.OktaIssuer)
			switch {
			case err != nil:
				return nil, "", err
			case m.Refused != nil:
				log.Warn("authorization server metadata names an endpoint authgate refuses; set it explicitly (OKTA_JWKS_URL, OKTA_INTROSPECT_URL, OKTA_REVOKE_URL) to override",
					"issuer", cfg.OktaIssuer, "error", m.Refused.Error())
			}
			if m.JWKSURI == "" {
				return m, "", errors.New("discover: the authorization server's metadata names no usable jwks_uri (set OKTA_JWKS_URL)")
			}
			return m, m.JWKSURI, nil
		}
		if jwksURL == "" {
			dctx, cancel := context.WithTimeout(ctx, cfg.OktaTimeout)
			m, url, err := discover(dctx)
			cancel()
			if err != nil {
				log.Warn("authorization server discovery failed; asking again on the first key fetch",
					"issuer", cfg.OktaIssuer, "error", err.Error())
			}
			jwksURL = url
			if m != nil && cfg.OktaIntrospectURL == "" && m.IntrospectionEndpoint != "" {
				introspectURL = m.IntrospectionEndpoint
			}
		}
		jwksBreaker := breaker.New(breaker.Settings{Name: "jwks", Failures: cfg.OktaBreakerFailures,
			OpenTimeout: cfg.OktaBreakerOpenTimeout, IsFailure: authn.IsUpstreamFailure, OnStateChange: tel.breakerChange})
		tel.metrics.WatchBreaker(jwksBreaker)
		out.jwksBreaker = jwksBreaker
		out.keys = jwtauth.NewKeys(jwtauth.KeySettings{
			URL: jwksURL, HTTPClient: hc, Timeout: cfg.OktaTimeout, Breaker: jwksBreaker,
			Discover: func(ctx context.Context) (string, error) {
				_, url, err := discover(ctx)
				if err == nil {
					log.Info("JWKS endpoint discovered", "jwks_url", url)
				}
				return url, err
			},
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
	logEndpoints(log, cfg, jwksURL, introspectURL)
	return out, nil
}

// logEndpoints names, once at start-up, the endpoints token validation
// uses: configured, discovered, or the default introspection endpoint.
func logEndpoints(log *slog.Logger, cfg *config.Config, jwksURL, introspectURL string) {
	var attrs []any
	if cfg.ValidatesJWT() {
		if jwksURL == "" {
			jwksURL = "(discovered on the first key fetch)"
		}
		attrs = append(attrs, "jwks_url", jwksURL)
	}
	if cfg.TokenValidation != config.ValidationJWT {
		attrs = append(attrs, "introspection_url", introspectURL)
	}
	log.Info("token validation endpoints", append([]any{"mode", cfg.TokenValidation}, attrs...)...)
}

// newCache puts v behind a token cache configured by CACHE_*, with shared
// (nil: none) as its second level.
func newCache(cfg *config.Config, log *slog.Logger, tel *telemetry, v authn.Verifier, shared authn.Shared) (*authn.Cache, error) {
	// One line per lograte.Every while answers are served stale: an outage
	// must not write a line per request.
	var stale lograte.Limit
	c, err := authn.NewCache(v, authn.CacheSettings{
		Size:         cfg.CacheSize,
		TTL:          cfg.CacheTTL,
		NegativeTTL:  cfg.CacheNegativeTTL,
		Timeout:      cfg.OktaTimeout,
		StaleIfError: cfg.CacheStaleIfError,
		OnStale: func() {
			stale.Log(log, slog.LevelWarn, time.Now(), "served stale introspection answers: the authorization server is unavailable (CACHE_STALE_IF_ERROR)")
		},
		OnEvict: tel.metrics.CacheEvicted,
		Shared:  shared,
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
