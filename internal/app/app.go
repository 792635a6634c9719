// Package app wires authgate together from its configuration and runs it
// until its context ends.
package app

import (
	"context"
	"crypto/sha256"
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
	"github.com/authgate/authgate/internal/dpop"
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

// build assembles authgate from cfg, top to bottom: OPA's client and
// breaker, each issuer's client pool, breaker and shared tier, the token
// side (package tokens), the policy side, then the gateway over them. The
// key refresh (jwt and hybrid issuers) runs until ctx ends. closeIdle
// closes the upstream connections left idle, and the tiers.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, tel *telemetry) (gw *gateway.Gateway, closeIdle func(), err error) {
	warnPlainHTTP(cfg, log)
	opaT, err := opaTransport(cfg)
	if err != nil {
		return nil, nil, err
	}
	// Each issuer's parts (docs/issuers.md): its own pool (its CA file),
	// breaker and shared tier.
	issuers, err := newIssuerParts(cfg, log, tel)
	closeAll := func() {
		opaT.CloseIdleConnections()
		for _, p := range issuers {
			p.transport.CloseIdleConnections()
			if p.Tier != nil {
				p.Tier.Close()
			}
		}
	}
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	closeIdle = closeAll
	// No http.Client.Timeout: every call carries a context deadline
	// (OKTA_TIMEOUT in the cache, OPA_TIMEOUT in the check), and a client
	// timeout would add a timer per request on the hot path.
	opaHTTP := &http.Client{Transport: tel.transport(opaT, "opa decision")}
	opaBreaker := newBreaker("opa", cfg.OPABreakerFailures, cfg.OPABreakerOpenTimeout, tel)

	// The open streams and tunnels, which every revocation ends.
	streams := gateway.NewStreams()
	byName := map[string]tokens.Parts{}
	for _, p := range issuers {
		byName[p.iss.Name] = p.Parts
	}
	toks, err := tokens.Build(ctx, tokens.Settings{Config: cfg, Log: log, Metrics: tel.metrics, OnBreakerChange: tel.breakerChange,
		Issuers: byName, Streams: streams})
	if err != nil {
		return nil, nil, err
	}
	toks.Run(ctx)
	for _, p := range issuers {
		if p.Tier != nil {
			// What a tier hears of other replicas' revocations goes to the
			// token caches, built over it.
			p.Tier.Start(func(key [sha256.Size]byte) { toks.RevokeKey(key, cfg.CacheTTL) })
		}
	}

	decider, err := newDecider(cfg, log, tel, opaHTTP, opaBreaker)
	if err != nil {
		return nil, nil, err
	}
	opaHealth, err := newOPAHealth(cfg, opaHTTP, opaBreaker)
	if err != nil {
		return nil, nil, err
	}
	deps, err := gatewayDeps(cfg, log, tel, toks, decider, parts{opaHealth: opaHealth, issuers: issuers, streams: streams})
	if err != nil {
		return nil, nil, err
	}
	return gateway.New(deps), closeIdle, nil
}

// issuerParts are one issuer's own parts: its pool and tokens.Parts.
type issuerParts struct {
	iss       config.Issuer
	transport *http.Transport
	tokens.Parts
}

// newIssuerParts builds every issuer's parts, the primary first: the pool
// for its authorization server (trusting its CA file), its breaker ("idp",
// another's "idp_<name>") and its shared tier (nil without REDIS_URL).
// What it built is returned with an error too, for the caller to close.
func newIssuerParts(cfg *config.Config, log *slog.Logger, tel *telemetry) ([]issuerParts, error) {
	tel.metrics.Fleet(cfg.Shared())
	var out []issuerParts
	for _, iss := range cfg.Issuers() {
		t, err := idpTransport(&iss)
		if err != nil {
			return out, err
		}
		p := issuerParts{iss: iss, transport: t, Parts: tokens.Parts{
			IdP:     &http.Client{Transport: tel.transport(t, "introspect"), CheckRedirect: refuseDowngrade},
			JWKS:    &http.Client{Transport: tel.transport(t, "jwks"), CheckRedirect: refuseDowngrade},
			Breaker: newBreaker("idp"+iss.Suffix(), iss.BreakerFailures, iss.BreakerOpenTimeout, tel),
		}}
		out = append(out, p)
		if out[len(out)-1].Tier, err = newTier(cfg, &iss, log, tel, p.Breaker); err != nil {
			return out, err
		}
	}
	return out, nil
}

// newBreaker is the circuit breaker of an upstream, watched and logged.
func newBreaker(name string, failures uint32, openTimeout time.Duration, tel *telemetry) *breaker.Breaker {
	b := breaker.New(breaker.Settings{Name: name, Failures: failures, OpenTimeout: openTimeout,
		IsFailure: authn.IsUpstreamFailure, OnStateChange: tel.breakerChange})
	tel.metrics.WatchBreaker(b)
	return b
}

