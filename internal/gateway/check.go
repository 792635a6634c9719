package gateway

import (
	"context"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/fault"
)

// check is the middleware that protects a route: bearer token, then
// introspection (cached), then the policy decision.
func (g *Gateway) check() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			raw, err := bearerToken(req.Header)
			if err != nil {
				return err
			}
			query, err := url.ParseQuery(req.URL.RawQuery)
			if err != nil {
				return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "malformed query string"}
			}
			tok, _, err := g.deps.Tokens.Lookup(req.Context(), raw)
			if err != nil {
				return err
			}
			bp := bufPool.Get().(*[]byte)
			body := appendInput((*bp)[:0], &facts{method: req.Method, path: req.URL.Path, query: query, header: req.Header}, tok, raw, g.deps.SendToken)
			ctx, cancel := context.WithTimeout(req.Context(), g.deps.OPATimeout)
			d, err := g.decider.decide(ctx, body)
			cancel()
			if err != nil {
				// The transport may still hold body after a failed call;
				// only a completed one gives it back.
				return err
			}
			*bp = body
			bufPool.Put(bp)
			if !d.allowed {
				return errPolicyDenied
			}
			return next(c)
		}
	}
}
