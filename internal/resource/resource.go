// Package resource is the protected-resource metadata of RFC 9728: the
// document authgate serves, where it is, and the challenge parameter that
// names it.
package resource

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// Protected-resource metadata (RFC 9728), which OAuth clients such as MCP
// clients read to find out where to get a token for this resource: a 401
// names the document (WWW-Authenticate: Bearer resource_metadata="..."),
// the document names the authorization servers, their own metadata
// (RFC 8414) the token endpoint.

// ProtectedResource describes the resource authgate protects (RESOURCE_*).
type ProtectedResource struct {
	// URI is the resource identifier, sent as is as the document's
	// resource member (RFC 9728 requires it to equal the identifier the
	// client started from).
	URI string
	// AuthorizationServers are the issuers tokens may come from.
	AuthorizationServers []string
	// Scopes, Name and Documentation are listed when set.
	Scopes        []string
	Name          string
	Documentation string
	// DPoPAlgorithms (DPOP_ALGORITHMS), DPoPRequired (DPOP_MODE=required)
	// and CertificateBound (certificate-bound tokens can be checked: a
	// trusted proxy may forward the client certificate) describe the
	// sender constraint (RFC 9728 section 2).
	DPoPAlgorithms   []string
	DPoPRequired     bool
	CertificateBound bool
}

// wellKnownResource is the well-known path of RFC 9728 section 3.
const wellKnownResource = "/.well-known/oauth-protected-resource"

// MetadataURL is where the resource's metadata is, per RFC 9728 section
// 3.1: the well-known path inserted between the host and the resource's
// path (https://h/mcp → https://h/.well-known/oauth-protected-resource/mcp).
// It is built from URI alone, never from a request: no Host or
// X-Forwarded-Host can point a client's discovery elsewhere.
func (p *ProtectedResource) MetadataURL() string {
	u, err := url.Parse(p.URI)
	if err != nil {
		return "" // config validated RESOURCE_URI
	}
	return u.Scheme + "://" + u.Host + wellKnownResource + resourcePath(u)
}

// resourcePath is u's path as inserted after the well-known path: a path
// of only "/" is none (section 3.1 drops a terminating slash after the host).
func resourcePath(u *url.URL) string {
	if p := u.EscapedPath(); p != "/" {
		return p
	}
	return ""
}

// Metadata is the document as authgate serves it, built once at startup.
type Metadata struct {
	// Paths are the well-known path and, for a resource with a path, its
	// path-inserted form: clients ask either.
	Paths []string
	body  []byte
	// param is the challenge parameter naming the document.
	param string
}

// New builds the document; nil when p is (the feature is off).
func New(p *ProtectedResource) *Metadata {
	if p == nil {
		return nil
	}
	doc := struct {
		Resource              string   `json:"resource"`
		AuthorizationServers  []string `json:"authorization_servers,omitempty"`
		ScopesSupported       []string `json:"scopes_supported,omitempty"`
		BearerMethods         []string `json:"bearer_methods_supported"`
		ResourceName          string   `json:"resource_name,omitempty"`
		ResourceDocumentation string   `json:"resource_documentation,omitempty"`
		DPoPAlgorithms        []string `json:"dpop_signing_alg_values_supported,omitempty"`
		DPoPRequired          bool     `json:"dpop_bound_access_tokens_required,omitempty"`
		CertificateBound      bool     `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	}{
		Resource:              p.URI,
		AuthorizationServers:  p.AuthorizationServers,
		ScopesSupported:       p.Scopes,
		BearerMethods:         []string{"header"}, // RFC 6750 2.1 only: authgate reads no form or query token
		ResourceName:          p.Name,
		ResourceDocumentation: p.Documentation,
		DPoPAlgorithms:        p.DPoPAlgorithms,
		DPoPRequired:          p.DPoPRequired,
		CertificateBound:      p.CertificateBound,
	}
	body, _ := json.Marshal(doc) // strings and string slices only
	r := &Metadata{Paths: []string{wellKnownResource}, body: body, param: `resource_metadata="` + p.MetadataURL() + `"`}
	if u, err := url.Parse(p.URI); err == nil && resourcePath(u) != "" {
		r.Paths = append(r.Paths, wellKnownResource+resourcePath(u))
	}
	return r
}

// ChallengeParam is the resource_metadata parameter, "" when off.
func (r *Metadata) ChallengeParam() string {
	if r == nil {
		return ""
	}
	return r.param
}

// Is reports whether path is one of the metadata's paths.
func (r *Metadata) Is(path string) bool {
	for _, p := range r.Paths {
		if path == p {
			return true
		}
	}
	return false
}

// metadataMethods are the methods the metadata answers; others get 405.
const metadataMethods = "GET, HEAD, OPTIONS"

// Handler serves the document without a token. Browser-based
// clients fetch it across origins, hence CORS for any origin (it is public
// and carries no credentials), preflights included: MCP clients send an
// MCP-Protocol-Version header, which makes the GET preflighted.
func (r *Metadata) Handler() echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead:
			// Clients may cache it; an hour keeps a changed configuration
			// visible the same day.
			h.Set("Cache-Control", "public, max-age=3600")
			if c.Request().Method == http.MethodHead {
				h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
				return c.NoContent(http.StatusOK)
			}
			return c.JSONBlob(http.StatusOK, r.body)
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", metadataMethods)
			h.Set("Access-Control-Allow-Headers", "*")
			h.Set("Access-Control-Max-Age", "86400")
			return c.NoContent(http.StatusNoContent)
		}
		h.Set("Allow", metadataMethods)
		return echo.ErrMethodNotAllowed
	}
}

// AddParam names the metadata in each Bearer challenge of h
// that does not name one yet (a policy's own challenge, RFC 6750's
// insufficient_scope). The parameter goes right after the scheme, so that
// it belongs to the Bearer challenge even in a value that lists several.
func AddParam(h http.Header, param string) {
	vs := h["Www-Authenticate"] // canonical form of WWW-Authenticate
	for i, v := range vs {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.Contains(v, "resource_metadata=") {
			continue
		}
		if rest = strings.TrimSpace(rest); rest != "" {
			vs[i] = scheme + " " + param + ", " + rest
		} else {
			vs[i] = scheme + " " + param
		}
	}
}
