// Package gateway is authgate's HTTP side: the traffic listener, where every
// protected request is checked (token, then policy), and the admin listener
// with authgate's own endpoints.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
)

// TokenVerifier is what the gateway needs of the token cache.
type TokenVerifier interface {
	// Lookup verifies token and says whether the cache answered. Errors are
	// *fault.Error: Unauthenticated or Unavailable.
	Lookup(ctx context.Context, token string) (*authn.Token, authn.Lookup, error)
}

// Deps are the gateway's dependencies, built by the caller.
type Deps struct {
	// Observability (issue 4).
	// Metrics, when set, is told of every request answered on the traffic listener.
	Metrics Metrics
	// MetricsHandler, when set, serves GET /metrics on the admin listener.
	MetricsHandler http.Handler
	// PProf serves net/http/pprof under /debug/pprof/ on the admin listener.
	PProf bool
	// Tracing says that the traffic handler runs inside a tracing handler
	// (otelhttp): the request's span is then named after its route.
	Tracing bool

	Tokens TokenVerifier
	// Introspect, when set, introspects (TOKEN_VALIDATION=hybrid): a token
	// that Tokens validated as a JWT is introspected anew by it on
	// IntrospectPaths, where a revoked token must stop working within
	// CACHE_TTL.
	Introspect      TokenVerifier
	IntrospectPaths []PublicPath
	OPA             Querier
	OPABreaker      *breaker.Breaker
	IdPBreaker      *breaker.Breaker
	// OPATimeout bounds one decision.
	OPATimeout time.Duration
	// OPAHealthURL is OPA's GET /health, asked by /readyz.
	OPAHealthURL string
	// HTTPClient is used for OPA's health check.
	HTTPClient *http.Client
	// SendToken puts the raw token in the OPA input as jwt.tokenValue.
	SendToken bool
	// DecisionCacheTTL, when positive, caches decisions per token, method
	// and path for that long (never past the token's cache entry), in an
	// LRU of DecisionCacheSize entries.
	DecisionCacheTTL  time.Duration
	DecisionCacheSize int
	Log               *slog.Logger
	// Now is the clock for Retry-After, the decision cache and the
	// decider's rate-limited warnings; nil means time.Now.
	Now func() time.Time

	// Gateway modes (proxy.go, verify.go). Upstream set means proxy mode.
	Upstream                   *url.URL
	UpstreamTimeout            time.Duration
	UpstreamStripAuthorization bool
	PublicPaths                []PublicPath
	TrustedProxies             []netip.Prefix
	Identity                   IdentityHeaders
}

// Gateway holds the two HTTP handlers.
type Gateway struct {
	deps      Deps
	decider   *decider
	decisions *decisionCache // nil when off
	traffic   *echo.Echo
	admin     *echo.Echo
	mode      string         // modeServe or modeProxy, for the OPA input
	trusted   trustedProxies // TRUSTED_PROXIES
	proxy     http.Handler   // the upstream's reverse proxy, in proxy mode
}

// New builds the gateway and its routes.
func New(d Deps) *Gateway {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.HTTPClient == nil {
		d.HTTPClient = http.DefaultClient
	}
	g := &Gateway{
		deps:    d,
		decider: &decider{opa: d.OPA, breaker: d.OPABreaker, log: d.Log, now: d.Now, metrics: d.Metrics},
		traffic: newEcho(d),
		admin:   newEcho(d),
		mode:    modeServe,
		trusted: d.TrustedProxies,
	}
	if d.Upstream != nil {
		g.mode, g.proxy = modeProxy, g.newProxy()
	}
	if d.DecisionCacheTTL > 0 {
		g.decisions = newDecisionCache(max(d.DecisionCacheSize, 1), d.DecisionCacheTTL, d.Now)
	}
	g.routes()
	return g
}

func newEcho(d Deps) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(d.Log, d.Now)
	return e
}

// Traffic serves the protected API on LISTEN_ADDR.
func (g *Gateway) Traffic() http.Handler { return g.traffic }

// Admin serves authgate's own endpoints on ADMIN_ADDR.
func (g *Gateway) Admin() http.Handler { return g.admin }
