package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/proxy"
)

// handleProxy sends a checked (or public) request to the upstream, with the
// caller's identity and the policy's headers on allow.
func (g *Gateway) handleProxy() echo.HandlerFunc {
	id := g.deps.Identity
	stripAuthz := g.deps.UpstreamStripAuthorization
	return func(c echo.Context) error {
		req := c.Request()
		rec := recordOf(c)
		if stripAuthz {
			req.Header.Del("Authorization")
		}
		var gr proxy.Granted // none on a public path
		if rec.granted {
			gr = g.granted(rec)
			id.set(req.Header, rec.grant.token)
			policy := rec.grant.decision.Headers
			for k, vs := range policy {
				req.Header[k] = slices.Clone(vs) // replaces what the client sent
			}
			if len(req.Header["Connection"]) > 0 {
				keepOwnHeaders(req.Header, id, policy)
			}
		}
		if rec.upgrade {
			rec.call.Upgrade(g.proxy, c.Response(), req, gr)
			return nil
		}
		rec.call.Serve(g.proxy, c.Response(), req, gr)
		return nil
	}
}

// granted is what a stream or tunnel the checked request may open needs
// to be watched (package proxy): the token as sent (rec.raw, read by the
// check), what the check made of it, and what its lookup depended on (as
// the check's input, rec.input, says). It lives in the record and costs no
// allocation: most answers are no stream.
func (g *Gateway) granted(rec *record) *opened {
	in := &rec.input
	rec.opened = opened{g: g, raw: rec.raw, token: rec.grant.token, method: in.Method, path: in.Path}
	if g.deps.LookupClient {
		rec.opened.client = in.RemoteAddr
	}
	return &rec.opened
}

// opened is the record's proxy.Granted: what a stream's re-check needs.
type opened struct {
	g            *Gateway
	raw          string
	token        *authn.Token
	method, path string
	client       string // the client's address, for OKTA_MAX_RPS_PER_CLIENT; "" when off
}

// Grant copies what the re-check needs out of the pooled record, which the
// stream outlives by a re-check at most.
func (o *opened) Grant() proxy.Grant {
	op := *o
	return proxy.Grant{Raw: op.raw, Token: op.token, Recheck: func(ctx context.Context) (*authn.Token, error) {
		if op.client != "" {
			ctx = authn.WithClient(ctx, op.client)
		}
		// Recheck: the sender constraint was checked when the stream opened
		// (a DPoP proof is good for one request only).
		tok, _, err := op.g.deps.Tokens.Lookup(ctx, &authn.Request{Method: op.method, Path: op.path, Recheck: true}, op.raw)
		return tok, err
	}}
}

// keepOwnHeaders drops from the Connection header the names of the headers
// authgate sets: the proxy removes the headers listed there as hop-by-hop,
// and a client must not be able to have its identity removed on the way.
func keepOwnHeaders(h http.Header, id IdentityHeaders, policy http.Header) {
	proxy.DropConnectionTokens(h, func(tok string) bool {
		_, set := policy[http.CanonicalHeaderKey(tok)]
		return set || strings.EqualFold(tok, id.Subject) || strings.EqualFold(tok, id.ClientID) || strings.EqualFold(tok, id.Scopes)
	})
}

// upstreamError answers a failed upstream exchange through writeFault,
// like every other error answer: 504 when the upstream did not answer
// within UPSTREAM_TIMEOUT, else 502. It runs inside handleProxy, outside
// Echo's error handling: the request's outcome stays the check's.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	e := &fault.Error{Kind: fault.BadGateway, Description: "upstream unavailable", Err: err}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		e.Kind, e.Description = fault.GatewayTimeout, "upstream did not answer in time"
	}
	if r.Context().Err() != nil {
		g.deps.Log.Debug("client went away during the upstream exchange", "method", r.Method, "path", r.URL.Path)
	} else {
		g.deps.Log.Warn("upstream exchange failed", "status", e.Kind.Status(), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	g.writeFault(g.traffic.NewContext(r, w), e)
}

// screenUpgrade is the proxy-mode middleware that applies UPSTREAM_UPGRADES
// (proxy.Proxy.Screen), ahead of the check and of public paths alike.
func (g *Gateway) screenUpgrade() echo.MiddlewareFunc {
	p := g.proxy
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if p.Screen(req.Method, req.Header) {
				recordOf(c).upgrade = true
			}
			return next(c)
		}
	}
}

// answerMetadata is proxy mode's guard, after cleanRequestPath: a request
// whose cleaned path is a metadata path (however it was spelt) is answered
// by authgate, never forwarded to the upstream.
func (g *Gateway) answerMetadata() echo.MiddlewareFunc {
	r := g.resource
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if r == nil {
			return next
		}
		serve := r.Handler()
		return func(c echo.Context) error {
			if r.Is(c.Request().URL.Path) {
				return serve(c)
			}
			return next(c)
		}
	}
}
