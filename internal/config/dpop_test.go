package config_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/dpop"
)

// TestLoadDPoP: the sender-constraint variables, read and checked, each
// problem naming its variable.
func TestLoadDPoP(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     map[string]string
		want    func(*config.Config)
		wantErr []string
	}{
		{
			name: "every variable set",
			env: with("DPOP_MODE", "required", "DPOP_ALGORITHMS", "ES256, EdDSA,", "DPOP_PROOF_MAX_AGE", "30s",
				"DPOP_NONCE", "true", "CLIENT_CERT_HEADER", "x-client-cert"),
			want: func(c *config.Config) {
				c.DPoPMode, c.DPoPAlgorithms, c.DPoPProofMaxAge = "required", []string{"ES256", " EdDSA", ""}, 30*time.Second
				c.DPoPNonce, c.ClientCertHeader = true, "x-client-cert"
			},
		},
		{
			name: "bad values",
			env:  with("DPOP_MODE", "sometimes", "DPOP_ALGORITHMS", "ES256,HS256", "DPOP_PROOF_MAX_AGE", "0s", "CLIENT_CERT_HEADER", "Client Cert"),
			wantErr: []string{
				`DPOP_MODE: must be allowed or required, got "sometimes"`,
				`DPOP_ALGORITHMS: algorithm "HS256" is not an asymmetric JWS algorithm (asymmetric JWS algorithms only: RS256..512, PS256..512, ES256..512, EdDSA, Ed25519)`,
				"DPOP_PROOF_MAX_AGE: must be positive, got 0s",
				`CLIENT_CERT_HEADER: "Client Cert" is not a header name`,
			},
		},
		{
			name:    "no algorithm",
			env:     with("DPOP_ALGORITHMS", " , "),
			wantErr: []string{"DPOP_ALGORITHMS: must name at least one algorithm (e.g. ES256,RS256,PS256,EdDSA)"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			c, err := config.Load(lookup(tt.env))
			checkErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			want := defaults()
			tt.want(&want)
			if !reflect.DeepEqual(*c, want) {
				t.Errorf("Load =\n%+v\nwant\n%+v", *c, want)
			}
			if d := c.DPoP(); d.Mode != dpop.Required || !reflect.DeepEqual(d.Algorithms, []string{"ES256", "EdDSA"}) {
				t.Errorf("DPoP() = %+v", d)
			}
			if got := c.ClientCertHeaderName(); got != "X-Client-Cert" {
				t.Errorf("ClientCertHeaderName() = %q", got)
			}
		})
	}
}
