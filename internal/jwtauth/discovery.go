package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Metadata is what authgate reads of an authorization server's metadata
// (RFC 8414; OpenID Connect Discovery uses the same members).
type Metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// Discover reads {issuer}/.well-known/oauth-authorization-server, else
// {issuer}/.well-known/openid-configuration (Okta serves both under a
// custom authorization server's issuer). The document's issuer must be
// issuer (RFC 8414 3.3) and it must name a jwks_uri. hc nil means
// http.DefaultClient.
func Discover(ctx context.Context, hc *http.Client, issuer string) (*Metadata, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	base := strings.TrimSuffix(issuer, "/")
	var errs []error
	for _, doc := range []string{"oauth-authorization-server", "openid-configuration"} {
		m, err := fetchMetadata(ctx, hc, base+"/.well-known/"+doc)
		if err == nil && strings.TrimSuffix(m.Issuer, "/") != base {
			err = fmt.Errorf("document names issuer %q", m.Issuer)
		}
		if err == nil && m.JWKSURI == "" {
			err = errors.New("document names no jwks_uri")
		}
		if err == nil {
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", doc, err))
	}
	return nil, errors.Join(errs...)
}

func fetchMetadata(ctx context.Context, hc *http.Client, url string) (*Metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, errors.New("bad issuer URL")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, scrubURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes))
	if err != nil {
		return nil, err
	}
	var m Metadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, errors.New("not a JSON metadata document")
	}
	return &m, nil
}
