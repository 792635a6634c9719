package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/fault"
)

// Revocation says where POST /revoke revoked a token.
type Revocation struct {
	// Scope is "fleet" (every replica sharing the Redis was told) or
	// "local" (this replica only: no Redis, or Redis did not answer).
	Scope string `json:"scope"`
	// Upstream is "revoked" when the IdP revoked it too (REVOKE_UPSTREAM),
	// else "off".
	Upstream string `json:"upstream"`
	// Issuer is the configured name of the issuer the token was taken for
	// (primary, or an ISSUERS name): the one whose authorization server
	// REVOKE_UPSTREAM tells. Only with ISSUERS; empty for a JWT of no
	// configured issuer.
	Issuer string `json:"issuer,omitempty"`
}

// RevokeRequest is one POST /revoke's form.
type RevokeRequest struct {
	Token string
	// Hint is token_type_hint (RFC 7009), passed on to the IdP.
	Hint string
	// Issuer is the form's issuer: the configured name of the issuer an
	// opaque token was issued by, which a revocation cannot otherwise know
	// (a lookup routes it by the request: OPAQUE_PATHS). Empty: authgate
	// chooses (docs/fleet.md). A name that is not configured, or that a
	// JWT's iss contradicts, is a BadRequest fault.Error, and nothing is
	// revoked.
	Issuer string
}

// Results of POST /revoke, as authgate_revoke_requests_total labels them.
const (
	revokeRevoked       = "revoked"
	revokeUpstreamError = "upstream_error" // revoked here, the IdP's revocation failed
	revokeBadRequest    = "bad_request"
	revokeUnauthorized  = "unauthorized" // ADMIN_API_TOKEN missing or wrong
)

// maxRevokeBody bounds the form of POST /revoke.
const maxRevokeBody = 16 << 10

// handleRevoke serves POST /revoke, shaped like RFC 7009: form members
// token and (optional) token_type_hint and issuer, the caller authenticated by
// Authorization: Bearer ADMIN_API_TOKEN. It answers 200 whether or not the
// token was known or cached (no oracle), with where it was revoked; 502 when
// REVOKE_UPSTREAM's call to the IdP failed (the local part is done). Its
// errors are written by the error handler (errors.go), as on every route.
//
// Every call is counted by result (Metrics.RevokeRequest: a refused admin
// token is "unauthorized", worth an alert) and, through observeWith, gets an
// access-log line with its status.
func (g *Gateway) handleRevoke() echo.HandlerFunc {
	want := sha256.Sum256([]byte(g.deps.AdminAPIToken))
	revoke := g.deps.Revoke
	count := func(string) {}
	if m := g.deps.Metrics; m != nil {
		count = m.RevokeRequest
	}
	return func(c echo.Context) error {
		req := c.Request()
		// Compared as hashes, in constant time: neither the token nor its
		// length leaks through timing.
		raw, ok := strings.CutPrefix(req.Header.Get(echo.HeaderAuthorization), "Bearer ")
		if got := sha256.Sum256([]byte(raw)); !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			count(revokeUnauthorized)
			return &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "ADMIN_API_TOKEN required"}
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, maxRevokeBody)
		if err := req.ParseForm(); err != nil {
			count(revokeBadRequest)
			return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "unreadable form"}
		}
		token := req.PostForm.Get("token")
		if token == "" {
			count(revokeBadRequest)
			return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "missing token"}
		}
		// Detached: a caller that goes away must not leave a revocation half done.
		r, err := revoke(context.WithoutCancel(req.Context()), RevokeRequest{Token: token,
			Hint: req.PostForm.Get("token_type_hint"), Issuer: req.PostForm.Get("issuer")})
		if fault.Is(err, fault.BadRequest) {
			count(revokeBadRequest)
			return err
		}
		g.deps.Log.Info("token revoked", "scope", r.Scope, "upstream", r.Upstream, "issuer", r.Issuer, "remote_addr", req.RemoteAddr)
		if err != nil {
			count(revokeUpstreamError)
			g.deps.Log.Warn("revocation at the authorization server failed (REVOKE_UPSTREAM)", "err", err)
			// Written by writeFault like every error: the IdP could not
			// answer (Unavailable, so Retry-After), shaped as 502 with
			// where authgate did revoke it.
			const desc = "revoked in authgate, but the authorization server's revocation failed"
			body, _ := json.Marshal(struct {
				errorBody
				Revocation
			}{errorBody{Error: "bad_gateway", ErrorDescription: desc}, r})
			return &fault.Error{Kind: fault.Unavailable, Code: "bad_gateway", Description: desc, Err: err,
				Answer: &fault.Answer{Status: http.StatusBadGateway, Body: body, BodyType: echo.MIMEApplicationJSON}}
		}
		count(revokeRevoked)
		return c.JSON(http.StatusOK, r)
	}
}
