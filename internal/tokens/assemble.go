// Package tokens assembles the token side that TOKEN_VALIDATION asks for
// (docs/token-validation.md): which verifiers answer a token in each mode,
// in which order, behind which caches, and how a revocation reaches them
// all (revoke.go). This file answers "how is a token validated?"; the
// verifiers themselves live in authn (introspection, breaker, budgets,
// cache) and jwtauth (local JWT validation, the hybrid router,
// IntrospectOnPaths).
package tokens

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/fleet"
	"github.com/authgate/authgate/internal/gateway"
	"github.com/authgate/authgate/internal/jwtauth"
	"github.com/authgate/authgate/internal/lograte"
	"github.com/authgate/authgate/internal/metrics"
	"github.com/authgate/authgate/internal/pathrule"
	"github.com/authgate/authgate/internal/requestid"
	"github.com/authgate/authgate/pkg/introspect"
)

// perClientLimiters bounds the clients OKTA_MAX_RPS_PER_CLIENT remembers
// (about 200 bytes each): a flood of addresses evicts the oldest, which
// then start again with a full burst, under the global budget still.
const perClientLimiters = 16384

// Settings are what the token side is built from.
type Settings struct {
	Config  *config.Config
	Log     *slog.Logger
	Metrics *metrics.Metrics
	// OnBreakerChange is told of every breaker transition (the JWKS one's).
	OnBreakerChange func(name string, from, to breaker.State)
	// IdP calls the authorization server: introspection and revocation.
	IdP *http.Client
	// JWKS fetches the signing keys and the discovery document.
	JWKS *http.Client
	// IdPBreaker guards the introspection endpoint.
	IdPBreaker *breaker.Breaker
	// Tier is the shared tier on Redis (package fleet); nil without REDIS_URL.
	Tier *fleet.Tier
	// Streams are the gateway's open streams and tunnels, which every
	// revocation ends (nil: none).
	Streams *gateway.Streams

	// privateKey signs the client assertions of private_key_jwt (nil:
	// none), read by Build from OKTA_PRIVATE_KEY_FILE.
	privateKey crypto.Signer
}

// Tokens is the token side: what answers the gateway, the caches a
// revocation empties, the keys Run refreshes.
type Tokens struct {
	s Settings
	// lookup answers the gateway (Lookup).
	lookup authn.Tokens
	// cache is the token cache in front of every mode's verifier.
	cache *authn.Cache
	// introspect is hybrid mode's second cache, over the introspection
	// alone, for INTROSPECT_PATHS; nil otherwise.
	introspect *authn.Cache
	// keys is the issuer's JWKS, jwksBreaker guards its endpoint (both nil
	// in introspect mode).
	keys        *jwtauth.Keys
	jwksBreaker *breaker.Breaker
}

// Build assembles the token side. How a token is validated, by mode
// (TOKEN_VALIDATION):
//
//   - introspect: cache → introspection (budgets → breaker → RFC 7662
//     call), the shared tier (REDIS_URL) behind the cache.
//   - jwt: cache → jwtVerifier (signature by a key of the issuer's JWKS,
//     then the claims), this replica's cache only: a signature check costs
//     less than a Redis round trip and spends no budget.
//   - hybrid: cache → hybrid: a JWT of OKTA_ISSUER goes to jwtVerifier,
//     anything else to introspection (and only those to the shared tier).
//     With INTROSPECT_PATHS, introspectOnPaths on top: on those paths a
//     token verified as a JWT is introspected anew, through a second cache
//     over the same introspection (budgets and breaker shared).
//
// Revocations reach every cache, and the open streams, through RevokeKey.
func Build(ctx context.Context, s Settings) (*Tokens, error) {
	cfg := s.Config
	var err error
	if s.privateKey, err = loadPrivateKey(cfg); err != nil {
		return nil, err
	}
	t := &Tokens{s: s}
	jwksURL, introspectURL := s.endpoints(ctx)
	switch cfg.TokenValidation {
	case config.ValidationIntrospect:
		t.cache, err = s.newCache(s.introspection(introspectURL), s.shared())
	case config.ValidationJWT:
		t.cache, err = s.newCache(t.jwtVerifier(jwksURL), nil)
	case config.ValidationHybrid:
		in := s.introspection(introspectURL)
		h := hybrid(t.jwtVerifier(jwksURL), in, cfg.OktaIssuer)
		if t.cache, err = s.newCache(h, s.sharedIntrospections(h)); err != nil {
			return nil, err
		}
		if len(cfg.IntrospectPathRules) > 0 {
			// The same introspection answers as the main cache's, under the
			// same keys: the two share the shared tier.
			t.introspect, err = s.newCache(in, s.shared())
		}
	}
	if err != nil {
		return nil, err
	}
	t.lookup = authn.Cached{Cache: t.cache}
	if t.introspect != nil {
		t.lookup = introspectOnPaths(t.lookup, t.introspect, cfg.IntrospectPathRules)
	}
	// The sender constraint (DPoP, certificate-bound tokens) on top of
	// every mode's lookup: its refusals depend on the request, never cached.
	if t.lookup, err = s.bound(t.lookup); err != nil {
		return nil, err
	}
	s.Metrics.WatchCache(t.cache.Len)
	logEndpoints(s.Log, cfg, jwksURL, introspectURL)
	return t, nil
}

