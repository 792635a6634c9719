package devidp

import (
	"net/http"
	"strconv"
	"strings"
)

// Handler returns the handler serving the endpoints under the issuer path.
// Wrong methods get 405 and unknown paths 404.
func (s *Server) Handler() http.Handler {
	p := s.path
	mux := http.NewServeMux()
	mux.Handle("POST "+p+"/v1/token", s.handleToken())
	mux.Handle("POST "+p+"/v1/introspect", s.handleIntrospect())
	mux.Handle("POST "+p+"/v1/revoke", s.handleRevoke())
	discovery := s.handleDiscovery()
	mux.Handle("GET "+p+"/.well-known/oauth-authorization-server", discovery)
	mux.Handle("GET "+p+"/.well-known/openid-configuration", discovery)
	mux.Handle("GET "+p+"/v1/keys", s.handleKeys())
	mux.Handle("POST "+p+"/devidp/rotate-key", s.handleRotate())

	// Count introspection requests before the rate limit, so that rejected
	// ones count too; the rate limit covers every /v1/* answer, 404 and 405
	// included, as Okta's does.
	return s.countIntrospections(s.v1(mux))
}

// countIntrospections counts the requests received on /v1/introspect.
func (s *Server) countIntrospections(next http.Handler) http.Handler {
	path := s.path + "/v1/introspect"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case path:
			s.introspectCalls.Add(1)
		case s.path + "/v1/keys":
			s.keysCalls.Add(1)
		}
		next.ServeHTTP(w, r)
	})
}

// v1 marks every /v1/* answer not cacheable and, when the server has a rate
// limit, adds Okta's X-Rate-Limit-* headers and answers 429 over the limit.
func (s *Server) v1(next http.Handler) http.Handler {
	prefix := s.path + "/v1/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, prefix) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		// Okta's key endpoint is not rate-limited (its answer may be cached).
		if s.limiter != nil && r.URL.Path != s.path+"/v1/keys" {
			remaining, reset, ok := s.limiter.take(s.now())
			h.Set("X-Rate-Limit-Limit", strconv.Itoa(s.limiter.limit))
			h.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
			h.Set("X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
			if !ok {
				// Okta's error shape, not RFC 6749's. No Retry-After: Okta
				// does not document one, so clients must not rely on it.
				writeJSON(w, http.StatusTooManyRequests, oktaError{
					ErrorCode:    "E0000047",
					ErrorSummary: "API call exceeded rate limit due to too many requests.",
				})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
