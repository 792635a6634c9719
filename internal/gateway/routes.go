package gateway

// routes lists every route of both listeners.
func (g *Gateway) routes() {
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
	g.admin.GET("/readyz", g.handleReadyz())
	g.admin.Match(proxyMethods, verifyPrefix, g.handleVerify())
	g.admin.Match(proxyMethods, verifyPrefix+"/*", g.handleVerify())
}
