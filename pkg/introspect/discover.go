package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Metadata is what a client of an authorization server reads of its
// metadata (RFC 8414; OpenID Connect Discovery uses the same members).
type Metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	// Refused says why Discover emptied an endpoint the document named
	// (nil when it refused none): one error per member, naming it.
	Refused error `json:"-"`
}

// Discover reads the metadata of the server at issuer:
// {issuer}/.well-known/oauth-authorization-server, else
// {issuer}/.well-known/openid-configuration (Okta serves both under a
// custom authorization server's issuer). The document's issuer must be
// issuer (RFC 8414 section 3.3). hc nil means http.DefaultClient.
//
// An endpoint the document names is refused (emptied, and reported in
// Refused) when it is plain http to a host other than loopback while the
// issuer is not: tokens, client credentials and signing keys must not
// travel in clear, nor be substituted on the way, because a document
// fetched over https said so. An issuer itself served over plain http to
// another host (which its configuration must have allowed) vouches for no
// more than that.
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
		if err == nil {
			m.refuseInsecure(PlainHTTPNonLoopback(issuer))
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", doc, err))
	}
	return nil, fmt.Errorf("discover: %w", errors.Join(errs...))
}

// refuseInsecure empties the endpoints that are plain http to a host other
// than loopback, unless insecureIssuer.
func (m *Metadata) refuseInsecure(insecureIssuer bool) {
	if insecureIssuer {
		return
	}
	var errs []error
	for _, e := range []struct {
		name string
		url  *string
	}{{"jwks_uri", &m.JWKSURI}, {"introspection_endpoint", &m.IntrospectionEndpoint}, {"revocation_endpoint", &m.RevocationEndpoint}} {
		if PlainHTTPNonLoopback(*e.url) {
			errs = append(errs, fmt.Errorf("%s %s refused: plain http to a host that is not loopback", e.name, *e.url))
			*e.url = ""
		}
	}
	m.Refused = errors.Join(errs...)
}

// PlainHTTPNonLoopback reports whether raw is an http:// URL whose host is
// neither "localhost" nor a loopback address.
func PlainHTTPNonLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "http") {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

func fetchMetadata(ctx context.Context, hc *http.Client, url string) (*Metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, errors.New("bad issuer URL")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, ScrubURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxResponseBytes))
	if err != nil {
		return nil, err
	}
	var m Metadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, errors.New("not a JSON metadata document")
	}
	return &m, nil
}
