package devidp

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// maxFormBytes bounds request bodies; real requests are a few hundred bytes.
const maxFormBytes = 64 << 10

// handleToken serves the client credentials grant (RFC 6749 section 4.4).
func (s *Server) handleToken() http.HandlerFunc {
	type response struct {
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope,omitempty"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		form, c, oerr := s.readRequest(w, r)
		if oerr != nil {
			writeError(w, oerr)
			return
		}
		switch gt := form.Get("grant_type"); gt {
		case "client_credentials":
		case "":
			writeError(w, invalidRequest("missing grant_type"))
			return
		default:
			writeError(w, &oauthError{
				status:      http.StatusBadRequest,
				Code:        "unsupported_grant_type",
				Description: "only the client_credentials grant is supported",
			})
			return
		}
		scopes, err := grantScopes(c, strings.Fields(form.Get("scope")))
		if err != nil {
			writeError(w, &oauthError{status: http.StatusBadRequest, Code: "invalid_scope", Description: err.Error()})
			return
		}
		// RFC 8707: the resource the token is for becomes its audience.
		// One resource only (readForm refuses a repeated parameter).
		resource := form.Get("resource")
		if resource != "" {
			if err := checkResource(resource); err != nil {
				writeError(w, &oauthError{status: http.StatusBadRequest, Code: "invalid_target", Description: "resource " + err.Error()})
				return
			}
		}
		// token_format=jwt is a devidp extension: a JWT for this request
		// even when the server issues opaque tokens by default.
		var access string
		if !s.jwt && form.Get("token_format") != "jwt" {
			access = s.mint(c.ID, resource, scopes, s.ttl)
		} else if access, err = s.mintJWT(c.ID, resource, scopes, s.ttl); err != nil {
			writeError(w, &oauthError{status: http.StatusInternalServerError, Code: "server_error", Description: "cannot sign the token"})
			return
		}
		writeJSON(w, http.StatusOK, response{
			TokenType:   "Bearer",
			ExpiresIn:   int64(s.ttl / time.Second),
			AccessToken: access,
			Scope:       strings.Join(scopes, " "),
		})
	}
}

