// Package tokens assembles the token side that TOKEN_VALIDATION asks for
// (docs/token-validation.md): which issuer a token goes to (ISSUERS,
// docs/issuers.md), which verifiers answer it in that issuer's mode, in
// which order, behind which caches, and how a revocation reaches them all
// (revoke.go). This file answers "how is a token validated?"; the
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
	"github.com/authgate/authgate/internal/fault"
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
	// OnBreakerChange is told of every breaker transition (the JWKS ones').
	OnBreakerChange func(name string, from, to breaker.State)
	// Issuers are the Parts of every issuer, by name (config.PrimaryIssuer
	// for the primary's); each must be there.
	Issuers map[string]Parts
	// Streams are the gateway's open streams and tunnels, which every
	// revocation ends (nil: none).
	Streams *gateway.Streams
}

// Parts are what one issuer's chain is built on: its own, so that one
// authorization server's outage, 429 hold or key space never touches
// another's tokens.
type Parts struct {
	// IdP calls the authorization server: introspection and revocation.
	IdP *http.Client
	// JWKS fetches the signing keys and the discovery document.
	JWKS *http.Client
	// Breaker guards the introspection endpoint.
	Breaker *breaker.Breaker
	// Tier is the shared tier on Redis (package fleet), in the issuer's
	// own key space; nil without REDIS_URL.
	Tier *fleet.Tier
}

// Tokens is the token side: what answers the gateway, the caches a
// revocation empties, the keys Run refreshes.
type Tokens struct {
	s Settings
	// chains are the issuers' chains, the primary first (config.Issuers'
	// order); byURL finds one by a JWT's iss when ISSUERS is set (nil
	// otherwise: the primary answers every token, as before ISSUERS).
	chains []*chain
	byURL  map[string]*chain
	// clients are the per-client budgets (OKTA_MAX_RPS_PER_CLIENT), one
	// for every issuer; nil when unlimited.
	clients *authn.ClientLimited
	// lookup answers the gateway: the sender constraint (DPoP,
	// certificate-bound tokens; bound.go) on top of the routing to an
	// issuer's chain. Its refusals depend on the request: never cached.
	lookup authn.Tokens
}

// chain is one issuer's token side: every cache, budget, breaker and key
// set of it is the issuer's own.
type chain struct {
	iss   config.Issuer
	parts Parts
	// lookup answers a token routed to this issuer.
	lookup authn.Tokens
	// cache is the token cache in front of the issuer's verifier.
	cache *authn.Cache
	// introspect is hybrid mode's second cache, over the introspection
	// alone, for INTROSPECT_PATHS; nil otherwise.
	introspect *authn.Cache
	// keys is the issuer's JWKS, jwksBreaker guards its endpoint (both nil
	// when the issuer only introspects).
	keys        *jwtauth.Keys
	jwksBreaker *breaker.Breaker
	// privateKey signs the client assertions of private_key_jwt (nil:
	// none), read from the issuer's PRIVATE_KEY_FILE.
	privateKey crypto.Signer
	// opaque matches the requests whose opaque token goes to this issuer
	// (OPAQUE_PATHS); nil for none, and for the primary.
	opaque *pathrule.Matcher
	// clients are the per-client budgets every issuer shares (nil: none).
	clients *authn.ClientLimited
	// metrics counts what this issuer's chain does, under its name and in
	// the totals (metrics.AddIssuer).
	metrics *metrics.Issuer
	// s is the token side's settings, for what is global (CACHE_*,
	// OKTA_MAX_RPS_PER_CLIENT, the logger, the metrics).
	s *Settings
}

