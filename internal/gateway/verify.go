package gateway

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/forwarded"
	"github.com/authgate/authgate/internal/methodoverride"
	"github.com/authgate/authgate/internal/pathrule"
)

// verifyPrefix is the forward-auth endpoint on ADMIN_ADDR.
const verifyPrefix = "/verify"

// handleVerify is the forward-auth endpoint that nginx auth_request, Traefik
// ForwardAuth and Envoy's HTTP ext_authz call. It decides the request the
// proxy describes and answers 200 with the identity headers, 401, 403 (or
// the policy's own deny), 400 or 503. It never passes anything anywhere.
func (g *Gateway) handleVerify() echo.HandlerFunc {
	id := g.deps.Identity
	return func(c echo.Context) error {
		rec := recordOf(c)
		in := &rec.input
		if err := g.describeForwarded(c.Request(), in, &rec.token); err != nil {
			return err
		}
		// Once the original request is read from them: the forwarding
		// headers of an untrusted caller, a client's identity headers (a
		// proxy passes them on) and hop-by-hop ones out of the policy's
		// view, as in proxy mode. The method-override headers stay: the
		// proxy forwards them upstream whatever authgate does here.
		g.scrub(c.Request(), true)
		if g.publicVerify(in) {
			rec.outcome, rec.reason = outcomePublic, "public path"
			// Empty identity headers, so that a proxy copying them over the
			// client's (Envoy's allowed_upstream_headers) drops forged ones.
			id.setAll(c.Response().Header(), &authn.Token{})
			return c.NoContent(http.StatusOK)
		}
		tok, d, err := g.authorize(c, rec, in)
		if err != nil {
			return err
		}
		rec.outcome = outcomeAllow
		h := c.Response().Header()
		id.setAll(h, tok)
		for k, vs := range d.Headers {
			h[k] = slices.Clone(vs)
		}
		addHeaders(h, d.ResponseHeaders)
		return c.NoContent(http.StatusOK)
	}
}

// describeForwarded describes to the policy the original request a proxy
// asks about (forwarded.Original), its path cleaned exactly as on the
// traffic listener; host, scheme and remote address are the origin of the
// call itself (X-Forwarded-Host/Proto/For when the caller is one of
// TRUSTED_PROXIES). tr is the same for the token lookup.
func (g *Gateway) describeForwarded(req *http.Request, in *authz.Input, tr *authn.Request) error {
	// The raw request target, not req.URL: see pathrule.RawPath.
	orig, err := forwarded.Original(req, pathrule.RawPath(req), verifyPrefix)
	if err != nil {
		return err
	}
	path, err := pathrule.Clean(orig.RawPath)
	if err != nil {
		return err
	}
	query, err := parseQuery(orig.RawQuery)
	if err != nil {
		return err
	}
	o := g.trusted.Origin(req)
	*in = authz.Input{Method: orig.Method, Path: path, Query: query,
		Headers: authz.Headers{Header: req.Header, Only: g.inputHeaders, Also: methodoverride.Is},
		Host:    o.Host, Scheme: o.Scheme, RemoteAddr: o.RemoteAddr, Mode: authz.ModeVerify}
	*tr = authn.Request{Method: orig.Method, Path: path, Scheme: o.Scheme, Host: o.Host,
		Target: req.RequestURI, Header: req.Header, Original: orig}
	return nil
}

// publicVerify reports whether the request a proxy asks about is on
// PUBLIC_PATHS: its method and path, and every method its override headers
// name (the proxy forwards them, and the upstream may act on them), so
// that "GET /static/x" with X-HTTP-Method-Override: DELETE is checked
// unless DELETE /static/x is public too.
func (g *Gateway) publicVerify(in *authz.Input) bool {
	if !g.public.Match(in.Method, in.Path) {
		return false
	}
	for m := range methodoverride.Methods(in.Headers.Header) {
		if !g.public.Match(m, in.Path) {
			return false
		}
	}
	return true
}
