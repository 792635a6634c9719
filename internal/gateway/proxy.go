package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// proxyMethods are the methods proxy mode and /verify route: Echo's Any
// covers a fixed list only, and a gateway should pass WebDAV and other
// registered methods too. Anything else gets 405.
var proxyMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodTrace,
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH",
	"PURGE", "QUERY", "LINK", "UNLINK",
}

// newProxy builds the one reverse proxy to UPSTREAM_URL, at startup.
// UPSTREAM_TIMEOUT bounds connecting and waiting for the response headers;
// a streamed body may take longer (the server's own timeouts bound it; a
// text/event-stream one, see stream.go; an upgraded connection, upgrade.go).
func (g *Gateway) newProxy() *httputil.ReverseProxy {
	d := g.deps
	target := d.Upstream
	dialer := &net.Dialer{Timeout: d.UpstreamTimeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 nil, // never through HTTP_PROXY: the upstream is named exactly
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   d.UpstreamTimeout,
		ResponseHeaderTimeout: d.UpstreamTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &httputil.ReverseProxy{
		// Rewrite (not Director): the client's X-Forwarded-* and hop-by-hop
		// headers are already gone from Out when it runs.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target) // path: the cleaned one; Host: the upstream's
			// The other forwarding headers of an untrusted client went
			// before the check (scrub), so that the policy did not see
			// them either.
			o := g.trusted.Origin(pr.In)
			xff := o.Peer
			if o.PeerTrusted {
				if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
					xff = strings.Join(prior, ", ") + ", " + xff
				}
			}
			pr.Out.Header.Set("X-Forwarded-For", xff)
			pr.Out.Header.Set("X-Forwarded-Host", o.Host)
			pr.Out.Header.Set("X-Forwarded-Proto", o.Scheme)
		},
		Transport:    transport,
		ErrorHandler: g.upstreamError,
		ErrorLog:     slog.NewLogLogger(d.Log.Handler(), slog.LevelWarn),
	}
}

// handleProxy sends a checked (or public) request to the upstream, with the
// caller's identity and the policy's headers on allow.
func (g *Gateway) handleProxy() echo.HandlerFunc {
	id := g.deps.Identity
	stripAuthz := g.deps.UpstreamStripAuthorization
	return func(c echo.Context) error {
		req := c.Request()
		rec := recordOf(c)
		var op opened // no token on a public path
		if rec.granted {
			op = g.opened(req, rec)
		}
		if stripAuthz {
			req.Header.Del("Authorization")
		}
		if rec.granted {
			gr := &rec.grant
			id.set(req.Header, gr.token)
			policy := gr.decision.Headers
			for k, vs := range policy {
				req.Header[k] = slices.Clone(vs) // replaces what the client sent
			}
			if len(req.Header["Connection"]) > 0 {
				keepOwnHeaders(req.Header, id, policy)
			}
		}
		if rec.upgrade {
			g.proxyUpgrade(c, req, op)
			return nil
		}
		rec.proxied.serve(g, c.Response(), req, op) // stream.go
		return nil
	}
}

// opened is what a stream or tunnel the checked request req may open needs
// to be watched (watch.go): the token as sent (the check has read it, so it
// is well formed), what the check made of it, and what its lookup
// depended on (as the check's input, rec.input, says). It costs no
// allocation: most answers are no stream.
func (g *Gateway) opened(req *http.Request, rec *record) opened {
	raw, _ := bearerToken(req.Header)
	in := &rec.input
	op := opened{raw: raw, token: rec.grant.token, method: in.Method, path: in.Path}
	if g.deps.LookupClient {
		op.client = in.RemoteAddr
	}
	return op
}

// keepOwnHeaders drops from the Connection header the names of the headers
// authgate sets: the proxy removes the headers listed there as hop-by-hop,
// and a client must not be able to have its identity removed on the way.
func keepOwnHeaders(h http.Header, id IdentityHeaders, policy http.Header) {
	var keep []string
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			own := strings.EqualFold(tok, id.Subject) || strings.EqualFold(tok, id.ClientID) || strings.EqualFold(tok, id.Scopes)
			if _, ok := policy[http.CanonicalHeaderKey(tok)]; ok {
				own = true
			}
			if tok != "" && !own {
				keep = append(keep, tok)
			}
		}
	}
	if len(keep) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = []string{strings.Join(keep, ", ")}
}

// upstreamError answers a failed upstream exchange: 504 when the upstream
// did not answer within UPSTREAM_TIMEOUT, else 502. Bodies are JSON like
// every other error answer.
func (g *Gateway) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := http.StatusBadGateway, errorBody{Error: "bad_gateway", ErrorDescription: "upstream unavailable"}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		status, body = http.StatusGatewayTimeout, errorBody{Error: "gateway_timeout", ErrorDescription: "upstream did not answer in time"}
	}
	if r.Context().Err() != nil {
		g.deps.Log.Debug("client went away during the upstream exchange", "method", r.Method, "path", r.URL.Path)
	} else {
		g.deps.Log.Warn("upstream exchange failed", "status", status, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		json.NewEncoder(w).Encode(body)
	}
}