// Build assembles the token side: one chain per issuer (config.Issuers),
// and the routing between them (Lookup; docs/issuers.md). How an issuer's
// token is validated, by its mode (TOKEN_VALIDATION, ISSUER_N_TOKEN_VALIDATION):
//
//   - introspect: cache → introspection (budgets → breaker → RFC 7662
//     call), the shared tier (REDIS_URL) behind the cache.
//   - jwt: cache → jwtVerifier (signature by a key of the issuer's JWKS,
//     then the claims), this replica's cache only: a signature check costs
//     less than a Redis round trip and spends no budget.
//   - hybrid: cache → hybrid: a JWT of the issuer goes to jwtVerifier,
//     anything else to introspection (and only those to the shared tier).
//     With INTROSPECT_PATHS, introspectOnPaths on top: on those paths a
//     token verified as a JWT is introspected anew, through a second cache
//     over the same introspection (budgets and breaker shared).
//
// Revocations reach every cache, and the open streams, through RevokeKey.
func Build(ctx context.Context, s Settings) (*Tokens, error) {
	t := &Tokens{s: s}
	if perClient := s.Config.OktaMaxRPSPerClient; perClient > 0 {
		// Each issuer's chain goes through it (Through).
		t.clients = authn.NewClientLimited(perClient, perClientLimiters, nil)
		t.clients.OnRefuse = s.Metrics.ClientBudgetRejected
	}
	issuers := s.Config.Issuers()
	for i := range issuers {
		iss := issuers[i]
		parts, ok := s.Issuers[iss.Name]
		if !ok {
			return nil, fmt.Errorf("tokens: no parts for issuer %q", iss.Name)
		}
		c, err := t.build(ctx, iss, parts)
		if err != nil {
			return nil, err
		}
		t.chains = append(t.chains, c)
	}
	if len(t.chains) > 1 {
		t.byURL = make(map[string]*chain, len(t.chains))
		for _, c := range t.chains {
			t.byURL[strings.TrimSpace(c.iss.URL)] = c
		}
	}
	s.Metrics.WatchCache(t.cacheLen)
	var err error
	if t.lookup, err = t.s.bound(routed{t}); err != nil {
		return nil, err
	}
	return t, nil
}

// build assembles one issuer's chain.
func (t *Tokens) build(ctx context.Context, iss config.Issuer, parts Parts) (*chain, error) {
	c := &chain{iss: iss, parts: parts, s: &t.s, clients: t.clients, metrics: t.s.Metrics.AddIssuer(iss.Name)}
	var err error
	if c.privateKey, err = loadPrivateKey(&iss); err != nil {
		return nil, err
	}
	jwksURL, introspectURL := c.endpoints(ctx)
	switch iss.TokenValidation {
	case config.ValidationIntrospect:
		c.cache, err = c.newCache(c.introspection(introspectURL), c.shared())
	case config.ValidationJWT:
		c.cache, err = c.newCache(c.jwtVerifier(jwksURL), nil)
	case config.ValidationHybrid:
		in := c.introspection(introspectURL)
		h := hybrid(c.jwtVerifier(jwksURL), in, iss.URL)
		if c.cache, err = c.newCache(h, c.sharedIntrospections(h)); err != nil {
			return nil, err
		}
		if len(iss.IntrospectPaths) > 0 {
			// The same introspection answers as the main cache's, under the
			// same keys: the two share the shared tier.
			c.introspect, err = c.newCache(in, c.shared())
		}
	}
	if err != nil {
		return nil, err
	}
	c.lookup = authn.Cached{Cache: c.cache}
	if rules := iss.OpaquePaths; len(rules) > 0 {
		c.opaque = pathrule.Exact(rules)
	}
	if c.introspect != nil {
		c.lookup = introspectOnPaths(c.lookup, c.introspect, iss.IntrospectPaths)
	}
	c.logEndpoints(jwksURL, introspectURL)
	return c, nil
}

// cacheLen is the entries of every issuer's token cache
// (authgate_cache_entries).
func (t *Tokens) cacheLen() int {
	n := 0
	for _, c := range t.chains {
		n += c.cache.Len()
	}
	return n
}

