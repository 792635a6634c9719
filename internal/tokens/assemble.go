// Package tokens assembles the token side that TOKEN_VALIDATION asks for
// (docs/token-validation.md): which verifiers answer, in which order,
// behind which caches, and how a revocation reaches them all. The verifiers
// themselves live in authn (introspection, breaker, budgets, cache) and
// jwtauth (local JWT validation, the hybrid router).
package tokens

import (
	"context"
	"crypto"
	"crypto/sha256"
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

	// privateKey signs the client assertions of private_key_jwt (nil:
	// none), read by Build from OKTA_PRIVATE_KEY_FILE.
	privateKey crypto.Signer
}

// Tokens are the token verifiers TOKEN_VALIDATION asks for.
type Tokens struct {
	s Settings
	// lookup answers the gateway (gateway.Deps.Tokens): cache, or in
	// hybrid mode with INTROSPECT_PATHS cache then introspect on them.
	lookup authn.Tokens
	// cache answers the gateway: introspection, local JWT validation, or
	// the hybrid of the two, behind the token cache.
	cache *authn.Cache
	// introspect is the introspection alone behind a cache of its own, for
	// INTROSPECT_PATHS; nil unless hybrid mode has such paths.
	introspect *authn.Cache
	// keys is the issuer's JWKS (nil in introspect mode); Run refreshes it.
	keys *jwtauth.Keys
	// jwksBreaker guards the JWKS endpoint (nil in introspect mode).
	jwksBreaker *breaker.Breaker
	// Streams are the gateway's open streams and tunnels: a revocation
	// ends those of the token (nil: none to end).
	Streams *gateway.Streams
}

// Run refreshes the keys in the background until ctx ends.
func (t *Tokens) Run(ctx context.Context) {
	if t.keys != nil {
		go t.keys.Run(ctx)
	}
}

// Cache is the token cache that answers the gateway.
func (t *Tokens) Cache() *authn.Cache { return t.cache }

// RevokeKey revokes the token whose revocation id (tokenid.Revocation) is
// key in every cache (POST /revoke here, or announced by another replica)
// and keeps it out for d. Every revocation goes through here.
func (t *Tokens) RevokeKey(key [sha256.Size]byte, d time.Duration) {
	t.cache.RevokeKey(key, d)
	if t.introspect != nil {
		t.introspect.RevokeKey(key, d)
	}
	if t.Streams != nil {
		t.Streams.Revoked(key) // within the second, not at the next re-check
	}
}

// GatewayDeps gives the gateway the token lookup and the readiness checks
// of the keys.
func (t *Tokens) GatewayDeps(d *gateway.Deps) {
	d.Tokens = t.lookup
	d.Ready = append(d.Ready, t.readyChecks(t.s.Config.TokenValidation)...)
}

// readyChecks are the keys' entries of /readyz (none in introspect mode):
// "jwks", the JWKS endpoint's breaker, never required (the keys held keep
// validating while the endpoint is down); "signing_keys", whether a key
// set was ever fetched, required in jwt mode, where no token can be
// valid until then (in hybrid mode introspection still answers).
func (t *Tokens) readyChecks(mode string) []gateway.ReadyCheck {
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

// client is an IdP client authenticated as OKTA_AUTH_METHOD says: the
// introspection's at url, and POST /revoke's (REVOKE_UPSTREAM).
func (s *Settings) client(url string) *introspect.Client {
	cfg := s.Config
	return &introspect.Client{
		URL:          url,
		ClientID:     cfg.OktaClientID,
		ClientSecret: cfg.OktaClientSecret,
		AuthMethod:   cfg.OktaAuthMethod,
		PrivateKey:   s.privateKey,
		KeyID:        cfg.OktaPrivateKeyID,
		HTTPClient:   s.IdP,

		RequestHeader: requestid.SetHeader,
	}
}

// introspection is the introspection chain: the per-client budget
// (OKTA_MAX_RPS_PER_CLIENT) over the global one (OKTA_MAX_RPS) over the
// breaker over the client. Hybrid mode calls it once: its two caches share
// the budgets and the breaker.
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

// Build makes the verifiers. In jwt and hybrid mode without
// OKTA_JWKS_URL, discovery names the keys (and the introspection endpoint
// when OKTA_INTROSPECT_URL is empty); if it fails at start-up, the keys'
// first fetch asks again, and introspection uses the default endpoint.
//
// The shared tier (Settings.Tier, REDIS_URL, package fleet), when set, is
// the second level behind each cache, for what is introspected: every
// token in introspect mode, in hybrid mode those Hybrid does not verify
// locally (and every token on INTROSPECT_PATHS). A JWT verified locally
// (jwt mode, and hybrid's JWTs of OKTA_ISSUER) stays in this replica's
// cache: its signature check costs less than a Redis round trip and spends
// no budget. Revocations reach every cache all the same (RevokeKey).
func Build(ctx context.Context, s Settings) (*Tokens, error) {
	cfg, log, hc := s.Config, s.Log, s.JWKS
	var err error
	if s.privateKey, err = loadPrivateKey(cfg); err != nil {
		return nil, err
	}
	var shared authn.Shared // no nil *fleet.Tier in an interface
	if s.Tier != nil {
		shared = s.Tier
	}
	out := &Tokens{s: s}
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
			OpenTimeout: cfg.OktaBreakerOpenTimeout, IsFailure: authn.IsUpstreamFailure, OnStateChange: s.OnBreakerChange})
		s.Metrics.WatchBreaker(jwksBreaker)
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
				s.Metrics.JWKSFetch(result)
				if err != nil {
					log.Warn("JWKS fetch failed; keeping the keys held", "error", err.Error())
				}
			},
		})
		algs := make([]jose.SignatureAlgorithm, 0, len(cfg.Algorithms()))
		for _, a := range cfg.Algorithms() {
			algs = append(algs, jose.SignatureAlgorithm(a))
		}
		inner = &jwtauth.Verifier{Keys: out.keys, Issuer: strings.TrimSpace(cfg.OktaIssuer), Audience: cfg.RequiredAudience(),
			Algorithms: algs, Leeway: cfg.JWTLeeway, Typ: cfg.JWTTyp, OnResult: s.Metrics.JWTValidation}
	}
	var innerShared authn.Shared // jwt mode: none
	switch cfg.TokenValidation {
	case config.ValidationHybrid:
		in := s.introspection(introspectURL)
		h := &jwtauth.Hybrid{JWT: inner, Introspect: in, Issuer: strings.TrimSpace(cfg.OktaIssuer)}
		inner = h
		if shared != nil {
			innerShared = jwtauth.SharedIntrospections{Shared: shared, Hybrid: h}
		}
		if len(cfg.IntrospectPathRules) > 0 {
			// The same introspection answers as the main cache's, under the
			// same keys: the two share the shared level.
			if out.introspect, err = s.newCache(in, shared); err != nil {
				return nil, err
			}
		}
	case config.ValidationIntrospect:
		inner = s.introspection(introspectURL)
		innerShared = shared
	}
	if out.cache, err = s.newCache(inner, innerShared); err != nil {
		return nil, err
	}
	out.lookup = authn.Cached{Cache: out.cache}
	if out.introspect != nil {
		// Verify locally, then introspect on these paths.
		out.lookup = &jwtauth.IntrospectOnPaths{Tokens: out.lookup, Introspect: authn.Cached{Cache: out.introspect},
			Paths: pathrule.Generous(cfg.IntrospectPathRules)}
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
