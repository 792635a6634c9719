package gateway

import "github.com/labstack/echo/v4"

// routes lists every route of both listeners.
func (g *Gateway) routes() {
	g.traffic.Use(g.observe()) // outermost: request id, metrics, access log

	check := g.check()
	if g.proxy != nil {
		// Proxy mode: every path and method. Route-level middleware, in
		// order: one cleaned path for policy and upstream, forged identity
		// headers out, then the check.
		g.traffic.Match(proxyMethods, "/*", g.handleProxy(), cleanRequestPath(), g.stripInbound(), check)
	} else {
		// Exact routes: Echo matches the raw path, so a route matches only
		// when the raw path is already clean.
		g.traffic.GET("/sayhello", handleMessage("Hello there!!"), check)
		g.traffic.GET("/saysecret", handleMessage("This is a secret"), check)
	}

	g.admin.GET("/healthz", handleHealthz())
	if g.deps.MetricsHandler != nil {
		g.admin.GET("/metrics", echo.WrapHandler(g.deps.MetricsHandler))
	}
	if g.deps.PProf {
		g.admin.Any("/debug/pprof/*", handlePprof())
	}
	g.admin.GET("/readyz", g.handleReadyz())
	// Forward-auth decisions are requests like any other: logged and counted.
	observe := g.observe()
	g.admin.Match(proxyMethods, verifyPrefix, g.handleVerify(), observe)
	g.admin.Match(proxyMethods, verifyPrefix+"/*", g.handleVerify(), observe)
}
