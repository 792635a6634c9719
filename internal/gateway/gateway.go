// Package gateway is authgate's HTTP side, and only that: the traffic
// listener, where every protected request is checked (bearer token, then
// the token Verifier, then the policy Decider of package authz), the admin
// listener with authgate's health and forward-auth endpoints, and the
// metrics listener with /metrics and the profiler. What a failure answers
// is package fault's; where a request came from, package forwarded's.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/challenge"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/forwarded"
	"github.com/authgate/authgate/internal/pathrule"
	"github.com/authgate/authgate/internal/proxy"
	"github.com/authgate/authgate/internal/resource"
)

// Streams is the registry of the open streams and tunnels (package proxy).
type Streams = proxy.Streams

// NewStreams makes an empty registry.
func NewStreams() *Streams { return proxy.NewStreams() }

// ProtectedResource describes the resource authgate protects (package
// resource, RFC 9728).
type ProtectedResource = resource.ProtectedResource

// Tokens is what the gateway needs of the token side, assembled by package
// tokens: one lookup per request, whatever TOKEN_VALIDATION is.
type Tokens interface {
	// Lookup verifies raw, the bearer token of the request r describes, and
	// says whether a cache answered. Errors are *fault.Error:
	// Unauthenticated or Unavailable.
	Lookup(ctx context.Context, r *authn.Request, raw string) (*authn.Token, authn.Lookup, error)
}

// Deps are the gateway's dependencies, built by the caller (app's
// gatewayDeps fills them in, group by group): the tokens, the decider, the
// observation, the proxy, the admin listener.
type Deps struct {
	// Tokens.

	// Tokens verifies the bearer token of every protected request (and of
	// an open stream's re-check), in whichever TOKEN_VALIDATION mode.
	Tokens Tokens
	// LookupClient names the client (remote_addr) in the context of each
	// token lookup, with authn.WithClient, for OKTA_MAX_RPS_PER_CLIENT. Off,
	// a lookup costs no allocation for it.
	LookupClient bool
	// CacheTTL is CACHE_TTL: when a stream's token answer came with no
	// cache entry (authn.Token.CachedUntil 0), it is looked up again that
	// long after the stream opened; 0: not at all.
	CacheTTL time.Duration
	// StaleIfError is CACHE_STALE_IF_ERROR: how long a stream lives on
	// while the re-check of its token cannot be decided (the IdP
	// unavailable); 0 ends it at the first such re-check.
	StaleIfError time.Duration
	// Resource, when set, is served as RFC 9728 metadata and named in
	// every challenge (package resource).
	Resource *ProtectedResource

	// Sender constraint (docs/sender-constrained.md; the checks are the
	// Tokens'). DPoPAlgorithms (DPOP_ALGORITHMS), when set, put a DPoP
	// challenge in every 401; DPoPRequired (DPOP_MODE=required) leaves the
	// Bearer challenge out of a failed proof's. ClientCertHeader
	// (CLIENT_CERT_HEADER, canonical) is removed from every request that
	// no trusted proxy sent.
	DPoPAlgorithms   []string
	DPoPRequired     bool
	ClientCertHeader string

	// Decider: the policy, and what it is told.

	Decider authz.Decider
	// PublicPaths (PUBLIC_PATHS) bypass the check. They remove checking,
	// so they match exactly (pathrule.Exact).
	PublicPaths []pathrule.Rule
	// TrustedProxies (TRUSTED_PROXIES) are believed about where a request
	// came from (package forwarded).
	TrustedProxies forwarded.Trust
	// SendToken puts the raw token in the OPA input as jwt.tokenValue.
	SendToken bool
	// InputHeaders, when set, are the only headers (names, any case) put in
	// the OPA input; nil means every header but the credentials
	// (OPA_INPUT_HEADERS).
	InputHeaders []string

	// Observation.

	Log *slog.Logger
	// Metrics, when set, is told of every request answered on the traffic listener.
	Metrics Metrics
	// MetricsHandler, when set, serves GET /metrics on the metrics listener.
	MetricsHandler http.Handler
	// PProf serves net/http/pprof under /debug/pprof/ on the metrics listener.
	PProf bool
	// Tracing says that the traffic handler runs inside a tracing handler
	// (otelhttp): the request's span is then named after its route.
	Tracing bool
	// Now is the clock for Retry-After and the rate-limited log lines; nil
	// means time.Now.
	Now func() time.Time

	// Proxy (proxy.go, verify.go): Upstream set means proxy mode.

	Upstream                   *url.URL
	UpstreamTimeout            time.Duration
	UpstreamStripAuthorization bool
	// Identity are the headers that carry the token's identity upstream
	// (and in /verify's answer).
	Identity IdentityHeaders
	// Upgrades are the protocols (UPSTREAM_UPGRADES, lower case) a client
	// may switch to through the proxy; none when empty.
	Upgrades []string
	// StreamWriteTimeout bounds each write of a streamed (text/event-stream)
	// answer in proxy mode, in place of the server's WriteTimeout for the
	// whole answer; 0 means no write deadline for streams (package proxy).
	StreamWriteTimeout time.Duration
	// AfterFunc calls f after d and returns what stops it, as
	// time.AfterFunc and its Timer.Stop do; nil means time.AfterFunc. It
	// ends an upgraded connection, and a stream, when its token expires.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// Streams, when set, is the registry of the open streams and tunnels
	// (package proxy), which the caller tells of every revocation
	// (Streams.Revoked) and closes at shutdown (Streams.Close, Wait); nil
	// means a registry of the gateway's own (Gateway.Streams).
	Streams *Streams

	// Admin listener.

	// Ready are the dependencies /readyz reports.
	Ready []ReadyCheck
	// Revoke, when set with AdminAPIToken, serves POST /revoke on the admin
	// listener (revoke.go): it revokes a token in this replica's cache and,
	// with Redis, the fleet's, and says where. A BadRequest fault.Error
	// means the request named no configured issuer (nothing revoked); any
	// other error, that only REVOKE_UPSTREAM's call to the IdP failed.
	Revoke        func(ctx context.Context, r RevokeRequest) (Revocation, error)
	AdminAPIToken string
}

