package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/breaker"
)

// handleMessage answers {"message": msg}, encoded once.
func handleMessage(msg string) echo.HandlerFunc {
	body, _ := json.Marshal(map[string]string{"message": msg})
	return func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, body)
	}
}

// handleHealthz says the process is alive.
func handleHealthz() echo.HandlerFunc {
	body := []byte(`{"status":"ok"}`)
	return func(c echo.Context) error { return c.JSONBlob(http.StatusOK, body) }
}

// handleReadyz reports each dependency. Only an OPA that does not answer
// makes authgate unready: with the IdP down, cached tokens are still served,
// and one org-wide rate limit must not take every replica out of rotation.
func (g *Gateway) handleReadyz() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
		defer cancel()
		report := map[string]string{"opa": g.opaHealth(ctx), "idp": breakerHealth(g.deps.IdPBreaker)}
		status := http.StatusOK
		if report["opa"] != "ok" {
			status = http.StatusServiceUnavailable
		}
		return c.JSON(status, report)
	}
}

func (g *Gateway) opaHealth(ctx context.Context) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.deps.OPAHealthURL, nil)
	if err != nil {
		return "bad health URL"
	}
	resp, err := g.deps.HTTPClient.Do(req)
	if err != nil {
		return "unreachable"
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "unhealthy: status " + http.StatusText(resp.StatusCode)
	}
	if s := breakerHealth(g.deps.OPABreaker); s != "ok" {
		return s
	}
	return "ok"
}

func breakerHealth(b *breaker.Breaker) string {
	if !b.HeldUntil().IsZero() {
		return "rate limited"
	}
	switch b.State() {
	case breaker.Open:
		return "breaker open"
	case breaker.HalfOpen:
		return "breaker half-open"
	}
	return "ok"
}
