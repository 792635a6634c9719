package gateway

import (
	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/pathrule"
)

// cleanRequestPath is proxy mode's first route middleware: it replaces the
// request's path by its cleaned form, which the check and the upstream then
// read, or answers 400. (Route-level rather than Echo's Pre: no per-request
// closures, and the middleware that observes every request sees these too.)
func cleanRequestPath() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			p, err := pathrule.Clean(pathrule.RawPath(req))
			if err != nil {
				return err
			}
			req.URL.Path, req.URL.RawPath = p, ""
			return next(c)
		}
	}
}
