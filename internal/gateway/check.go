package gateway

import (
	"context"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/fault"
)

// Outcomes of the check, named as the authgate_decisions_total metric labels them.
const (
	outcomeAllow        = "allow"
	outcomeDeny         = "deny"
	outcomeInvalidToken = "invalid_token"
	outcomeNoToken      = "no_token"
	outcomeBadRequest   = "bad_request"
	outcomeUnavailable  = "unavailable"
)

// check is the middleware that protects a route: bearer token, then
// introspection (cached), then the policy decision.
func (g *Gateway) check() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rec := recordOf(c)
			if err := g.authorize(c, rec); err != nil {
				rec.outcome, rec.reason = failureOutcome(err)
				return err
			}
			rec.outcome = outcomeAllow
			return next(c)
		}
	}
}

// authorize decides one request, filling rec as it goes.
func (g *Gateway) authorize(c echo.Context, rec *record) error {
	req := c.Request()
	raw, err := bearerToken(req.Header)
	if err != nil {
		return err
	}
	query, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "malformed query string"}
	}
	start := time.Now()
	tok, lookup, err := g.deps.Tokens.Lookup(req.Context(), raw)
	rec.introspect, rec.lookup, rec.looked = time.Since(start), lookup, true
	if err != nil {
		return err
	}
	rec.subject, rec.clientID = tok.Subject, tok.ClientID

	bp := bufPool.Get().(*[]byte)
	body := appendInput((*bp)[:0], &facts{method: req.Method, path: req.URL.Path, query: query, header: req.Header}, tok, raw, g.deps.SendToken)
	start = time.Now()
	ctx, cancel := context.WithTimeout(req.Context(), g.deps.OPATimeout)
	d, err := g.decider.decide(ctx, body)
	cancel()
	rec.opa = time.Since(start)
	if err != nil {
		// The transport may still hold body after a failed call; only a
		// completed one gives it back.
		return err
	}
	*bp = body
	bufPool.Put(bp)
	rec.decisionID = d.id
	if !d.allowed {
		return &fault.Error{Kind: fault.Forbidden, Code: errPolicyDenied.Code, Description: errPolicyDenied.Description, Err: denyReason(d.reason)}
	}
	return nil
}

// denyReason keeps why OPA denied (undefined, not a boolean, false) for the log.
type denyReason string

func (r denyReason) Error() string { return string(r) }
