// Package app wires authgate together from its configuration and runs it
// until its context ends.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/signal"
	"syscall"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/gateway"
	"github.com/authgate/authgate/internal/requestid"
	"github.com/authgate/authgate/internal/tokens"
	"github.com/authgate/authgate/pkg/opa"
)

// Server limits on every listener (READ_HEADER_TIMEOUT is configured).
// MaxHeaderBytes stays well above gateway.MaxTokenBytes so that an over-long
// token gets a clear 401 rather than Go's bare 431.
const (
	readTimeout    = 30 * time.Second
	writeTimeout   = 30 * time.Second
	idleTimeout    = 120 * time.Second
	maxHeaderBytes = 64 << 10
)

// Run runs authgate until ctx ends or SIGINT/SIGTERM arrives, then shuts
// down gracefully. lookupEnv is the process environment (os.LookupEnv): a
// variable set but empty is told from an unset one, so that it can override
// the env file. Logs go to stdout.
func Run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer, opts ...Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return run(ctx, args, lookupEnv, stdout, o)
}

// Option adjusts Run for a program that embeds authgate, or a test.
type Option func(*options)

// Addrs are the addresses Run listens on (host:port), known once it has
// bound them: a configured port of 0 is a free one chosen then.
type Addrs struct {
	Traffic, Admin, Metrics string
}

// OnListening has Run call f with its listeners' addresses once they
// accept connections.
func OnListening(f func(Addrs)) Option {
	return func(o *options) { o.onListening = f }
}

func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout io.Writer, opt options) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cfg, err := config.Load(lookupEnv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)

	trafficLn, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR: %w", err)
	}
	defer trafficLn.Close()
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("ADMIN_ADDR: %w", err)
	}
	defer adminLn.Close()
	metricsLn, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("METRICS_ADDR: %w", err)
	}
	defer metricsLn.Close()

	tel, err := newTelemetry(ctx, cfg, log, opt)
	if err != nil {
		return err
	}
	gw, closeIdle, err := build(ctx, cfg, log, tel)
	if err != nil {
		return err
	}
	defer closeIdle() // no upstream connection outlives Run
	servers := []*http.Server{newServer(tel.traffic(gw.Traffic()), log, cfg), newServer(gw.Admin(), log, cfg), newServer(gw.Metrics(), log, cfg)}
	if cfg.UpstreamURL != "" {
		// The write deadline runs from the end of the request headers: the
		// wait for the upstream's answer must not eat the time to relay it.
		servers[0].WriteTimeout = writeTimeout + cfg.UpstreamTimeout
	}
	// Shutdown waits for no hijacked connection and for a stream only
	// until SHUTDOWN_TIMEOUT: the open streams and tunnels are ended as it
	// starts, and waited for (their access lines) below.
	streams := gw.Streams()
	servers[0].RegisterOnShutdown(streams.Close)
	errc := make(chan error, len(servers))
	for i, ln := range []net.Listener{trafficLn, adminLn, metricsLn} {
		go func() { errc <- servers[i].Serve(ln) }()
	}
	addrs := Addrs{Traffic: trafficLn.Addr().String(), Admin: adminLn.Addr().String(), Metrics: metricsLn.Addr().String()}
	log.Info("authgate listening", "traffic", addrs.Traffic, "admin", addrs.Admin, "metrics", addrs.Metrics,
		"token_validation", cfg.TokenValidation, "introspect_url", cfg.IntrospectURL(), "opa_authz_url", cfg.OPAAuthzURL, "upstream_url", cfg.UpstreamURL)
	if opt.onListening != nil {
		opt.onListening(addrs)
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := streams.Wait(sctx); err != nil {
		errs = append(errs, fmt.Errorf("ending the open streams and tunnels: %w", err))
	}
	if err := tel.shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("flushing spans: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func newServer(h http.Handler, log *slog.Logger, cfg *config.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// OPTIONS * reaches the gateway, which refuses it with a log line,
		// instead of Go's own silent 200.
		DisableGeneralOptionsHandler: true,
	}
}