// newDecider is the policy side, composed like the token side: OPA, behind
// its breaker, behind the decision cache when DECISION_CACHE_TTL is set.
func newDecider(cfg *config.Config, log *slog.Logger, tel *telemetry, hc *http.Client, b *breaker.Breaker) (authz.Decider, error) {
	opaClient := &opa.Client{URL: cfg.OPAAuthzURL, HTTPClient: hc, RequestHeader: requestid.SetHeader}
	var decider authz.Decider = &authz.Guarded{
		Next:    &authz.OPA{Client: opaClient, Timeout: cfg.OPATimeout, Log: log, Metrics: tel.metrics},
		Breaker: b,
	}
	if cfg.DecisionCacheTTL > 0 {
		c, err := authz.NewCache(decider, cfg.CacheSize, cfg.DecisionCacheTTL, nil)
		if err != nil {
			return nil, fmt.Errorf("CACHE_SIZE: %w", err)
		}
		decider = c
	}
	return decider, nil
}

// newOPAHealth is OPA's entry of /readyz: its /health at the origin of the
// decision URL, behind its breaker.
func newOPAHealth(cfg *config.Config, hc *http.Client, b *breaker.Breaker) (*authz.Health, error) {
	u, err := url.Parse(cfg.OPAAuthzURL)
	if err != nil {
		return nil, errors.New("OPA_AUTHZ_URL: not a URL")
	}
	health := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/health"}).String()
	return &authz.Health{URL: health, HTTPClient: hc, Breaker: b}, nil
}

// parts are the pieces of build that gatewayDeps hands on.
type parts struct {
	opaHealth *authz.Health
	issuers   []issuerParts // the primary first
	streams   *gateway.Streams
}

// gatewayDeps fills in the gateway's dependencies, group by group
// (gateway.Deps; the modes: docs/modes.md).
func gatewayDeps(cfg *config.Config, log *slog.Logger, tel *telemetry, toks *tokens.Tokens, decider authz.Decider, p parts) (gateway.Deps, error) {
	dp := cfg.DPoP()
	d := gateway.Deps{
		Tokens:       toks,
		LookupClient: cfg.OktaMaxRPSPerClient > 0,
		CacheTTL:     cfg.CacheTTL,
		StaleIfError: cfg.CacheStaleIfError,

		Decider:        decider,
		PublicPaths:    cfg.PublicPathRules,
		TrustedProxies: cfg.TrustedProxyPrefixes,
		SendToken:      cfg.OPASendToken,
		InputHeaders:   cfg.OPAInputHeaderNames(),

		DPoPAlgorithms:   dp.Algorithms,
		DPoPRequired:     dp.Mode == dpop.Required,
		ClientCertHeader: cfg.ClientCertHeaderName(),

		Log:            log,
		Metrics:        tel.metrics,
		MetricsHandler: tel.metricsHandler(),
		PProf:          cfg.PProf,
		Tracing:        tel.tracing(),

		UpstreamTimeout:            cfg.UpstreamTimeout,
		UpstreamStripAuthorization: cfg.UpstreamStripAuthorization,
		Identity: gateway.IdentityHeaders{
			Subject:  cfg.IdentityHeaderSubject,
			ClientID: cfg.IdentityHeaderClientID,
			Scopes:   cfg.IdentityHeaderScopes,
		},
		Upgrades:           cfg.UpgradeProtocols(),
		StreamWriteTimeout: writeTimeout, // per write of a stream, not for its whole life
		Streams:            p.streams,

		Ready: []gateway.ReadyCheck{
			{Name: "opa", Check: p.opaHealth.Check, Required: true},
		},
		AdminAPIToken: cfg.AdminAPIToken,
	}
	if cfg.ResourceURI != "" {
		d.Resource = &gateway.ProtectedResource{
			URI:                  cfg.ResourceURI,
			AuthorizationServers: cfg.AuthorizationServers(),
			Scopes:               cfg.ResourceScopeList(),
			Name:                 cfg.ResourceName,
			Documentation:        cfg.ResourceDocumentation,
			DPoPAlgorithms:       dp.Algorithms,
			DPoPRequired:         dp.Mode == dpop.Required,
			CertificateBound:     len(cfg.TrustedProxyPrefixes) > 0,
		}
	}
	if cfg.UpstreamURL != "" {
		u, err := url.Parse(cfg.UpstreamURL)
		if err != nil {
			return d, errors.New("UPSTREAM_URL: not a URL")
		}
		d.Upstream = u
	}
	for _, ip := range p.issuers {
		// Every issuer's introspection breaker, the primary's as "idp";
		// none required: one issuer down leaves the others' tokens working.
		if ip.iss.IsPrimary() || ip.iss.Introspects() {
			b := ip.Breaker
			d.Ready = append(d.Ready, gateway.ReadyCheck{Name: "idp" + ip.iss.Suffix(), Check: func(context.Context) string { return b.Health() }})
		}
	}
	d.Ready = append(d.Ready, toks.ReadyChecks()...)
	for _, ip := range p.issuers {
		if ip.Tier != nil {
			// Not required: without Redis every request is still answered.
			d.Ready = append(d.Ready, gateway.ReadyCheck{Name: "redis" + ip.iss.Suffix(), Check: ip.Tier.Health})
		}
	}
	if cfg.AdminAPIToken != "" {
		d.Revoke = toks.Revoker()
	}
	return d, nil
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