// introspection is the introspection chain: the per-client budget
// (OKTA_MAX_RPS_PER_CLIENT) over the global one (OKTA_MAX_RPS; the
// fleet's with Redis) over the breaker over the client. Hybrid mode calls
// it once: its two caches share the budgets and the breaker.
func (s *Settings) introspection(url string) authn.Verifier {
	cfg, m, tier := s.Config, s.Metrics, s.Tier
	guarded := &authn.Guarded{
		Next: &authn.Introspection{Client: s.client(url), Audience: cfg.RequiredAudience(),
			OnResult: m.Introspection, OnRateLimit: m.RateLimit, Log: s.Log,
			PrivateKeyJWT: cfg.OktaAuthMethod == config.AuthPrivateKeyJWT},
		Breaker: s.IdPBreaker,
	}
	if tier != nil {
		guarded.OnHold = tier.PublishHold // every replica holds
	}
	var v authn.Verifier = guarded
	if cfg.OktaMaxRPS > 0 {
		// Under the cache (cached tokens never spend the budget), above the
		// breaker (our own refusals are not upstream failures).
		rl := authn.NewRateLimited(v, cfg.OktaMaxRPS, nil)
		rl.OnRefuse = m.GlobalBudgetRejected
		if tier != nil {
			// One budget for the fleet; this replica's own when Redis is not there.
			b := tier.NewBudget(v, rl, cfg.OktaMaxRPS)
			b.OnRefuse = m.GlobalBudgetRejected
			v = b
		} else {
			v = rl
		}
	}
	if cfg.OktaMaxRPSPerClient > 0 {
		// Above the global budget: a client past its own limit spends none
		// of everyone's.
		cl := authn.NewClientLimited(v, cfg.OktaMaxRPSPerClient, perClientLimiters, nil)
		cl.OnRefuse = m.ClientBudgetRejected
		v = cl
	}
	return v
}

// jwtVerifier is local JWT validation (go-jose): the signature by a key of
// the issuer's JWKS at jwksURL (refreshed by Run; discovered on the first
// fetch when empty), then iss, aud, exp, nbf, typ and the algorithms.
func (t *Tokens) jwtVerifier(jwksURL string) authn.Verifier {
	s, cfg := &t.s, t.s.Config
	t.jwksBreaker = breaker.New(breaker.Settings{Name: "jwks", Failures: cfg.OktaBreakerFailures,
		OpenTimeout: cfg.OktaBreakerOpenTimeout, IsFailure: authn.IsUpstreamFailure, OnStateChange: s.OnBreakerChange})
	s.Metrics.WatchBreaker(t.jwksBreaker)
	t.keys = jwtauth.NewKeys(jwtauth.KeySettings{
		URL: jwksURL, HTTPClient: s.JWKS, Timeout: cfg.OktaTimeout, Breaker: t.jwksBreaker,
		Discover: func(ctx context.Context) (string, error) {
			m, err := s.discover(ctx)
			if err != nil {
				return "", err
			}
			s.Log.Info("JWKS endpoint discovered", "jwks_url", m.JWKSURI)
			return m.JWKSURI, nil
		},
		RequestHeader: requestid.SetHeader,
		OnFetch: func(result string, err error) {
			s.Metrics.JWKSFetch(result)
			if err != nil {
				s.Log.Warn("JWKS fetch failed; keeping the keys held", "error", err.Error())
			}
		},
	})
	algs := make([]jose.SignatureAlgorithm, 0, len(cfg.Algorithms()))
	for _, a := range cfg.Algorithms() {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	return &jwtauth.Verifier{Keys: t.keys, Issuer: strings.TrimSpace(cfg.OktaIssuer), Audience: cfg.RequiredAudience(),
		Algorithms: algs, Leeway: cfg.JWTLeeway, Typ: cfg.JWTTyp, OnResult: s.Metrics.JWTValidation}
}

// hybrid routes a token: a JWT of issuer to jwt, whose verdict is final;
// anything else (opaque, or another issuer's) to introspection.
func hybrid(jwt, introspection authn.Verifier, issuer string) *jwtauth.Hybrid {
	return &jwtauth.Hybrid{JWT: jwt, Introspect: introspection, Issuer: strings.TrimSpace(issuer)}
}

// introspectOnPaths is "verify locally, then introspect on these paths"
// (INTROSPECT_PATHS, matched generously; on /verify by an overridden
// method too): a token tokens validated as a JWT is looked up anew in
// introspect on rules.
func introspectOnPaths(tokens authn.Tokens, introspect *authn.Cache, rules []pathrule.Rule) authn.Tokens {
	return &jwtauth.IntrospectOnPaths{Tokens: tokens, Introspect: authn.Cached{Cache: introspect}, Paths: pathrule.Generous(rules)}
}

// newCache puts v behind a token cache configured by CACHE_*, with shared
// (nil: none) as its second level.
func (s *Settings) newCache(v authn.Verifier, shared authn.Shared) (*authn.Cache, error) {
	cfg, log := s.Config, s.Log
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
		OnEvict: s.Metrics.CacheEvicted,
		Shared:  shared,
	})
	if err != nil {
		return nil, fmt.Errorf("CACHE_SIZE: %w", err)
	}
	return c, nil
}

