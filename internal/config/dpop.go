package config

import (
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/internal/dpop"
)

// DPoPSettings are the DPOP_* variables as package dpop takes them.
type DPoPSettings struct {
	Mode       dpop.Mode
	Algorithms []string
}

// DPoP reads DPOP_MODE and DPOP_ALGORITHMS (without blank entries); Load
// has checked them.
func (c *Config) DPoP() DPoPSettings {
	m, _ := dpop.ParseMode(c.DPoPMode)
	var algs []string
	for _, a := range c.DPoPAlgorithms {
		if a = strings.TrimSpace(a); a != "" {
			algs = append(algs, a)
		}
	}
	return DPoPSettings{Mode: m, Algorithms: algs}
}

// ClientCertHeaderName is CLIENT_CERT_HEADER in canonical form.
func (c *Config) ClientCertHeaderName() string {
	return http.CanonicalHeaderKey(strings.TrimSpace(c.ClientCertHeader))
}

// dpopProblems checks the sender-constraint variables.
func (c *Config) dpopProblems() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	if _, err := dpop.ParseMode(c.DPoPMode); err != nil {
		add("DPOP_MODE: must be allowed or required, got %q", c.DPoPMode)
	}
	d := c.DPoP()
	if len(d.Algorithms) == 0 {
		add("DPOP_ALGORITHMS: must name at least one algorithm (e.g. ES256,RS256,PS256,EdDSA)")
	} else if _, err := dpop.NewVerifier(dpop.Config{Algorithms: d.Algorithms, Replay: dpop.NewLocalReplay(1, nil)}); err != nil {
		add("DPOP_ALGORITHMS: %s (asymmetric JWS algorithms only: RS256..512, PS256..512, ES256..512, EdDSA, Ed25519)", strings.TrimPrefix(err.Error(), "dpop: "))
	}
	if c.DPoPProofMaxAge <= 0 {
		add("DPOP_PROOF_MAX_AGE: must be positive, got %s", c.DPoPProofMaxAge)
	}
	if name := strings.TrimSpace(c.ClientCertHeader); !httpguts.ValidHeaderFieldName(name) {
		add("CLIENT_CERT_HEADER: %q is not a header name", c.ClientCertHeader)
	}
	return p
}