// build makes the clients, breakers and cache from cfg; the key refresh
// (jwt and hybrid modes) runs until ctx ends.
// closeIdle closes the upstream connections left idle.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, tel *telemetry) (gw *gateway.Gateway, closeIdle func(), err error) {
	warnPlainHTTP(cfg, log)
	idpT, err := idpTransport(cfg)
	if err != nil {
		return nil, nil, err
	}
	opaT, err := opaTransport(cfg)
	if err != nil {
		return nil, nil, err
	}
	// No http.Client.Timeout: every call carries a context deadline
	// (OKTA_TIMEOUT in the cache, OPA_TIMEOUT in the check), and a client
	// timeout would add a timer per request on the hot path.
	idpHTTP := &http.Client{Transport: tel.transport(idpT, "introspect")}
	opaHTTP := &http.Client{Transport: tel.transport(opaT, "opa decision")}

	onChange := tel.breakerChange
	idpBreaker := breaker.New(breaker.Settings{Name: "idp", Failures: cfg.OktaBreakerFailures,
		OpenTimeout: cfg.OktaBreakerOpenTimeout, IsFailure: authn.IsUpstreamFailure, OnStateChange: onChange})
	opaBreaker := breaker.New(breaker.Settings{Name: "opa", Failures: cfg.OPABreakerFailures,
		OpenTimeout: cfg.OPABreakerOpenTimeout, IsFailure: authn.IsUpstreamFailure, OnStateChange: onChange})

	// The shared tier on Redis (fleet.go), nil without REDIS_URL; what it
	// hears of other replicas' revocations goes to the token caches, set
	// below before it starts.
	late := &lateTokens{}
	tier, err := newTier(cfg, log, tel, idpBreaker, late)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil && tier != nil {
			tier.Close()
		}
	}()
	toks, err := tokens.Build(ctx, tokens.Settings{Config: cfg, Log: log, Metrics: tel.metrics, OnBreakerChange: onChange,
		IdP: idpHTTP, JWKS: &http.Client{Transport: tel.transport(idpT, "jwks")}, IdPBreaker: idpBreaker, Tier: tier})
	if err != nil {
		return nil, nil, err
	}
	late.tokens = toks
	// The open streams and tunnels, which every revocation (RevokeKey)
	// ends: set before the tier starts hearing of the fleet's.
	toks.Streams = gateway.NewStreams()
	cache := toks.Cache()
	toks.Run(ctx)
	health, err := healthURL(cfg.OPAAuthzURL)
	if err != nil {
		return nil, nil, err
	}
	closeIdle = func() { idpT.CloseIdleConnections(); opaT.CloseIdleConnections() }
	if tier != nil {
		tier.Start()
		closeIdle = func() { idpT.CloseIdleConnections(); opaT.CloseIdleConnections(); tier.Close() }
	}
	tel.metrics.WatchCache(cache.Len)
	tel.metrics.WatchBreaker(idpBreaker)
	tel.metrics.WatchBreaker(opaBreaker)
	opaClient := &opa.Client{URL: cfg.OPAAuthzURL, HTTPClient: opaHTTP, RequestHeader: requestid.SetHeader}
	// The policy side, composed like the token side: OPA, behind its
	// breaker, behind the decision cache when DECISION_CACHE_TTL is set.
	var decider authz.Decider = &authz.Guarded{
		Next:    &authz.OPA{Client: opaClient, Timeout: cfg.OPATimeout, Log: log, Metrics: tel.metrics},
		Breaker: opaBreaker,
	}
	if cfg.DecisionCacheTTL > 0 {
		if decider, err = authz.NewCache(decider, cfg.CacheSize, cfg.DecisionCacheTTL, nil); err != nil {
			return nil, nil, fmt.Errorf("CACHE_SIZE: %w", err)
		}
	}
	opaHealth := &authz.Health{URL: health, HTTPClient: opaHTTP, Breaker: opaBreaker}
	deps := gateway.Deps{
		Decider: decider,
		Ready: []gateway.ReadyCheck{
			{Name: "opa", Check: opaHealth.Check, Required: true},
			{Name: "idp", Check: func(context.Context) string { return idpBreaker.Health() }},
		},
		Streams:       toks.Streams,
		CacheTTL:      cfg.CacheTTL,
		StaleIfError:  cfg.CacheStaleIfError,
		AdminAPIToken: cfg.AdminAPIToken,
		SendToken:     cfg.OPASendToken,
		InputHeaders:  cfg.OPAInputHeaderNames(),
		Log:           log,

		LookupClient: cfg.OktaMaxRPSPerClient > 0,
	}
	toks.GatewayDeps(&deps)
	if tier != nil {
		// Not required: without Redis every request is still answered.
		deps.Ready = append(deps.Ready, gateway.ReadyCheck{Name: "redis", Check: tier.Health})
	}
	if cfg.AdminAPIToken != "" {
		deps.Revoke = toks.Revoker()
	}
	if err := modeDeps(cfg, &deps); err != nil {
		return nil, nil, err
	}
	return gateway.New(tel.gatewayDeps(deps, cfg)), closeIdle, nil
}

// modeDeps fills in the gateway-mode settings (README, "Gateway modes").
func modeDeps(cfg *config.Config, d *gateway.Deps) error {
	if cfg.UpstreamURL != "" {
		u, err := url.Parse(cfg.UpstreamURL)
		if err != nil {
			return errors.New("UPSTREAM_URL: not a URL")
		}
		d.Upstream = u
	}
	d.UpstreamTimeout = cfg.UpstreamTimeout
	d.StreamWriteTimeout = writeTimeout // per write of a stream, not for its whole life
	d.UpstreamStripAuthorization = cfg.UpstreamStripAuthorization
	d.Upgrades = cfg.UpgradeProtocols()
	d.PublicPaths = cfg.PublicPathRules
	d.TrustedProxies = cfg.TrustedProxyPrefixes
	d.Identity = gateway.IdentityHeaders{
		Subject:  cfg.IdentityHeaderSubject,
		ClientID: cfg.IdentityHeaderClientID,
		Scopes:   cfg.IdentityHeaderScopes,
	}
	if cfg.ResourceURI != "" {
		d.Resource = &gateway.ProtectedResource{
			URI:                  cfg.ResourceURI,
			AuthorizationServers: cfg.AuthorizationServers(),
			Scopes:               cfg.ResourceScopeList(),
			Name:                 cfg.ResourceName,
			Documentation:        cfg.ResourceDocumentation,
		}
	}
	return nil
}

// newTransport is a keep-alive pool sized for a gateway: the default of two
// idle connections per host throttles every request under load.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 512
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// healthURL is OPA's /health at the origin of the decision URL.
func healthURL(authz string) (string, error) {
	u, err := url.Parse(authz)
	if err != nil {
		return "", errors.New("OPA_AUTHZ_URL: not a URL")
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/health"}).String(), nil
}
