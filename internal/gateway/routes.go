package gateway

// routes lists every route of both listeners.
func (g *Gateway) routes() {
	check := g.check()
	g.traffic.GET("/sayhello", handleMessage("Hello there!!"), check)
	g.traffic.GET("/saysecret", handleMessage("This is a secret"), check)

	g.admin.GET("/healthz", handleHealthz())
	g.admin.GET("/readyz", g.handleReadyz())
}
