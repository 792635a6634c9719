package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/authz"
	"github.com/authgate/authgate/internal/proxy"
)

// record is what the check learned about one request: the access log and
// the metrics read it once the request is answered. The check fills it in
// as it goes, so that a request that fails midway still says how far it got.
type record struct {
	outcome    string // allow, deny, invalid_token, no_token, bad_request, unavailable
	reason     string // e.g. "token inactive", "policy denied", "opa unavailable: breaker open"
	subject    string
	clientID   string
	validation string // how the token was validated: jwt or introspection
	lookup     authn.Lookup
	looked     bool          // lookup is meaningful
	introspect time.Duration // time spent in the token lookup
	opa        time.Duration // time spent asking OPA
	decisionID string
	cached     bool       // the decision came from the decision cache: decisionID is an earlier request's
	raw        string     // the token as sent, read once by the check (the proxy's re-check needs it)
	grant      grant      // an allowed request's token and decision, for the proxy handler
	granted    bool       // grant is set
	upgrade    bool       // proxy mode: an allowed upgrade (UPSTREAM_UPGRADES)
	opened     opened     // proxy mode: what a stream or tunnel's watch needs of the grant
	call       proxy.Call // proxy mode: its writer, token, stream or tunnel (the access log reads these)
	// input is the request as the policy sees it, built by the check; in
	// the record so that it costs no allocation.
	input authz.Input
	// token is the request as the token lookup sees it, built with input.
	token authn.Request

	attrs [23]slog.Attr // the access log's attributes, reused with the record
}

// recordKey is the context key of the request's record.
type recordKey struct{}

// scope is the request's context, made by observe: its record rides in
// it, in one allocation, so that what runs with the request's context
// finds it, the reverse proxy's shared hooks included (proxy.CallKey).
type scope struct {
	context.Context
	rec *record
}

func (s *scope) Value(k any) any {
	switch k {
	case recordKey{}:
		return s.rec
	case proxy.CallKey{}:
		return &s.rec.call
	}
	return s.Context.Value(k)
}

// recordOf returns the request's record. On the traffic listener, and on
// /verify and POST /revoke, the observe middleware has put one there; a
// request without one gets a record of its own, which nothing reads.
func recordOf(c echo.Context) *record {
	if r, ok := c.Request().Context().Value(recordKey{}).(*record); ok {
		return r
	}
	return &record{}
}
