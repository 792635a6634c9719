package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/authgate/authgate/internal/config"
)

// idpTransport is the pool for one authorization server, trusting its
// CA_FILE (OKTA_CA_FILE for the primary) in addition to the system roots
// when it is set: a private CA trusted for one issuer is not trusted for
// another's.
func idpTransport(iss *config.Issuer) (*http.Transport, error) {
	t := newTransport()
	if iss.CAFile != "" {
		pool, err := caPool(iss.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", iss.Var("CA_FILE"), err)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return t, nil
}

// refuseDowngrade is the CheckRedirect of an issuer's clients: a redirect
// to plain http to a host that is not loopback is refused unless the first
// request was one already, the rule discovery applies to the endpoints a
// metadata document names (introspect.Discover). A 307 from an https
// endpoint must not send the token, a client_secret_post secret or the
// request for the signing keys on in clear. Go's limit of 10 redirects is
// kept.
func refuseDowngrade(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if config.PlainHTTPNonLoopback(req.URL.String()) && !config.PlainHTTPNonLoopback(via[0].URL.String()) {
		return errors.New("redirect to plain http to a host that is not loopback refused")
	}
	return nil
}

// opaTransport is the pool for OPA: OPA_CA_FILE for a private CA,
// OPA_CLIENT_CERT_FILE and OPA_CLIENT_KEY_FILE for mTLS.
func opaTransport(cfg *config.Config) (*http.Transport, error) {
	t := newTransport()
	if cfg.OPACAFile == "" && cfg.OPAClientCertFile == "" {
		return t, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.OPACAFile != "" {
		pool, err := caPool(cfg.OPACAFile)
		if err != nil {
			return nil, fmt.Errorf("OPA_CA_FILE: %w", err)
		}
		tc.RootCAs = pool
	}
	if cfg.OPAClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.OPAClientCertFile, cfg.OPAClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("OPA_CLIENT_CERT_FILE, OPA_CLIENT_KEY_FILE: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	t.TLSClientConfig = tc
	return t, nil
}

// caPool is the system roots plus the PEM certificates in path: a private
// CA is added to, not substituted for, the public ones.
func caPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New(path + ": no PEM certificate found")
	}
	return pool, nil
}

// warnPlainHTTP logs what config allowed but an operator should know: OPA
// over plain http to another host (the sidecar convention, but decisions
// and claims then cross a network in clear), and an insecure IdP URL
// accepted through ALLOW_INSECURE_HTTP.
func warnPlainHTTP(cfg *config.Config, log *slog.Logger) {
	if config.PlainHTTPNonLoopback(cfg.OPAAuthzURL) {
		log.Warn("OPA_AUTHZ_URL is plain http to a host that is not loopback: token claims and decisions cross the network in clear", "opa_authz_url", cfg.OPAAuthzURL)
	}
	if cfg.PlainRedisNonLoopback() {
		log.Warn("REDIS_URL is redis:// (no TLS) to a host that is not loopback: whoever is on the path sees and can replay the traffic; use rediss://")
	}
	for _, iss := range cfg.Issuers() {
		for _, u := range []struct{ name, val string }{{iss.Var("URL"), iss.URL}, {iss.Var("INTROSPECT_URL"), iss.IntrospectEndpoint}} {
			if config.PlainHTTPNonLoopback(u.val) {
				log.Warn(u.name+" is plain http to a host that is not loopback (ALLOW_INSECURE_HTTP=true): the client secret and tokens cross the network in clear", "url", u.val)
			}
		}
	}
}