// handleIntrospect serves token introspection (RFC 7662) with the members
// of Okta's answer. Any authenticated client may introspect any token.
func (s *Server) handleIntrospect() http.HandlerFunc {
	type response struct {
		Active    bool   `json:"active"`
		Scope     string `json:"scope,omitempty"`
		Username  string `json:"username,omitempty"`
		Exp       int64  `json:"exp,omitempty"`
		Iat       int64  `json:"iat,omitempty"`
		Sub       string `json:"sub,omitempty"`
		Aud       string `json:"aud,omitempty"`
		Iss       string `json:"iss,omitempty"`
		Jti       string `json:"jti,omitempty"`
		TokenType string `json:"token_type,omitempty"`
		ClientID  string `json:"client_id,omitempty"`
		UID       string `json:"uid,omitempty"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if err := sleep(r.Context(), s.latency); err != nil {
			return // the client has gone
		}
		form, _, oerr := s.readRequest(w, r)
		if oerr != nil {
			writeError(w, oerr)
			return
		}
		// token_type_hint is accepted and ignored, as RFC 7662 allows:
		// there are only access tokens.
		raw := form.Get("token")
		if raw == "" {
			writeError(w, invalidRequest("missing token"))
			return
		}
		t, ok := s.lookup(raw)
		if !ok {
			// RFC 7662 section 2.2: nothing but "active" for an inactive token.
			writeJSON(w, http.StatusOK, response{})
			return
		}
		writeJSON(w, http.StatusOK, response{
			Active:    true,
			Scope:     strings.Join(t.scopes, " "),
			Username:  t.clientID,
			Exp:       t.exp.Unix(),
			Iat:       t.iat.Unix(),
			Sub:       t.clientID,
			Aud:       cmp.Or(t.aud, s.audience),
			Iss:       s.issuer,
			Jti:       t.jti,
			TokenType: "Bearer",
			ClientID:  t.clientID,
			UID:       t.uid,
		})
	}
}

// handleRevoke serves token revocation (RFC 7009). A client may revoke only
// its own tokens (section 2.1); the answer is 200 whether the token was
// revoked, unknown or another client's, so it reveals nothing about tokens.
func (s *Server) handleRevoke() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		form, c, oerr := s.readRequest(w, r)
		if oerr != nil {
			writeError(w, oerr)
			return
		}
		raw := form.Get("token")
		if raw == "" {
			writeError(w, invalidRequest("missing token"))
			return
		}
		if t, ok := s.lookup(raw); ok && t.clientID == c.ID {
			s.Revoke(raw)
		}
		w.WriteHeader(http.StatusOK)
	}
}

// handleDiscovery serves the authorization server metadata (RFC 8414).
func (s *Server) handleDiscovery() http.HandlerFunc {
	authMethods := []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
	var scopes []string
	for _, c := range s.clients {
		scopes = append(scopes, c.Scopes...)
	}
	slices.Sort(scopes)
	doc := struct {
		Issuer                   string   `json:"issuer"`
		TokenEndpoint            string   `json:"token_endpoint"`
		TokenAuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
		IntrospectionEndpoint    string   `json:"introspection_endpoint"`
		IntrospectionAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
		RevocationEndpoint       string   `json:"revocation_endpoint"`
		JWKSURI                  string   `json:"jwks_uri"`
		RevocationAuthMethods    []string `json:"revocation_endpoint_auth_methods_supported"`
		GrantTypes               []string `json:"grant_types_supported"`
		ResponseTypes            []string `json:"response_types_supported"`
		Scopes                   []string `json:"scopes_supported,omitempty"`
	}{
		Issuer:                   s.issuer,
		TokenEndpoint:            s.issuer + "/v1/token",
		TokenAuthMethods:         authMethods,
		IntrospectionEndpoint:    s.issuer + "/v1/introspect",
		IntrospectionAuthMethods: authMethods,
		RevocationEndpoint:       s.issuer + "/v1/revoke",
		JWKSURI:                  s.issuer + "/v1/keys",
		RevocationAuthMethods:    authMethods,
		GrantTypes:               []string{"client_credentials"},
		ResponseTypes:            []string{}, // required by RFC 8414; there is no authorization endpoint
		Scopes:                   slices.Compact(scopes),
	}
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, doc)
	}
}

// readRequest reads the form of a /v1/* request and authenticates its client.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request) (url.Values, Client, *oauthError) {
	form, oerr := readForm(w, r)
	if oerr != nil {
		return nil, Client{}, oerr
	}
	c, oerr := s.authenticate(r, form)
	if oerr != nil {
		return nil, Client{}, oerr
	}
	return form, c, nil
}

// readForm returns the urlencoded body of r. The query string is ignored:
// credentials must not travel in the URI (RFC 6749 section 2.3.1). A
// repeated parameter is an error (section 3.2).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, invalidRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &oauthError{status: http.StatusRequestEntityTooLarge, Code: "invalid_request", Description: "request body too large"}
		}
		return nil, invalidRequest("malformed request")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, invalidRequest(fmt.Sprintf("repeated parameter %s", url.QueryEscape(k)))
		}
	}
	return r.PostForm, nil
}

// authenticate identifies the client by client_secret_basic or
// client_secret_post; using both at once is an error.
func (s *Server) authenticate(r *http.Request, form url.Values) (Client, *oauthError) {
	inForm := form.Has("client_id") || form.Has("client_secret")
	var id, secret string
	switch {
	case form.Has("client_assertion") || form.Has("client_assertion_type"):
		if inForm || r.Header.Get("Authorization") != "" {
			return Client{}, invalidRequest("client credentials sent both as an assertion and otherwise")
		}
		return s.authenticateAssertion(r, form)
	case r.Header.Get("Authorization") != "":
		if inForm {
			return Client{}, invalidRequest("client credentials sent both in the Authorization header and in the body")
		}
		// RFC 6749 section 2.3.1: ID and secret are form-urlencoded before
		// being joined and base64-encoded.
		u, p, ok := r.BasicAuth()
		if ok {
			var errU, errP error
			id, errU = url.QueryUnescape(u)
			secret, errP = url.QueryUnescape(p)
			ok = errU == nil && errP == nil
		}
		if !ok {
			return Client{}, invalidClient("malformed Basic client credentials")
		}
	case inForm:
		id, secret = form.Get("client_id"), form.Get("client_secret")
	default:
		return Client{}, invalidClient("client authentication required")
	}
	c, ok := s.clients[id]
	if !ok || c.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return Client{}, invalidClient("client authentication failed")
	}
	return c, nil
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// oauthError is an RFC 6749 section 5.2 error answer.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func invalidRequest(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: "invalid_request", Description: desc}
}

func invalidClient(desc string) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, Code: "invalid_client", Description: desc}
}

func writeError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="devidp"`)
	}
	writeJSON(w, e.status, e)
}

// oktaError is the error shape of Okta's management answers, such as 429.
type oktaError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorSummary string `json:"errorSummary"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // an error means the client has gone
}