// introspection is the introspection chain: the per-client budget
// (OKTA_MAX_RPS_PER_CLIENT, one for every issuer) over the issuer's global
// one (its MAX_RPS; the fleet's with Redis) over the issuer's breaker over
// the client.
// Hybrid mode calls it once: its two caches share the budgets and the
// breaker.
func (c *chain) introspection(url string) authn.Verifier {
	iss, m, tier := &c.iss, c.metrics, c.parts.Tier
	guarded := &authn.Guarded{
		Next: &authn.Introspection{Client: c.client(url), Audience: iss.Audience,
			OnResult: m.Introspection, OnRateLimit: m.RateLimit, Log: c.s.Log.With("issuer", iss.Name),
			PrivateKeyJWT: iss.AuthMethod == config.AuthPrivateKeyJWT, Var: iss.Var},
		Breaker: c.parts.Breaker,
	}
	if tier != nil {
		guarded.OnHold = tier.PublishHold // every replica holds
	}
	var v authn.Verifier = guarded
	if iss.MaxRPS > 0 {
		// Under the cache (cached tokens never spend the budget), above the
		// breaker (our own refusals are not upstream failures).
		rl := authn.NewRateLimited(v, iss.MaxRPS, nil)
		rl.OnRefuse = m.BudgetRejected
		if tier != nil {
			// One budget for the fleet; this replica's own when Redis is not there.
			b := tier.NewBudget(v, rl, iss.MaxRPS)
			b.OnRefuse = m.BudgetRejected
			v = b
		} else {
			v = rl
		}
	}
	if c.clients != nil {
		// Above the global budget: a client past its own limit spends none
		// of everyone's.
		v = c.clients.Through(v)
	}
	return v
}

