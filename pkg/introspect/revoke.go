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
	req, err := c.post(ctx, endpoint, form)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return &Error{Err: ScrubURLError(err)}
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

// post builds the POST of form to endpoint, the one way introspection and
// revocation authenticate the client, as AuthMethod says: client_id and
// client_secret in the form (client_secret_post), a private_key_jwt
// assertion whose aud is endpoint (RFC 7523), or HTTP Basic (RFC 6749
// 2.3.1: both parts form-urlencoded before base64); with Header and
// RequestHeader's headers. Errors are *Error.
func (c *Client) post(ctx context.Context, endpoint string, form url.Values) (*http.Request, error) {
	switch c.AuthMethod {
	case ClientSecretPost:
		form.Set("client_id", c.ClientID)
		form.Set("client_secret", c.ClientSecret)
	case PrivateKeyJWT:
		assertion, err := c.assertion(endpoint)
		if err != nil {
			return nil, &Error{Err: err}
		}
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", assertion)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &Error{Err: errors.New("bad endpoint URL")}
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
	return req, nil
}
