package gateway

// routes lists every route of both listeners.
func (g *Gateway) routes() {
	check := g.check()
	// Before routing: one cleaned path for routing, policy and upstream.
	g.traffic.Pre(cleanRequestPath())
	if g.proxy != nil {
		// Proxy mode: every path, checked (or public), then to the upstream.
		g.traffic.Pre(g.stripInbound())
		g.traffic.Match(proxyMethods, "/*", g.handleProxy(), check)
	} else {
		g.traffic.GET("/sayhello", handleMessage("Hello there!!"), check)
		g.traffic.GET("/saysecret", handleMessage("This is a secret"), check)
	}

	g.admin.GET("/healthz", handleHealthz())
	g.admin.GET("/readyz", g.handleReadyz())
	g.admin.Match(proxyMethods, verifyPrefix, g.handleVerify())
	g.admin.Match(proxyMethods, verifyPrefix+"/*", g.handleVerify())
}
