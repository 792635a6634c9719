package gateway

import (
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	rfc6750 "github.com/authgate/authgate/internal/bearer"
	"github.com/authgate/authgate/internal/dpop"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/methodoverride"
)

// Outcomes of a request that passes, as authgate_decisions_total labels
// them. A failure's outcome is its fault kind's (fault.Kind.Outcome).
const (
	outcomeAllow  = "allow"
	outcomePublic = "public" // PUBLIC_PATHS: not checked
)

// check is the middleware that protects a route: bearer token, then the
// token lookup (Deps.Tokens, whatever TOKEN_VALIDATION is), then the
// Decider (the policy). PUBLIC_PATHS bypass it.
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
			if err := g.describeRequest(req, in, &rec.token); err != nil {
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

// describeRequest describes the request itself to the policy (in) and to
// the token lookup (tr) in serve and proxy modes; its path has been
// cleaned by cleanRequestPath.
func (g *Gateway) describeRequest(req *http.Request, in *authz.Input, tr *authn.Request) error {
	query, err := parseQuery(req.URL.RawQuery)
	if err != nil {
		return err
	}
	o := g.trusted.Origin(req)
	*in = authz.Input{Method: req.Method, Path: req.URL.Path, Query: query,
		Headers: authz.Headers{Header: req.Header, Only: g.inputHeaders},
		Host:    o.Host, Scheme: o.Scheme, RemoteAddr: o.RemoteAddr, Mode: g.mode}
	*tr = authn.Request{Method: req.Method, Path: req.URL.Path, Scheme: o.Scheme, Host: o.Host,
		Target: req.RequestURI, Header: req.Header}
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

// authorize decides the request that in (for the policy) and rec.token
// (for the token lookup) describe: the request itself, or the one a proxy
// asks about. It fills rec as it goes. The token is always the request's
// own Authorization header.
func (g *Gateway) authorize(c echo.Context, rec *record, in *authz.Input) (*authn.Token, authz.Decision, error) {
	req := c.Request()
	scheme, raw, err := rfc6750.Credentials(req.Header)
	if err != nil {
		return nil, authz.Decision{}, err
	}
	rec.raw, rec.token.AuthScheme = raw, scheme
	ctx := req.Context()
	if g.deps.LookupClient {
		ctx = authn.WithClient(ctx, in.RemoteAddr)
	}
	start := time.Now()
	tok, lookup, err := g.deps.Tokens.Lookup(ctx, &rec.token, raw)
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
	in.Issuer = rec.token.Issuer // set by the lookup: the issuer that answered
	g.setBound(c.Response().Header(), in, &rec.token)
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

// setBound tells the policy (in) what the lookup found of the request's
// sender constraint (tr.Bound), and puts a fresh DPoP nonce in the answer's
// header h. A forwarded client certificate is the request's, not the
// token's: such an input is decided afresh, not from the decision cache
// (which keys on the token).
func (g *Gateway) setBound(h http.Header, in *authz.Input, tr *authn.Request) {
	in.TokenType, in.DPoP, in.ClientCert = tr.AuthScheme, nil, nil
	b := &tr.Bound
	if b.JKT != "" {
		in.DPoP = &authz.DPoPProof{JKT: b.JKT}
	}
	if b.CertX5tS256 != "" {
		in.ClientCert = &authz.ClientCert{X5tS256: b.CertX5tS256, Subject: b.CertSubject}
		in.Source = nil
	}
	if b.NextNonce != "" {
		h.Set(dpop.NonceHeader, b.NextNonce)
	}
}

// hasMethodOverride reports whether h holds a method-override header.
func hasMethodOverride(h http.Header) bool {
	for range methodoverride.Methods(h) {
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
