package gateway

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/internal/forwarded"
	"github.com/authgate/authgate/internal/headername"
	"github.com/authgate/authgate/internal/methodoverride"
	"github.com/authgate/authgate/internal/proxy"
)

// Header hygiene before the check reads a request (README, "Headers"). The
// policy must decide on what the upstream will receive, and neither may see
// what a client wrote to pass for someone else:
//
//   - the identity headers (IDENTITY_HEADER_*), in any spelling: only
//     authgate sets them;
//   - forwarding headers (X-Forwarded-*, Forwarded, X-Real-Ip,
//     X-Original-*, X-Rewrite-Url, True-Client-Ip, X-Client-Ip, Client-Ip,
//     Cf-Connecting-Ip...), in any spelling, unless the connection comes
//     from one of TRUSTED_PROXIES, which wrote them; even then the
//     underscore spellings (no proxy writes X_Forwarded_Host, but CGI-style
//     frameworks read it as X-Forwarded-Host) and Forwarded (which
//     authgate does not read and Go's reverse proxy never passes on) go;
//   - method-override headers (X-HTTP-Method-Override, X-HTTP-Method,
//     X-Method-Override), in any spelling: many frameworks take the method
//     from them, so a POST carrying "DELETE" would reach the upstream as a
//     DELETE that neither the policy nor INTROSPECT_PATHS saw as one. In
//     verify mode authgate cannot remove what the proxy forwards: there
//     they stay, the policy always sees them (whatever OPA_INPUT_HEADERS
//     says) and INTROSPECT_PATHS match the method they name too;
//   - hop-by-hop headers: those the Connection header names and the
//     standard ones (Keep-Alive, Proxy-Connection, Trailer; Te but for
//     "trailers"), as the reverse proxy drops them on the way upstream.
//     Left alone: Connection itself (the server reads it for HTTP/1.0
//     keep-alive, the proxy for an upgrade), Upgrade and its token (the
//     upgrade decision is the proxy's), and the credentials the policy
//     never sees (Authorization, Proxy-Authorization, Cookie: a token
//     named hop-by-hop is still for authgate, and still goes no further).

// scrubInbound is the route middleware of proxy and serve modes that cleans
// the request's headers before the check; /verify calls scrub itself, once
// it has read the original request from the forwarding headers.
func (g *Gateway) scrubInbound() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			g.scrub(c.Request(), false)
			return next(c)
		}
	}
}

// scrub removes from req's headers what the policy and the upstream must
// not see (see above); verify keeps the method-override headers. One pass
// over the headers, no allocation unless a header name has an underscore
// or Te is rewritten.
func (g *Gateway) scrub(req *http.Request, verify bool) {
	h := req.Header
	if len(h["Connection"]) > 0 {
		dropConnectionNamed(h)
	}
	delete(h, "Keep-Alive")
	delete(h, "Proxy-Connection")
	delete(h, "Trailer")
	if te, ok := h["Te"]; ok {
		if httpguts.HeaderValuesContainsToken(te, "trailers") {
			h["Te"] = []string{"trailers"} // what the reverse proxy sends
		} else {
			delete(h, "Te")
		}
	}
	trusted := g.trusted.Trusts(req)
	id := g.deps.Identity
	for k := range h {
		switch {
		case id.named(k):
			delete(h, k)
		case forwarded.IsHeader(k) && (!trusted || strings.IndexByte(k, '_') >= 0 || strings.EqualFold(k, "Forwarded")):
			delete(h, k)
		case !verify && methodoverride.Is(k):
			delete(h, k)
		case g.clientCert != "" && headername.Is(k, g.clientCert) && (!trusted || k != g.deps.ClientCertHeader):
			// Believed from TRUSTED_PROXIES only (package certbind), and
			// in its own spelling: no proxy writes Client_Cert, which
			// CGI-style frameworks would read as Client-Cert.
			delete(h, k)
		}
	}
}

// dropConnectionNamed removes the headers that h's Connection header names,
// but for Upgrade and the credentials (see above).
func dropConnectionNamed(h http.Header) {
	for tok := range proxy.ConnectionTokens(h["Connection"]) {
		if strings.EqualFold(tok, "Upgrade") || strings.EqualFold(tok, "Connection") || hiddenName(tok) {
			continue
		}
		for k := range h {
			if strings.EqualFold(k, tok) {
				delete(h, k)
			}
		}
	}
}

// hiddenName reports whether name is one of hiddenHeaders, in any case.
func hiddenName(name string) bool {
	return strings.EqualFold(name, "Authorization") || strings.EqualFold(name, "Proxy-Authorization") || strings.EqualFold(name, "Cookie")
}
