package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/requestid"
)

// Metrics is what the gateway reports of each request it answers on the
// traffic listener.
type Metrics interface {
	// Request counts an answered request; route is the route template, ""
	// when no route matched.
	Request(route, method string, code int, d time.Duration)
	// Decision counts a checked request by outcome (allow, deny, ...).
	Decision(outcome string)
	// CacheLookup counts how the token cache answered.
	CacheLookup(l authn.Lookup)
	// IssuerCacheLookup counts it again under the issuer the token went to
	// (its configured name).
	IssuerCacheLookup(l authn.Lookup, issuer string)
	// RevokeRequest counts a POST /revoke on the admin listener by result:
	// revoked, upstream_error, bad_request, unauthorized.
	RevokeRequest(result string)
}

// AccessLogMsg is the msg of access-log lines.
const AccessLogMsg = "request"

// unmatchedRoute names the route of a request that matched none, in the
// access log and the span (as the metrics do).
const unmatchedRoute = "unmatched"

// recordPool recycles records: the observe middleware owns each one for
// exactly one request.
var recordPool = sync.Pool{New: func() any { return new(record) }}

// reset clears r for its next request. Field by field: copying the whole
// record would copy the attribute array, with a write barrier per pointer.
func (r *record) reset() {
	clear(r.attrs[:]) // drop references to the request's strings
	r.outcome, r.reason, r.subject, r.clientID, r.decisionID, r.cached = "", "", "", "", "", false
	r.validation = ""
	r.lookup, r.looked, r.introspect, r.opa = 0, false, 0, 0
	r.raw, r.grant, r.granted = "", grant{}, false
	r.upgrade, r.opened = false, opened{}
	r.call.Reset()
	r.input, r.token = authz.Input{}, authn.Request{}
}

// observe is the outermost middleware of the traffic listener (and of
// /verify). It settles the request id (the client's when well formed, else
// a new one) and puts it on the request (so that the policy input and
// upstreams see it), on the response, and in the context (for the IdP and
// OPA calls); after the handler it reads the request's record for the
// metrics and the access log.
func (g *Gateway) observe() echo.MiddlewareFunc { return g.observeWith(g.deps.Metrics) }

// observeWith is observe counting in m; nil m: the access log only (POST
// /revoke, which is not traffic and has its own counter).
func (g *Gateway) observeWith(m Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			req := c.Request()
			ctx, ids := requestid.Attach(req.Context(), req.Header)
			req.Header[requestid.Header] = ids
			c.Response().Header()[requestid.Header] = ids
			rec := recordPool.Get().(*record)
			c.SetRequest(req.WithContext(&scope{Context: ctx, rec: rec}))

			// A proxied answer the client left, or the upstream broke, midway
			// ends in a panic of http.ErrAbortHandler (ReverseProxy's way to
			// abort the response): it is still counted and logged, and its
			// stream's watch released, before the panic goes on.
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						g.answered(ctx, c, rec, start, ids[0], m)
					}
					panic(v)
				}
			}()
			if err := next(c); err != nil {
				rec.classify(err)
				c.Error(err) // answer now, so that the status is known below
			}
			g.answered(ctx, c, rec, start, ids[0], m)
			rec.reset()
			recordPool.Put(rec)
			return nil
		}
	}
}

// answered reads the record of a request answered (or aborted) for the
// metrics (m; nil: none), the span and the access log, then releases the watch of its
// stream or tunnel, if any.
func (g *Gateway) answered(ctx context.Context, c echo.Context, rec *record, start time.Time, id string, m Metrics) {
	log := g.deps.Log
	d := time.Since(start)
	req, resp := c.Request(), c.Response()
	if down, _, _, _, switched := rec.call.Tunnel(); switched {
		// What echo cannot see past the Hijack: the metrics and the access
		// log read them as for any answer.
		resp.Status, resp.Size = http.StatusSwitchingProtocols, down
	}
	route := c.Path()
	if m != nil {
		m.Request(route, req.Method, resp.Status, d)
		if rec.outcome != "" {
			m.Decision(rec.outcome)
		}
		if rec.looked {
			m.CacheLookup(rec.lookup)
			if rec.token.IssuerName != "" {
				m.IssuerCacheLookup(rec.lookup, rec.token.IssuerName)
			}
		}
	}
	var span trace.Span
	if g.deps.Tracing {
		span = trace.SpanFromContext(ctx)
		annotate(span, route, req.Method, id, rec)
	}
	if log.Enabled(ctx, slog.LevelInfo) {
		accessLog(log, req, route, id, resp, d, rec, span)
	}
	rec.call.Logged() // a shutdown waits for this line (Streams.Wait)
}

