package tokens

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/gateway"
	"github.com/authgate/authgate/internal/jwtauth"
	"github.com/authgate/authgate/internal/metrics"
	"github.com/authgate/authgate/internal/tokenid"
)

// build runs Build for the configuration env (on top of the required
// variables) against idp, a stand-in for the authorization server.
func build(t *testing.T, idp *httptest.Server, env map[string]string) *Tokens {
	t.Helper()
	return buildLogged(t, idp, env, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// buildLogged is build with log as the token side's logger.
func buildLogged(t *testing.T, idp *httptest.Server, env map[string]string, log *slog.Logger) *Tokens {
	t.Helper()
	envFile := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(envFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{
		"ENV_FILE": envFile, "OKTA_ISSUER": idp.URL, "OKTA_CLIENT_ID": "authgate", "OKTA_CLIENT_SECRET": "s3cret",
		"OKTA_INTROSPECT_URL": idp.URL + "/introspect", "OKTA_JWKS_URL": idp.URL + "/keys", "OKTA_AUDIENCE": "api://x",
		"OPA_AUTHZ_URL": "http://127.0.0.1:8181/v1/data/gateway/authz/decision",
	}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := full[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]Parts{config.PrimaryIssuer: {IdP: idp.Client(), JWKS: idp.Client(),
		Breaker: breaker.New(breaker.Settings{Name: "idp", Failures: 5, OpenTimeout: time.Minute})}}
	for _, iss := range cfg.Issuers()[1:] {
		parts[iss.Name] = Parts{IdP: http.DefaultClient, JWKS: http.DefaultClient,
			Breaker: breaker.New(breaker.Settings{Name: "idp_" + iss.Name, Failures: 5, OpenTimeout: time.Minute})}
	}
	toks, err := Build(context.Background(), Settings{Config: cfg, Log: log,
		Metrics: metrics.New(prometheus.NewRegistry()), Issuers: parts, Streams: gateway.NewStreams()})
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// TestBuild: each TOKEN_VALIDATION mode is assembled as assemble.go says:
// what answers the gateway, and which readiness checks the keys add.
func TestBuild(t *testing.T) {
	idp := httptest.NewServer(http.NotFoundHandler())
	defer idp.Close()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		onPaths bool
		ready   []string
	}{
		{"introspect", nil, false, nil},
		{"jwt", map[string]string{"TOKEN_VALIDATION": "jwt"}, false, []string{"jwks", "signing_keys"}},
		{"hybrid", map[string]string{"TOKEN_VALIDATION": "hybrid"}, false, []string{"jwks", "signing_keys"}},
		{"hybrid with INTROSPECT_PATHS", map[string]string{"TOKEN_VALIDATION": "hybrid", "INTROSPECT_PATHS": "/pay"}, true, []string{"jwks", "signing_keys"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks := build(t, idp, tc.env)
			if _, ok := toks.lookup.(*Bound); !ok {
				t.Fatalf("lookup %T, want the sender constraint (*Bound) on top", toks.lookup)
			}
			c := toks.chains[0]
			_, onPaths := c.lookup.(*jwtauth.IntrospectOnPaths)
			if onPaths != tc.onPaths || (c.introspect != nil) != tc.onPaths {
				t.Errorf("lookup %T (second cache %v), want IntrospectOnPaths %v", c.lookup, c.introspect != nil, tc.onPaths)
			}
			var names []string
			for _, c := range toks.ReadyChecks() {
				names = append(names, c.Name)
			}
			if len(names) != len(tc.ready) || (len(names) > 0 && (names[0] != tc.ready[0] || names[1] != tc.ready[1])) {
				t.Errorf("ready checks %q, want %q", names, tc.ready)
			}
		})
	}
}

// TestRevokeKey: a revocation empties every cache, INTROSPECT_PATHS' too:
// the token is refused on those paths and elsewhere, without asking the
// authorization server again.
func TestRevokeKey(t *testing.T) {
	var calls atomic.Int32
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"active":true,"sub":"alice","aud":"api://x","exp":4102444800}`)
	}))
	defer idp.Close()
	toks := build(t, idp, map[string]string{"TOKEN_VALIDATION": "hybrid", "INTROSPECT_PATHS": "/pay"})
	ctx := context.Background()
	pay, other := &authn.Request{Method: "GET", Path: "/pay"}, &authn.Request{Method: "GET", Path: "/x"}
	for _, r := range []*authn.Request{pay, other} {
		if _, _, err := toks.Lookup(ctx, r, "opaque-token"); err != nil {
			t.Fatalf("%s before the revocation: %v", r.Path, err)
		}
	}
	// INTROSPECT_PATHS' cache answers JWTs only; fill it directly.
	if _, _, err := toks.chains[0].introspect.Lookup(ctx, "opaque-token"); err != nil {
		t.Fatal(err)
	}
	toks.RevokeKey(tokenid.Revocation("opaque-token"), time.Minute)
	before := calls.Load()
	for _, r := range []*authn.Request{pay, other} {
		if _, _, err := toks.Lookup(ctx, r, "opaque-token"); err == nil {
			t.Errorf("%s: a revoked token passed", r.Path)
		}
	}
	if _, _, err := toks.chains[0].introspect.Lookup(ctx, "opaque-token"); err == nil {
		t.Error("INTROSPECT_PATHS' cache: a revoked token passed")
	}
	if calls.Load() != before {
		t.Errorf("the IdP was asked %d times after the revocation", calls.Load()-before)
	}
}