// ReadyCheck is one dependency /readyz reports: Check answers "ok" or what
// is wrong; a Required one that is not ok makes authgate unready (503).
type ReadyCheck struct {
	Name     string
	Check    func(ctx context.Context) string
	Required bool
}

// Gateway holds the three HTTP handlers.
type Gateway struct {
	deps         Deps
	inputHeaders map[string]bool   // OPA_INPUT_HEADERS as canonical names; nil: all
	public       *pathrule.Matcher // PUBLIC_PATHS, exact
	traffic      *echo.Echo
	admin        *echo.Echo
	metrics      *echo.Echo
	// The listeners' handlers: the Echos behind refuseAsterisk.
	trafficH, adminH, metricsH http.Handler
	mode                       string             // authz.ModeServe or authz.ModeProxy, for the OPA input
	trusted                    forwarded.Trust    // TRUSTED_PROXIES
	proxy                      *proxy.Proxy       // the upstream's reverse proxy, in proxy mode
	resource                   *resource.Metadata // RFC 9728 metadata; nil when off
	clientCert                 string             // CLIENT_CERT_HEADER as headername.Is takes it (lower case, "-" for "_"); "" when none
	challenges                 challenge.Set      // what every 401's challenges say beyond the error
	streams                    *Streams           // the open streams and tunnels (package proxy)
}

// New builds the gateway and its routes.
func New(d Deps) *Gateway {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Streams == nil {
		d.Streams = NewStreams()
	}
	res := resource.New(d.Resource)
	ch := challenge.Set{ResourceMetadata: res.ChallengeParam(), DPoPAlgs: d.DPoPAlgorithms, DPoPOnly: d.DPoPRequired}
	g := &Gateway{
		deps:       d,
		clientCert: strings.ReplaceAll(strings.ToLower(d.ClientCertHeader), "_", "-"),
		challenges: ch,
		traffic:    newEcho(d, ch),
		admin:      newEcho(d, ch),
		metrics:    newEcho(d, ch),
		mode:       authz.ModeServe,
		trusted:    d.TrustedProxies,
		resource:   res,
		public:     pathrule.Exact(d.PublicPaths),
		streams:    d.Streams,
	}
	if len(d.InputHeaders) > 0 {
		g.inputHeaders = map[string]bool{}
		for _, n := range d.InputHeaders {
			g.inputHeaders[http.CanonicalHeaderKey(n)] = true
		}
	}
	if d.Upstream != nil {
		g.mode = authz.ModeProxy
		g.proxy = proxy.New(proxy.Config{
			Upstream: d.Upstream, Timeout: d.UpstreamTimeout, Trust: d.TrustedProxies, Log: d.Log,
			ErrorHandler: g.upstreamError, Upgrades: d.Upgrades, StreamWriteTimeout: d.StreamWriteTimeout,
			Streams: d.Streams, Now: d.Now, AfterFunc: d.AfterFunc, CacheTTL: d.CacheTTL, StaleIfError: d.StaleIfError,
		})
	}
	g.routes()
	g.trafficH = g.refuseAsterisk(g.traffic, "traffic")
	g.adminH = g.refuseAsterisk(g.admin, "admin")
	g.metricsH = g.refuseAsterisk(g.metrics, "metrics")
	return g
}

func newEcho(d Deps, ch challenge.Set) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(d.Log, d.Now, ch)
	return e
}

// Streams is the registry of the open streams and tunnels (Deps.Streams).
func (g *Gateway) Streams() *Streams { return g.streams }

// Traffic serves the protected API on LISTEN_ADDR.
func (g *Gateway) Traffic() http.Handler { return g.trafficH }

// Admin serves /healthz, /readyz and /verify on ADMIN_ADDR.
func (g *Gateway) Admin() http.Handler { return g.adminH }

// Metrics serves /metrics and, with PPROF, /debug/pprof/ on METRICS_ADDR:
// apart from ADMIN_ADDR, which a proxy must be able to reach for /verify.
func (g *Gateway) Metrics() http.Handler { return g.metricsH }

// errAsterisk refuses a request whose target is "*" (RFC 9112 3.2.4:
// OPTIONS * asks about the server as a whole), which no route of
// authgate's answers; Go's server would otherwise have answered OPTIONS *
// itself with a silent 200 (app turns that off with
// DisableGeneralOptionsHandler).
var errAsterisk = &fault.Error{Kind: fault.Unroutable, Description: "asterisk-form request target not supported"}

// refuseAsterisk answers errAsterisk, with a log line, through the
// listener's Echo e and writeFault, ahead of its router.
func (g *Gateway) refuseAsterisk(e *echo.Echo, listener string) http.Handler {
	log := g.deps.Log
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.RequestURI != "*" {
			e.ServeHTTP(w, r)
			return
		}
		log.Info("asterisk-form request refused", "listener", listener, "method", r.Method, "remote_addr", r.RemoteAddr)
		g.writeFault(e.NewContext(r, w), errAsterisk)
	})
}

// writeFault writes e's answer outside Echo's error handler.
func (g *Gateway) writeFault(c echo.Context, e *fault.Error) {
	if err := writeFault(c, e, g.deps.Now(), g.challenges); err != nil {
		g.deps.Log.Debug("writing error answer", "err", err)
	}
}