// annotate names the request's span after its route, which the tracing
// handler around the router cannot know, and adds what the check learned.
func annotate(span trace.Span, route, method, id string, rec *record) {
	if !span.IsRecording() {
		return
	}
	if route == "" {
		route = unmatchedRoute
	}
	span.SetName(method + " " + route)
	span.SetAttributes(attribute.String("http.route", route), attribute.String("authgate.request_id", id))
	if rec.outcome != "" {
		span.SetAttributes(attribute.String("authgate.outcome", rec.outcome))
	}
	if rec.looked {
		span.SetAttributes(attribute.String("authgate.cache", rec.lookup.String()))
	}
	if rec.outcome == fault.OutcomeUnavailable {
		span.SetStatus(codes.Error, rec.reason)
	}
}

// accessLog writes the request's line. It never holds the token: only what
// the record and the response say.
func accessLog(log *slog.Logger, req *http.Request, route, id string, resp *echo.Response, d time.Duration, rec *record, span trace.Span) {
	if route == "" {
		route = unmatchedRoute
	}
	a := rec.attrs[:0]
	a = append(a,
		slog.String("request_id", id),
		slog.String("method", req.Method),
		slog.String("route", route),
		slog.Int("status", resp.Status))
	if rec.outcome != "" {
		a = append(a, slog.String("outcome", rec.outcome))
	}
	if rec.reason != "" {
		a = append(a, slog.String("reason", rec.reason))
	}
	if rec.subject != "" {
		a = append(a, slog.String("subject", rec.subject))
	}
	if rec.clientID != "" {
		a = append(a, slog.String("client_id", rec.clientID))
	}
	if rec.validation != "" {
		a = append(a, slog.String("validation", rec.validation))
	}
	if rec.looked {
		a = append(a, slog.String("cache", rec.lookup.String()), slog.Duration("introspect_duration", rec.introspect))
		if rec.token.IssuerName != "" {
			a = append(a, slog.String("issuer", rec.token.IssuerName))
		}
	}
	if rec.opa != 0 {
		a = append(a, slog.Duration("opa_duration", rec.opa))
	}
	if rec.decisionID != "" {
		a = append(a, slog.String("decision_id", rec.decisionID))
	}
	if rec.cached {
		a = append(a, slog.Bool("decision_cached", true))
	}
	if _, up, d, expired, switched := rec.call.Tunnel(); switched {
		a = append(a, slog.Duration("tunnel_duration", d), slog.Int64("tunnel_bytes_up", up))
		if expired {
			a = append(a, slog.Bool("tunnel_expired", true))
		}
	}
	if by := rec.call.EndedBy(); by != "" {
		a = append(a, slog.String("ended_by", by))
	}
	a = append(a,
		slog.Duration("duration", d),
		slog.Int64("bytes", resp.Size),
		slog.String("remote_addr", req.RemoteAddr))
	if span != nil {
		if sc := span.SpanContext(); sc.HasTraceID() {
			a = append(a, slog.String("trace_id", sc.TraceID().String()))
		}
	}
	// One group without a key, which handlers inline: the attributes stay
	// in the pooled record instead of a slice slog would allocate for more
	// than five. The built-in handlers format synchronously, so the record
	// can be reused once Handle returns. The handler is called directly,
	// with no caller PC: Logger.LogAttrs would walk the stack for one.
	// Durations are slog Durations: integer nanoseconds in JSON (slog
	// formats a float through encoding/json), "1.5ms" in text.
	r := slog.NewRecord(time.Now(), slog.LevelInfo, AccessLogMsg, 0)
	r.AddAttrs(slog.Attr{Value: slog.GroupValue(a...)})
	log.Handler().Handle(req.Context(), r) //nolint:errcheck // nowhere to report a failed log write
}

// classify names a failed request's outcome and reason from its error,
// once, after the handler: a fault's kind says the outcome (the fault
// table), its Reason the why. Echo's own errors (no route, 405) are no
// outcome: nothing was checked.
func (r *record) classify(err error) {
	var fe *fault.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &fe):
		r.outcome, r.reason = fe.Kind.Outcome(), fe.Reason()
	case errors.As(err, &he):
	default:
		r.outcome, r.reason = fault.OutcomeError, err.Error()
	}
}

// handlePprof serves net/http/pprof's pages under /debug/pprof/.
func handlePprof() echo.HandlerFunc {
	index := http.HandlerFunc(pprof.Index)
	named := map[string]http.HandlerFunc{
		"cmdline": pprof.Cmdline, "profile": pprof.Profile, "symbol": pprof.Symbol, "trace": pprof.Trace,
	}
	return func(c echo.Context) error {
		h := index
		if n, ok := named[c.Param("*")]; ok {
			h = n
		}
		h.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}
