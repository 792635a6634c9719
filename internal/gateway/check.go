package gateway

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/fault"
)

// Outcomes of a request that passes, as authgate_decisions_total labels
// them. A failure's outcome is its fault kind's (fault.Kind.Outcome).
const (
	outcomeAllow  = "allow"
	outcomePublic = "public" // PUBLIC_PATHS: not checked
)

// check is the middleware that protects a route: bearer token, then the
// token Verifier (introspection or a JWT's local check, cached; in hybrid
// mode a JWT is introspected too on INTROSPECT_PATHS), then the Decider
// (the policy). PUBLIC_PATHS bypass it.
func (g *Gateway) check() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rec := recordOf(c)
			req := c.Request()
			if g.public.Match(req.Method, req.URL.Path) {
				rec.outcome, rec.reason = outcomePublic, "public path"
				return next(c)
			}
			in := &rec.input
			if err := g.describeRequest(req, in); err != nil {
				return err
			}
			tok, d, err := g.authorize(c, rec, in)
			if err != nil {
				return err
			}
			rec.outcome = outcomeAllow
			if g.proxy != nil {
				rec.grant, rec.granted = grant{token: tok, decision: d}, true // for handleProxy
			}
			addHeaders(c.Response().Header(), d.ResponseHeaders)
			return next(c)
		}
	}
}

// describeRequest describes the request itself to the policy (serve and
// proxy modes); its path has been cleaned by cleanRequestPath.
func (g *Gateway) describeRequest(req *http.Request, in *authz.Input) error {
	query, err := parseQuery(req.URL.RawQuery)
	if err != nil {
		return err
	}
	o := g.trusted.Origin(req)
	*in = authz.Input{Method: req.Method, Path: req.URL.Path, Query: query,
		Headers: authz.Headers{Header: req.Header, Only: g.inputHeaders},
		Host:    o.Host, Scheme: o.Scheme, RemoteAddr: o.RemoteAddr, Mode: g.mode}
	return nil
}

// parseQuery parses a query string for the OPA input; an empty one costs
// nothing.
func parseQuery(raw string) (url.Values, error) {
	if raw == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "malformed query string"}
	}
	return q, nil
}

// authorize decides the request that in describes (the request itself, or
// the one a proxy asks about), filling rec as it goes. The token is always
// the request's own Authorization header.
func (g *Gateway) authorize(c echo.Context, rec *record, in *authz.Input) (*authn.Token, authz.Decision, error) {
	req := c.Request()
	raw, err := bearerToken(req.Header)
	if err != nil {
		return nil, authz.Decision{}, err
	}
	ctx := req.Context()
	if g.deps.LookupClient {
		ctx = authn.WithClient(ctx, in.RemoteAddr)
	}
	start := time.Now()
	tok, lookup, err := g.lookupToken(ctx, raw, in)
	rec.introspect, rec.lookup, rec.looked = time.Since(start), lookup, true
	if err != nil {
		return nil, authz.Decision{}, err
	}
	rec.subject, rec.clientID, rec.validation = tok.Subject, tok.ClientID, tok.Validation

	// The input's bounds are checked here, ahead of the Decider chain, so
	// that an open breaker or a cached decision never changes the answer.
	if err := in.Headers.Check(); err != nil {
		return nil, authz.Decision{}, err
	}
	in.SetToken(tok, raw, g.deps.SendToken)
	if in.Mode == authz.ModeVerify && hasMethodOverride(in.Headers.Header) {
		// The decision cache keys on method and path, not on the headers:
		// a verdict for "POST /x" must not answer a POST that the upstream
		// will read as the DELETE its override header names. Without a
		// Source the input is decided afresh and not kept (authz.Cache).
		in.Source = nil
	}
	start = time.Now()
	d, err := g.deps.Decider.Decide(req.Context(), in)
	if !d.Cached {
		rec.opa = time.Since(start)
	}
	if err != nil {
		return nil, authz.Decision{}, err
	}
	// A cached decision keeps OPA's decision_id, which names the decision
	// made for an earlier request: the access log marks it as reused.
	rec.decisionID, rec.cached = d.ID, d.Cached
	if !d.Allowed {
		return nil, authz.Decision{}, denied(&d)
	}
	return tok, d, nil
}

// lookupToken verifies raw for the request that in describes: the token
// Verifier, then, in hybrid mode on INTROSPECT_PATHS, the introspection of
// a JWT it validated. An open stream's re-check (proxy.Grant.Recheck) asks the same.
func (g *Gateway) lookupToken(ctx context.Context, raw string, in *authz.Input) (*authn.Token, authn.Lookup, error) {
	tok, lookup, err := g.deps.Tokens.Lookup(ctx, raw)
	if err == nil && g.deps.Introspect != nil && tok.Validation == authn.ValidationJWT && g.introspects(in) {
		// Verified locally first, so that a forged JWT never spends the
		// introspection budget; then asked about, for revocation.
		tok, lookup, err = g.deps.Introspect.Lookup(ctx, raw)
	}
	return tok, lookup, err
}

// introspects reports whether the request that in describes is on
// INTROSPECT_PATHS: by its method and path, or, in verify mode, where the
// proxy forwards the method-override headers that serve and proxy modes
// remove, by a method one of them names.
func (g *Gateway) introspects(in *authz.Input) bool {
	if g.introspect.Match(in.Method, in.Path) {
		return true
	}
	if in.Mode != authz.ModeVerify {
		return false
	}
	for m := range overriddenMethods(in.Headers.Header) {
		if g.introspect.Match(m, in.Path) {
			return true
		}
	}
	return false
}

// hasMethodOverride reports whether h holds a method-override header.
func hasMethodOverride(h http.Header) bool {
	for range overriddenMethods(h) {
		return true
	}
	return false
}

// denied is the error of a policy's deny: 403 access_denied, or the answer
// an object decision shaped (status, headers, body).
func denied(d *authz.Decision) error {
	e := &fault.Error{Kind: fault.Forbidden, Code: "access_denied", Description: "denied by policy", Err: denyReason(d.Reason)}
	if d.Rich() {
		e.Answer = &fault.Answer{Status: d.Status, Header: d.ResponseHeaders, Body: d.Body, BodyType: d.BodyType}
	}
	return e
}

// denyReason keeps why the policy denied (undefined, not a boolean, false)
// for the log.
type denyReason string

func (r denyReason) Error() string { return string(r) }
