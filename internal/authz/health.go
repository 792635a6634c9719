package authz

import (
	"context"
	"net/http"

	"github.com/authgate/authgate/internal/breaker"
)

// Health checks the policy engine for /readyz: OPA's GET /health, then the
// breaker in front of it.
type Health struct {
	URL        string // OPA's /health
	HTTPClient *http.Client
	Breaker    *breaker.Breaker
}

// Check returns "ok" or what is wrong.
func (h *Health) Check(ctx context.Context) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return "bad health URL"
	}
	resp, err := h.HTTPClient.Do(req)
	if err != nil {
		return "unreachable"
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "unhealthy: status " + http.StatusText(resp.StatusCode)
	}
	return h.Breaker.Health()
}
