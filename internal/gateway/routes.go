package gateway

import "github.com/labstack/echo/v4"

// routes lists every route of both listeners.
func (g *Gateway) routes() {
	g.traffic.Use(g.observe()) // outermost: request id, metrics, access log

	check := g.check()
	g.traffic.GET("/sayhello", handleMessage("Hello there!!"), check)
	g.traffic.GET("/saysecret", handleMessage("This is a secret"), check)

	g.admin.GET("/healthz", handleHealthz())
	if g.deps.MetricsHandler != nil {
		g.admin.GET("/metrics", echo.WrapHandler(g.deps.MetricsHandler))
	}
	if g.deps.PProf {
		g.admin.Any("/debug/pprof/*", handlePprof())
	}
	g.admin.GET("/readyz", g.handleReadyz())
}