// shared is the shared tier as a cache's second level; nil without Redis
// (no nil *fleet.Tier in an interface).
func (s *Settings) shared() authn.Shared {
	if s.Tier == nil {
		return nil
	}
	return s.Tier
}

// sharedIntrospections is the shared tier for the tokens h introspects
// only: a JWT it verifies locally stays in this replica's cache.
func (s *Settings) sharedIntrospections(h *jwtauth.Hybrid) authn.Shared {
	if s.Tier == nil {
		return nil
	}
	return jwtauth.SharedIntrospections{Shared: s.Tier, Hybrid: h}
}

// endpoints are the JWKS and introspection URLs: OKTA_JWKS_URL and
// OKTA_INTROSPECT_URL (or its default), else, in jwt and hybrid modes, what
// the issuer's metadata names. A discovery that fails at start-up leaves
// the JWKS URL empty (the first key fetch asks again) and the default
// introspection endpoint.
func (s *Settings) endpoints(ctx context.Context) (jwksURL, introspectURL string) {
	cfg := s.Config
	jwksURL, introspectURL = cfg.OktaJWKSURL, cfg.IntrospectURL()
	if !cfg.ValidatesJWT() || jwksURL != "" {
		return jwksURL, introspectURL
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.OktaTimeout)
	defer cancel()
	m, err := s.discover(dctx)
	if err != nil {
		s.Log.Warn("authorization server discovery failed; asking again on the first key fetch",
			"issuer", cfg.OktaIssuer, "error", err.Error())
	}
	if m != nil {
		jwksURL = m.JWKSURI
		if cfg.OktaIntrospectURL == "" && m.IntrospectionEndpoint != "" {
			introspectURL = m.IntrospectionEndpoint
		}
	}
	return jwksURL, introspectURL
}

// discover reads the issuer's metadata, and reports what it refused; an
// error when it names no usable jwks_uri (the metadata is returned all the
// same, for its introspection endpoint).
func (s *Settings) discover(ctx context.Context) (*introspect.Metadata, error) {
	cfg := s.Config
	m, err := introspect.Discover(ctx, s.JWKS, cfg.OktaIssuer)
	switch {
	case err != nil:
		return nil, err
	case m.Refused != nil:
		s.Log.Warn("authorization server metadata names an endpoint authgate refuses; set it explicitly (OKTA_JWKS_URL, OKTA_INTROSPECT_URL, OKTA_REVOKE_URL) to override",
			"issuer", cfg.OktaIssuer, "error", m.Refused.Error())
	}
	if m.JWKSURI == "" {
		return m, errors.New("discover: the authorization server's metadata names no usable jwks_uri (set OKTA_JWKS_URL)")
	}
	return m, nil
}

// Lookup implements gateway.Tokens: the request's token, as its mode
// validates it.
func (t *Tokens) Lookup(ctx context.Context, r *authn.Request, raw string) (*authn.Token, authn.Lookup, error) {
	return t.lookup.Lookup(ctx, r, raw)
}

// Run refreshes the keys in the background until ctx ends.
func (t *Tokens) Run(ctx context.Context) {
	if t.keys != nil {
		go t.keys.Run(ctx)
	}
}

// ReadyChecks are the keys' entries of /readyz (none in introspect mode):
// "jwks", the JWKS endpoint's breaker, never required (the keys held keep
// validating while the endpoint is down); "signing_keys", whether a key
// set was ever fetched, required in jwt mode, where no token can be
// valid until then (in hybrid mode introspection still answers).
func (t *Tokens) ReadyChecks() []gateway.ReadyCheck {
	if t.keys == nil {
		return nil
	}
	return []gateway.ReadyCheck{
		{Name: "jwks", Check: func(context.Context) string { return t.jwksBreaker.Health() }},
		{Name: "signing_keys", Required: t.s.Config.TokenValidation == config.ValidationJWT, Check: func(context.Context) string {
			if t.keys.Held() {
				return "ok"
			}
			return "none fetched yet"
		}},
	}
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
