package gateway

import (
	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/proxy"
)

// routes lists every route of the three listeners.
func (g *Gateway) routes() {
	g.traffic.Use(g.observe()) // outermost: request id, metrics, access log

	check := g.check()
	if g.proxy != nil {
		// Proxy mode: every path and method. Route-level middleware, in
		// order: one cleaned path for policy and upstream, the RFC 9728
		// metadata answered here, never forwarded (package resource), upgrades
		// not allowed out (package proxy), forged identity, forwarding and
		// hop-by-hop headers out (headers.go), then the check.
		g.traffic.Match(proxy.Methods, "/*", chain(g.handleProxy(), cleanRequestPath(), g.answerMetadata(), g.screenUpgrade(), g.scrubInbound(), check))
	} else {
		// Exact routes: Echo matches the raw path, so a route matches only
		// when the raw path is already clean.
		scrub := g.scrubInbound()
		g.traffic.GET("/sayhello", chain(handleMessage("Hello there!!"), scrub, check))
		g.traffic.GET("/saysecret", chain(handleMessage("This is a secret"), scrub, check))
	}
	if g.resource != nil {
		// RESOURCE_URI: RFC 9728 metadata, no token, any mode (proxy mode's
		// answerMetadata also catches other spellings of these paths).
		for _, p := range g.resource.Paths {
			g.traffic.Match(proxy.Methods, p, g.resource.Handler())
		}
	}

	g.admin.GET("/healthz", handleHealthz())
	g.admin.GET("/readyz", g.handleReadyz())
	// Forward-auth decisions are requests like any other: logged and counted.
	verify := chain(g.handleVerify(), g.observe())
	g.admin.Match(proxy.Methods, verifyPrefix, verify)
	g.admin.Match(proxy.Methods, verifyPrefix+"/*", verify)
	if g.deps.Revoke != nil && g.deps.AdminAPIToken != "" {
		// Logged like a request (never the token), counted apart from the
		// traffic (authgate_revoke_requests_total). Unset: 404.
		g.admin.POST("/revoke", chain(g.handleRevoke(), g.observeWith(nil)))
	}

	// Apart from ADMIN_ADDR, which a proxy must reach for /verify.
	if g.deps.MetricsHandler != nil {
		g.metrics.GET("/metrics", echo.WrapHandler(g.deps.MetricsHandler))
	}
	if g.deps.PProf {
		g.metrics.Any("/debug/pprof/*", handlePprof())
	}
}

// chain wraps h in mw, the first outermost, once at startup: Echo v4 applies
// route-level middleware anew on every request, a closure per middleware.
func chain(h echo.HandlerFunc, mw ...echo.MiddlewareFunc) echo.HandlerFunc {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}
