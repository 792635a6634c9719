package gateway

import (
	"iter"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/internal/forwarded"
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
		case !verify && isMethodOverride(k):
			delete(h, k)
		}
	}
}

// methodOverrides are the headers by which frameworks let a client
// override the request's method (Rails, Laravel, Symfony, ASP.NET, Express's
// method-override, Google's APIs...), lower-case with "-".
var methodOverrides = [...]string{"x-http-method-override", "x-http-method", "x-method-override"}

// isMethodOverride reports whether name is one of methodOverrides, in any
// case and with "_" read as "-" (CGI-style frameworks read X_HTTP_Method
// as X-HTTP-Method).
func isMethodOverride(name string) bool {
	for _, n := range methodOverrides {
		if len(name) == len(n) && equalFoldDash(name, n) {
			return true
		}
	}
	return false
}

// equalFoldDash reports whether name equals lower (lower-case ASCII, same
// length), ignoring ASCII case and reading "_" in name as "-".
func equalFoldDash(name, lower string) bool {
	for i := 0; i < len(lower); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// overriddenMethods yields each method h's method-override headers name
// (a value may list several, comma-separated), as written.
func overriddenMethods(h http.Header) iter.Seq[string] {
	return func(yield func(string) bool) {
		for k, vs := range h {
			if !isMethodOverride(k) {
				continue
			}
			for _, v := range vs {
				for m := range strings.SplitSeq(v, ",") {
					if !yield(strings.TrimSpace(m)) {
						return
					}
				}
			}
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
