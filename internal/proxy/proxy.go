// Package proxy is proxy mode's way to the upstream (UPSTREAM_URL): the
// reverse proxy, Server-Sent Events streams (stream.go), protocol upgrades
// and their tunnels (upgrade.go), and the registry that ends open streams
// and tunnels on a revocation, a re-check, the token's exp or shutdown
// (watch.go). Package gateway checks a request; this one carries it.
package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/forwarded"
)

// Config is what the proxy needs, built by the caller.
type Config struct {
	Upstream *url.URL
	// Timeout (UPSTREAM_TIMEOUT) bounds connecting and waiting for the
	// response headers.
	Timeout time.Duration
	Trust   forwarded.Trust // TRUSTED_PROXIES, for X-Forwarded-*
	Log     *slog.Logger
	// ErrorHandler answers a failed upstream exchange.
	ErrorHandler func(http.ResponseWriter, *http.Request, error)
	// Upgrades are the protocols (UPSTREAM_UPGRADES, lower case) a client
	// may switch to; none when empty.
	Upgrades []string
	// StreamWriteTimeout bounds each write of a streamed (text/event-stream)
	// answer; 0 means no write deadline for streams (stream.go).
	StreamWriteTimeout time.Duration
	// Streams is the registry of the open streams and tunnels (watch.go);
	// nil means one of the proxy's own.
	Streams *Streams
	// Now is the clock of the re-checks; nil means time.Now.
	Now func() time.Time
	// AfterFunc calls f after d and returns what stops it, as
	// time.AfterFunc and its Timer.Stop do; nil means time.AfterFunc.
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// CacheTTL is CACHE_TTL: a stream whose token answer came with no
	// cache entry is re-checked that long after it opened; 0: not at all.
	CacheTTL time.Duration
	// StaleIfError is CACHE_STALE_IF_ERROR: how long a stream lives on
	// while its re-check cannot be decided.
	StaleIfError time.Duration
}

// Methods are the methods proxy mode and /verify route: Echo's Any
// covers a fixed list only, and a gateway should pass WebDAV and other
// registered methods too. Anything else gets 405.
var Methods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodTrace,
	"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH",
	"PURGE", "QUERY", "LINK", "UNLINK",
}

// Proxy is the one reverse proxy to the upstream, built at startup.
type Proxy struct {
	cfg      Config
	rp       *httputil.ReverseProxy
	upgrades upgrades
}

// New builds the proxy. UPSTREAM_TIMEOUT bounds connecting and waiting for
// the response headers; a streamed body may take longer (the server's own
// timeouts bound it; a text/event-stream one, see stream.go; an upgraded
// connection, upgrade.go).
func New(c Config) *Proxy {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AfterFunc == nil {
		c.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	if c.Streams == nil {
		c.Streams = NewStreams()
	}
	target, trust := c.Upstream, c.Trust
	dialer := &net.Dialer{Timeout: c.Timeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 nil, // never through HTTP_PROXY: the upstream is named exactly
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   c.Timeout,
		ResponseHeaderTimeout: c.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	rp := &httputil.ReverseProxy{
		// Rewrite (not Director): the client's X-Forwarded-* and hop-by-hop
		// headers are already gone from Out when it runs.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target) // path: the cleaned one; Host: the upstream's
			// The other forwarding headers of an untrusted client went
			// before the check (scrub), so that the policy did not see
			// them either.
			o := trust.Origin(pr.In)
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
		ErrorHandler: c.ErrorHandler,
		ErrorLog:     slog.NewLogLogger(c.Log.Handler(), slog.LevelWarn),
	}
	p := &Proxy{cfg: c, rp: rp, upgrades: c.Upgrades}
	rp.ModifyResponse = p.modifyResponse
	return p
}

// Grant is what watching a stream or tunnel needs of the token the request
// that opened it was allowed with: the token as sent (its revocation key
// names it), what the check made of it, and how to look it up again as
// the check did.
type Grant struct {
	Raw     string
	Token   *authn.Token
	Recheck func(ctx context.Context) (*authn.Token, error)
}

// Granted gives the Grant of a request, asked once, while the request is
// served, when it opens a stream or tunnel: most answers are neither, and
// cost no Grant. A nil Granted is a public path: only shutdown ends what
// it opens.
type Granted interface {
	Grant() Grant
}