// jwtVerifier is local JWT validation (go-jose): the signature by a key of
// the issuer's JWKS at jwksURL (refreshed by Run; discovered on the first
// fetch when empty), then iss, aud, exp, nbf, typ and the algorithms.
func (c *chain) jwtVerifier(jwksURL string) authn.Verifier {
	s, iss := c.s, &c.iss
	c.jwksBreaker = breaker.New(breaker.Settings{Name: "jwks" + c.iss.Suffix(), Failures: iss.BreakerFailures,
		OpenTimeout: iss.BreakerOpenTimeout, IsFailure: authn.IsUpstreamFailure, OnStateChange: s.OnBreakerChange})
	s.Metrics.WatchBreaker(c.jwksBreaker)
	c.keys = jwtauth.NewKeys(jwtauth.KeySettings{
		URL: jwksURL, HTTPClient: c.parts.JWKS, Timeout: iss.Timeout, Breaker: c.jwksBreaker,
		Discover: func(ctx context.Context) (string, error) {
			m, err := c.discover(ctx)
			if err != nil {
				return "", err
			}
			s.Log.Info("JWKS endpoint discovered", "issuer", iss.Name, "jwks_url", m.JWKSURI)
			return m.JWKSURI, nil
		},
		RequestHeader: requestid.SetHeader,
		OnFetch: func(result string, err error) {
			c.metrics.JWKSFetch(result)
			if err != nil {
				s.Log.Warn("JWKS fetch failed; keeping the keys held", "issuer", iss.Name, "error", err.Error())
			}
		},
	})
	algs := make([]jose.SignatureAlgorithm, 0, len(iss.JWTAlgorithms))
	for _, a := range iss.JWTAlgorithms {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	return &jwtauth.Verifier{Keys: c.keys, Issuer: strings.TrimSpace(iss.URL), Audience: iss.Audience,
		Algorithms: algs, Leeway: iss.JWTLeeway, Typ: iss.JWTTyp, OnResult: c.metrics.JWTValidation}
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
func (c *chain) newCache(v authn.Verifier, shared authn.Shared) (*authn.Cache, error) {
	cfg, log := c.s.Config, c.s.Log
	// One line per lograte.Every while answers are served stale: an outage
	// must not write a line per request.
	var stale lograte.Limit
	cache, err := authn.NewCache(v, authn.CacheSettings{
		Size:         cfg.CacheSize,
		TTL:          cfg.CacheTTL,
		NegativeTTL:  cfg.CacheNegativeTTL,
		Timeout:      c.iss.Timeout,
		StaleIfError: cfg.CacheStaleIfError,
		OnStale: func() {
			stale.Log(log, slog.LevelWarn, time.Now(), "served stale introspection answers: the authorization server is unavailable (CACHE_STALE_IF_ERROR)", "issuer", c.iss.Name)
		},
		OnEvict: c.s.Metrics.CacheEvicted,
		Shared:  shared,
	})
	if err != nil {
		return nil, fmt.Errorf("CACHE_SIZE: %w", err)
	}
	return cache, nil
}

// shared is the issuer's shared tier as a cache's second level; nil
// without Redis (no nil *fleet.Tier in an interface).
func (c *chain) shared() authn.Shared {
	if c.parts.Tier == nil {
		return nil
	}
	return c.parts.Tier
}

// sharedIntrospections is the shared tier for the tokens h introspects
// only: a JWT it verifies locally stays in this replica's cache.
func (c *chain) sharedIntrospections(h *jwtauth.Hybrid) authn.Shared {
	if c.parts.Tier == nil {
		return nil
	}
	return jwtauth.SharedIntrospections{Shared: c.parts.Tier, Hybrid: h}
}

// endpoints are the issuer's JWKS and introspection URLs: its JWKS_URL
// and INTROSPECT_URL (or its default), else, in jwt and hybrid modes, what
// the issuer's metadata names. A discovery that fails at start-up leaves
// the JWKS URL empty (the first key fetch asks again) and the default
// introspection endpoint.
func (c *chain) endpoints(ctx context.Context) (jwksURL, introspectURL string) {
	iss := &c.iss
	jwksURL, introspectURL = iss.JWKSURL, iss.IntrospectURL()
	if !iss.ValidatesJWT() || jwksURL != "" {
		return jwksURL, introspectURL
	}
	dctx, cancel := context.WithTimeout(ctx, iss.Timeout)
	defer cancel()
	m, err := c.discover(dctx)
	if err != nil {
		c.s.Log.Warn("authorization server discovery failed; asking again on the first key fetch",
			"issuer", iss.Name, "url", iss.URL, "error", err.Error())
	}
	if m != nil {
		jwksURL = m.JWKSURI
		if iss.IntrospectEndpoint == "" && m.IntrospectionEndpoint != "" {
			introspectURL = m.IntrospectionEndpoint
		}
	}
	return jwksURL, introspectURL
}

// discover reads the issuer's metadata, and reports what it refused; an
// error when it names no usable jwks_uri (the metadata is returned all the
// same, for its introspection endpoint).
func (c *chain) discover(ctx context.Context) (*introspect.Metadata, error) {
	iss := &c.iss
	m, err := introspect.Discover(ctx, c.parts.JWKS, iss.URL)
	switch {
	case err != nil:
		return nil, err
	case m.Refused != nil:
		c.s.Log.Warn("authorization server metadata names an endpoint authgate refuses; set it explicitly ("+
			iss.Var("JWKS_URL")+", "+iss.Var("INTROSPECT_URL")+", "+iss.Var("REVOKE_URL")+") to override",
			"issuer", iss.Name, "url", iss.URL, "error", m.Refused.Error())
	}
	if m.JWKSURI == "" {
		return m, errors.New("discover: the authorization server's metadata names no usable jwks_uri (set " + iss.Var("JWKS_URL") + ")")
	}
	return m, nil
}

// errUnknownIssuer answers a JWT whose iss is no configured issuer, when
// ISSUERS is set: it is sent to no authorization server.
var errUnknownIssuer = &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token",
	Description: "token issuer is not accepted"}

// Lookup implements gateway.Tokens: the request's token, routed to its
// issuer (route), as that issuer's mode validates it, then held to its
// sender constraint (bound.go). It sets r.Issuer to the chosen issuer's URL.
func (t *Tokens) Lookup(ctx context.Context, r *authn.Request, raw string) (*authn.Token, authn.Lookup, error) {
	return t.lookup.Lookup(ctx, r, raw)
}

// routed is the routing to an issuer's chain, as the authn.Tokens the
// sender constraint wraps.
type routed struct{ t *Tokens }

// Lookup implements authn.Tokens.
func (rt routed) Lookup(ctx context.Context, r *authn.Request, raw string) (*authn.Token, authn.Lookup, error) {
	t := rt.t
	c := t.route(r, raw)
	if c == nil {
		r.Issuer, r.IssuerName = "", ""
		return nil, authn.Miss, errUnknownIssuer
	}
	r.Issuer, r.IssuerName = c.iss.URL, c.iss.Name
	return c.lookup.Lookup(ctx, r, raw)
}

// route is the one issuer a token goes to (docs/issuers.md, "Which issuer
// decides"); nil when it goes to none. Without ISSUERS, the primary takes
// every token, as it always did. With ISSUERS, a JWT goes to the issuer its
// iss names (read before verification: that issuer's rules then verify
// it), and to none when no issuer has that URL; any other token (opaque,
// or not a JWT that names an issuer) goes to the first issuer whose
// OPAQUE_PATHS match the request, else to the primary. A token is never
// tried at a second issuer.
func (t *Tokens) route(r *authn.Request, raw string) *chain {
	if t.byURL == nil {
		return t.chains[0]
	}
	if iss, ok := jwtauth.PeekIssuer(raw); ok {
		return t.byURL[iss]
	}
	return t.routeOpaque(r)
}

// routeOpaque is the issuer of an opaque token: the first whose
// OPAQUE_PATHS match the request (matched exactly, like PUBLIC_PATHS),
// else the primary.
func (t *Tokens) routeOpaque(r *authn.Request) *chain {
	if r != nil {
		for _, c := range t.chains[1:] {
			if c.opaque != nil && c.opaque.Match(r.Method, r.Path) {
				return c
			}
		}
	}
	return t.chains[0]
}

// Run refreshes the keys in the background until ctx ends.
func (t *Tokens) Run(ctx context.Context) {
	for _, c := range t.chains {
		if c.keys != nil {
			go c.keys.Run(ctx)
		}
	}
}

// ReadyChecks are the keys' entries of /readyz, per issuer that validates
// JWTs locally (the primary's names as they always were, another's with
// "_<name>" after them): "jwks", the JWKS endpoint's breaker, never
// required (the keys held keep validating while the endpoint is down);
// "signing_keys", whether a key set was ever fetched, required for the
// primary in jwt mode, where no token can be valid until then (in hybrid
// mode introspection still answers; another issuer's keys missing leave
// the primary's tokens working).
func (t *Tokens) ReadyChecks() []gateway.ReadyCheck {
	var checks []gateway.ReadyCheck
	for _, c := range t.chains {
		if c.keys == nil {
			continue
		}
		checks = append(checks,
			gateway.ReadyCheck{Name: "jwks" + c.iss.Suffix(), Check: func(context.Context) string { return c.jwksBreaker.Health() }},
			gateway.ReadyCheck{Name: "signing_keys" + c.iss.Suffix(),
				Required: c.iss.IsPrimary() && c.iss.TokenValidation == config.ValidationJWT,
				Check: func(context.Context) string {
					if c.keys.Held() {
						return "ok"
					}
					return "none fetched yet"
				}})
	}
	return checks
}

// logEndpoints names, once at start-up, the endpoints the issuer's token
// validation uses: configured, discovered, or the default introspection
// endpoint.
func (c *chain) logEndpoints(jwksURL, introspectURL string) {
	attrs := []any{"issuer", c.iss.Name, "mode", c.iss.TokenValidation}
	if c.iss.ValidatesJWT() {
		if jwksURL == "" {
			jwksURL = "(discovered on the first key fetch)"
		}
		attrs = append(attrs, "jwks_url", jwksURL)
	}
	if c.iss.Introspects() {
		attrs = append(attrs, "introspection_url", introspectURL)
	}
	c.s.Log.Info("token validation endpoints", attrs...)
}
