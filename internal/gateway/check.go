package gateway

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
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
	outcomePublic       = "public" // PUBLIC_PATHS: not checked
)

// check is the middleware that protects a route: bearer token, then
// introspection (cached), then the policy decision. PUBLIC_PATHS bypass it.
func (g *Gateway) check() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rec := recordOf(c)
			req := c.Request()
			if isPublic(g.deps.PublicPaths, req.Method, req.URL.Path) {
				rec.outcome, rec.reason = outcomePublic, "public path"
				return next(c)
			}
			var f facts
			err := g.describeRequest(req, &f)
			var tok *authn.Token
			var d decision
			if err == nil {
				tok, d, err = g.authorize(c, rec, &f)
			}
			if err != nil {
				rec.outcome, rec.reason = failureOutcome(err)
				return err
			}
			rec.outcome = outcomeAllow
			if g.proxy != nil {
				rec.grant, rec.granted = grant{token: tok, decision: d}, true // for handleProxy
			}
			if d.rich != nil {
				addHeaders(c.Response().Header(), d.rich.responseHeaders)
			}
			return next(c)
		}
	}
}

// describeRequest describes the request itself to OPA (serve and proxy
// modes); its path has been cleaned by cleanRequestPath.
func (g *Gateway) describeRequest(req *http.Request, f *facts) error {
	query, err := parseQuery(req.URL.RawQuery)
	if err != nil {
		return err
	}
	o := g.trusted.originOf(req)
	*f = facts{method: req.Method, path: req.URL.Path, query: query, header: req.Header,
		host: o.host, scheme: o.scheme, remoteAddr: o.remoteAddr, mode: g.mode}
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

// authorize decides the request that f describes (the request itself, or
// the one a proxy asks about), filling rec as it goes. The token is always
// the request's own Authorization header.
func (g *Gateway) authorize(c echo.Context, rec *record, f *facts) (*authn.Token, decision, error) {
	req := c.Request()
	raw, err := bearerToken(req.Header)
	if err != nil {
		return nil, decision{}, err
	}
	start := time.Now()
	tok, lookup, err := g.deps.Tokens.Lookup(req.Context(), raw)
	if err == nil && g.deps.Introspect != nil && tok.Validation == authn.ValidationJWT &&
		isPublic(g.deps.IntrospectPaths, f.method, f.path) {
		// Verified locally first, so that a forged JWT never spends the
		// introspection budget; then asked about, for revocation.
		tok, lookup, err = g.deps.Introspect.Lookup(req.Context(), raw)
	}
	rec.introspect, rec.lookup, rec.looked = time.Since(start), lookup, true
	if err != nil {
		return nil, decision{}, err
	}
	rec.subject, rec.clientID, rec.validation = tok.Subject, tok.ClientID, tok.Validation

	d, cached := decision{}, false
	if g.decisions != nil {
		d, cached = g.decisions.get(tok, f)
	}
	if !cached {
		if d, err = g.ask(req.Context(), rec, f, tok, raw); err != nil {
			return nil, decision{}, err
		}
		if g.decisions != nil {
			g.decisions.put(tok, f, d)
		}
	}
	// A cached decision keeps OPA's decision_id, which names the decision
	// made for an earlier request: the access log marks it as reused.
	rec.decisionID, rec.cached = d.id, cached
	if !d.allowed {
		denied := &fault.Error{Kind: fault.Forbidden, Code: errPolicyDenied.Code, Description: errPolicyDenied.Description, Err: denyReason(d.reason)}
		if d.rich != nil {
			return nil, decision{}, &policyAnswer{denied: denied, rich: d.rich}
		}
		return nil, decision{}, denied
	}
	return tok, d, nil
}

// ask builds the OPA input for f and tok and asks for the decision.
func (g *Gateway) ask(ctx context.Context, rec *record, f *facts, tok *authn.Token, raw string) (decision, error) {
	bp := bufPool.Get().(*[]byte)
	body := appendInput((*bp)[:0], f, tok, raw, g.deps.SendToken)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, g.deps.OPATimeout)
	d, err := g.decider.decide(ctx, body)
	cancel()
	rec.opa = time.Since(start)
	if err != nil {
		// The transport may still hold body after a failed call; only a
		// completed one gives it back.
		return decision{}, err
	}
	*bp = body
	bufPool.Put(bp)
	return d, nil
}

// denyReason keeps why OPA denied (undefined, not a boolean, false) for the log.
type denyReason string

func (r denyReason) Error() string { return string(r) }
