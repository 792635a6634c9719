package gateway

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
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
		// Once the original request is read from them: the forwarding
		// headers of an untrusted caller, a client's identity headers (a
		// proxy passes them on) and hop-by-hop ones out of the policy's
		// view, as in proxy mode.
		g.scrub(c.Request())
		if isPublic(g.deps.PublicPaths, f.method, f.path) {
			rec.outcome, rec.reason = outcomePublic, "public path"
			// Empty identity headers, so that a proxy copying them over the
			// client's (Envoy's allowed_upstream_headers) drops forged ones.
			id.setAll(c.Response().Header(), &authn.Token{})
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

// describeForwarded reads the original request a proxy asks about.
//
//   - Envoy (a path under /verify/, from ext_authz's path_prefix): the
//     request's own method, and its path after /verify and query.
//   - Traefik and nginx (exactly /verify): method from X-Forwarded-Method
//     (Traefik) or X-Original-Method (nginx convention), else the request's
//     own; URI from X-Forwarded-Uri (Traefik) or X-Original-URI (nginx),
//     required.
//   - host, scheme, remote address: X-Forwarded-Host/Proto/For when the
//     caller is one of TRUSTED_PROXIES, else the request's own.
//
// Ambiguity is refused (400), never resolved by precedence: a proxy passes
// the client's other headers on to /verify (nginx a client's
// X-Forwarded-Uri, Traefik a client's X-Original-URI), so whichever header
// won would let a client choose the request that gets decided. Hence: both
// conventions present with different values, a header given twice, or such
// headers on an Envoy-style path. The path is cleaned exactly as on the
// traffic listener; the method is taken as is (methods are case-sensitive).
func (g *Gateway) describeForwarded(req *http.Request, f *facts) error {
	method, err := forwardedValue(req.Header, "X-Forwarded-Method", "X-Original-Method")
	if err != nil {
		return err
	}
	uri, err := forwardedValue(req.Header, "X-Forwarded-Uri", "X-Original-Uri")
	if err != nil {
		return err
	}
	var rawPath, rawQuery string
	// The raw request target, not req.URL: see rawPathOf.
	if rest, envoy := strings.CutPrefix(rawPathOf(req), verifyPrefix+"/"); envoy {
		if method != "" || uri != "" {
			return errAmbiguous("X-Forwarded-* or X-Original-* request headers on an Envoy-style /verify/ path")
		}
		rawPath, rawQuery = "/"+rest, req.URL.RawQuery
	} else if uri != "" {
		if !strings.HasPrefix(uri, "/") {
			return errBadPath("original URI must start with /")
		}
		rawPath, rawQuery, _ = strings.Cut(uri, "?")
		if strings.ContainsFunc(rawQuery, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return errBadPath("original URI malformed")
		}
	} else {
		return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "no original URI: send X-Forwarded-Uri or X-Original-URI, or ask /verify/{path}"}
	}
	if method == "" {
		method = req.Method
	}
	if !validHeaderName(method) { // a method is a token, like a header name
		return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "original method malformed"}
	}
	path, err := cleanRawPath(rawPath)
	if err != nil {
		return err
	}
	query, err := parseQuery(rawQuery)
	if err != nil {
		return err
	}
	o := g.trusted.originOf(req)
	*f = facts{method: method, path: path, query: query, header: req.Header,
		host: o.host, scheme: o.scheme, remoteAddr: o.remoteAddr, mode: modeVerify}
	return nil
}

// forwardedValue returns the value of whichever of the two headers is set,
// "" when neither is. Two different values, or a header given twice, is an
// error.
func forwardedValue(h http.Header, traefik, nginx string) (string, error) {
	a, b := h[traefik], h[nginx]
	if len(a) > 1 || len(b) > 1 {
		return "", errAmbiguous("a header describing the original request given twice")
	}
	var va, vb string
	if len(a) == 1 {
		va = strings.TrimSpace(a[0])
	}
	if len(b) == 1 {
		vb = strings.TrimSpace(b[0])
	}
	if va != "" && vb != "" && va != vb {
		return "", errAmbiguous(traefik + " and " + nginx + " disagree")
	}
	if va != "" {
		return va, nil
	}
	return vb, nil
}

func errAmbiguous(why string) error {
	return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "original request ambiguous: " + why}
}
