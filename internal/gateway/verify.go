package gateway

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/fault"
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
		var f facts
		err := g.describeForwarded(c.Request(), &f)
		if err != nil {
			rec.outcome, rec.reason = failureOutcome(err)
			return err
		}
		if isPublic(g.deps.PublicPaths, f.method, f.path) {
			rec.outcome, rec.reason = outcomePublic, "public path"
			return c.NoContent(http.StatusOK)
		}
		tok, d, err := g.authorize(c, rec, &f)
		if err != nil {
			rec.outcome, rec.reason = failureOutcome(err)
			return err
		}
		rec.outcome = outcomeAllow
		h := c.Response().Header()
		id.setAll(h, tok)
		if r := d.rich; r != nil {
			for k, vs := range r.headers {
				h[k] = slices.Clone(vs)
			}
			addHeaders(h, r.responseHeaders)
		}
		return c.NoContent(http.StatusOK)
	}
}

// describeForwarded reads the original request a proxy asks about:
//
//   - method: X-Forwarded-Method (Traefik), X-Original-Method (nginx
//     convention), else the request's own method (Envoy);
//   - URI: X-Forwarded-Uri (Traefik), X-Original-URI (nginx), else the path
//     after /verify and the query of the request itself (Envoy's
//     path_prefix);
//   - host, scheme, remote address: X-Forwarded-Host/Proto/For when the
//     caller is one of TRUSTED_PROXIES, else the request's own.
//
// The path is cleaned exactly as on the traffic listener.
func (g *Gateway) describeForwarded(req *http.Request, f *facts) error {
	method := firstHeader(req.Header, "X-Forwarded-Method", "X-Original-Method")
	if method == "" {
		method = req.Method
	}
	if !validHeaderName(method) { // a method is a token, like a header name
		return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "original method malformed"}
	}
	uri := firstHeader(req.Header, "X-Forwarded-Uri", "X-Original-Uri")
	if uri == "" {
		uri = strings.TrimPrefix(req.URL.EscapedPath(), verifyPrefix)
		if uri == "" || uri[0] != '/' {
			uri = "/" + uri
		}
		if req.URL.RawQuery != "" {
			uri += "?" + req.URL.RawQuery
		}
	}
	if !strings.HasPrefix(uri, "/") {
		return errBadPath("original URI must start with /")
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return errBadPath("original URI malformed")
	}
	path, err := cleanPath(u)
	if err != nil {
		return err
	}
	query, err := parseQuery(u.RawQuery)
	if err != nil {
		return err
	}
	o := g.trusted.originOf(req)
	*f = facts{method: strings.ToUpper(method), path: path, query: query, header: req.Header,
		host: o.host, scheme: o.scheme, remoteAddr: o.remoteAddr, mode: modeVerify}
	return nil
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(h.Get(n)); v != "" {
			return v
		}
	}
	return ""
}
