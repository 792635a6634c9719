package introspect

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Revoke asks the server to revoke token (RFC 7009) at endpoint, the
// client authenticated as for introspection (a private_key_jwt assertion
// names endpoint as its audience). hint is sent as
// token_type_hint when set. The server answers 200 whether or not the token
// was valid; anything else is an *Error.
func (c *Client) Revoke(ctx context.Context, endpoint, token, hint string) error {
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	switch c.AuthMethod {
	case ClientSecretPost:
		form.Set("client_id", c.ClientID)
		form.Set("client_secret", c.ClientSecret)
	case PrivateKeyJWT:
		// An assertion of its own: its aud is the revocation endpoint.
		assertion, err := c.assertion(endpoint)
		if err != nil {
			return &Error{Err: err}
		}
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", assertion)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return &Error{Err: errors.New("bad revocation endpoint URL")}
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	if c.RequestHeader != nil {
		c.RequestHeader(ctx, req.Header)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.AuthMethod != ClientSecretPost && c.AuthMethod != PrivateKeyJWT {
		cred := url.QueryEscape(c.ClientID) + ":" + url.QueryEscape(c.ClientSecret)
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return &Error{Err: scrubURLError(err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return statusError(resp, body, parseRateLimit(resp.Header))
	}
	return nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}
