package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
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

// handleReadyz reports each dependency of Deps.Ready. Only a required one
// (OPA) makes authgate unready: with the IdP down, cached tokens are still
// served, and one org-wide rate limit must not take every replica out of
// rotation.
func (g *Gateway) handleReadyz() echo.HandlerFunc {
	checks := g.deps.Ready
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
		defer cancel()
		report := make(map[string]string, len(checks))
		status := http.StatusOK
		for _, ch := range checks {
			report[ch.Name] = ch.Check(ctx)
			if ch.Required && report[ch.Name] != "ok" {
				status = http.StatusServiceUnavailable
			}
		}
		return c.JSON(status, report)
	}
}
