package gateway

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/forwarded"
)

// boundTokens stands for the token side's sender-constraint check (package
// tokens' Bound): it refuses with err, or passes next's answer on with
// bound filled in.
type boundTokens struct {
	next  Tokens
	bound authn.Bound
	err   error
}

func (b boundTokens) Lookup(ctx context.Context, r *authn.Request, raw string) (*authn.Token, authn.Lookup, error) {
	if b.err != nil {
		return nil, 0, b.err
	}
	tok, l, err := b.next.Lookup(ctx, r, raw)
	r.Bound = b.bound
	return tok, l, err
}

// TestDPoPChallenges: a failed proof is 401 with the DPoP challenge naming
// its error, and a bare Bearer one where bearer tokens are accepted (none
// under DPOP_MODE=required); any other 401 keeps its Bearer challenge and
// gets a bare DPoP one; use_dpop_nonce carries the nonce. Never 403 or 500.
func TestDPoPChallenges(t *testing.T) {
	nonce := http.Header{"Dpop-Nonce": {"n1"}}
	for _, tc := range []struct {
		name     string
		required bool
		err      error
		auth     string
		want     []string
		nonce    string
	}{
		{name: "failed proof", err: &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_dpop_proof", Description: "DPoP proof is too old"},
			want: []string{`DPoP algs="ES256 EdDSA", error="invalid_dpop_proof", error_description="DPoP proof is too old"`, `Bearer realm="authgate"`}},
		{name: "failed proof, required", required: true, err: &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_dpop_proof", Description: "DPoP proof missing"},
			want: []string{`DPoP algs="ES256 EdDSA", error="invalid_dpop_proof", error_description="DPoP proof missing"`}},
		{name: "nonce", err: &fault.Error{Kind: fault.Unauthenticated, Code: "use_dpop_nonce", Description: "nonce", Answer: &fault.Answer{Header: nonce}},
			want: []string{`DPoP algs="ES256 EdDSA", error="use_dpop_nonce", error_description="nonce"`, `Bearer realm="authgate"`}, nonce: "n1"},
		{name: "token refused", err: &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: "DPoP-bound token presented as a bearer token"},
			want: []string{`Bearer realm="authgate", error="invalid_token", error_description="DPoP-bound token presented as a bearer token"`, `DPoP algs="ES256 EdDSA"`}},
		{name: "no token", auth: "-", want: []string{`Bearer realm="authgate"`, `DPoP algs="ES256 EdDSA"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(d *Deps) {
				d.DPoPAlgorithms, d.DPoPRequired = []string{"ES256", "EdDSA"}, tc.required
				d.Tokens = boundTokens{next: d.Tokens, err: tc.err}
			})
			auth := "DPoP " + goodToken
			if tc.auth == "-" {
				auth = ""
			}
			w := h.get("/sayhello", auth)
			if got := w.Header().Values("WWW-Authenticate"); w.Code != 401 || !slices.Equal(got, tc.want) {
				t.Errorf("%d %q, want 401 %q", w.Code, got, tc.want)
			}
			if got := w.Header().Get("DPoP-Nonce"); got != tc.nonce {
				t.Errorf("DPoP-Nonce %q, want %q", got, tc.nonce)
			}
		})
	}
}

// TestDPoPInput: the scheme reaches the token lookup, and what it found
// reaches the policy (token_type, dpop.jkt, client_cert) and the answer (a
// fresh nonce in DPoP-Nonce).
func TestDPoPInput(t *testing.T) {
	h := newHarness(t, func(d *Deps) {
		d.Tokens = boundTokens{next: d.Tokens, bound: authn.Bound{JKT: "jkt-1", NextNonce: "n2", CertX5tS256: "x5t-1", CertSubject: "CN=c"}}
	})
	w := h.get("/sayhello", "DPoP "+goodToken)
	if w.Code != 200 || w.Header().Get("DPoP-Nonce") != "n2" {
		t.Fatalf("%d, DPoP-Nonce %q", w.Code, w.Header().Get("DPoP-Nonce"))
	}
	if got := h.tokens.lastRequest().AuthScheme; got != "DPoP" {
		t.Errorf("lookup told scheme %q, want DPoP", got)
	}
	in := h.inputs(t)[0]
	dp, _ := in["dpop"].(map[string]any)
	cc, _ := in["client_cert"].(map[string]any)
	if in["token_type"] != "DPoP" || dp["jkt"] != "jkt-1" || cc["x5t_s256"] != "x5t-1" || cc["subject"] != "CN=c" {
		t.Errorf("input token_type %v, dpop %v, client_cert %v", in["token_type"], in["dpop"], in["client_cert"])
	}
}

// TestClientCertScrubbed: the client-certificate header is believed from
// TRUSTED_PROXIES only, and in its own spelling; from anyone else, or
// spelled with "_", it is gone before the token lookup and the policy.
func TestClientCertScrubbed(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured string // CLIENT_CERT_HEADER, canonical; Client-Cert when ""
		trusted    bool
		header     string
		wantKept   bool
	}{
		{"untrusted", "", false, "Client-Cert", false},
		{"trusted", "", true, "Client-Cert", true},
		{"trusted, underscore spelling", "", true, "Client_cert", false},
		{"untrusted, underscore spelling", "", false, "Client_cert", false},
		// A name configured with "_" is matched as the frameworks read it
		// too: from anyone else, in either spelling, it goes.
		{"configured with underscore, untrusted", "X_client_cert", false, "X_client_cert", false},
		{"configured with underscore, untrusted, dash spelling", "X_client_cert", false, "X-Client-Cert", false},
		{"configured with underscore, trusted", "X_client_cert", true, "X_client_cert", true},
		{"configured with underscore, trusted, dash spelling", "X_client_cert", true, "X-Client-Cert", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(d *Deps) {
				d.ClientCertHeader = "Client-Cert"
				if tc.configured != "" {
					d.ClientCertHeader = tc.configured
				}
				if tc.trusted {
					d.TrustedProxies = forwarded.Trust{netip.MustParsePrefix("192.0.2.0/24")} // httptest's client
				}
			})
			req := newRequest("GET", "/sayhello", "Authorization", "Bearer "+goodToken)
			req.Header[tc.header] = []string{":AAAA:"}
			if w := h.serve(h.g.Traffic(), req); w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			_, kept := h.tokens.lastRequest().Header[tc.header]
			if kept != tc.wantKept {
				t.Errorf("%s kept: %v, want %v", tc.header, kept, tc.wantKept)
			}
		})
	}
}

// TestStreamRecheckAsksNoProof: an open stream's re-check tells the token
// lookup it is one (authn.Request.Recheck), so that the sender constraint,
// checked when the stream opened, asks for no new DPoP proof; the check
// that opened it is not one.
func TestStreamRecheckAsksNoProof(t *testing.T) {
	ws := openWatched(t, active(0, time.Minute))
	tokens := ws.h.g.deps.Tokens.(*fakeTokens)
	if tokens.lastRequest().Recheck {
		t.Fatal("the opening check is marked as a re-check")
	}
	ws.recheck(t, time.Minute, active(0, time.Minute))
	ws.open(t, 10)
	if !tokens.lastRequest().Recheck {
		t.Error("the re-check is not marked as one: a DPoP-bound stream would be cut")
	}
}

// certTokens stands for a lookup that found a forwarded certificate: its
// thumbprint is the request's X-Test-Cert header.
type certTokens struct{ next Tokens }

func (c certTokens) Lookup(ctx context.Context, r *authn.Request, raw string) (*authn.Token, authn.Lookup, error) {
	tok, l, err := c.next.Lookup(ctx, r, raw)
	r.Bound.CertX5tS256 = r.Header.Get("X-Test-Cert")
	return tok, l, err
}

// TestClientCertNotFromDecisionCache: the decision cache keys on the
// token, and a forwarded certificate is the request's: with one, the
// policy is asked every time, so a decision about another certificate
// never answers.
func TestClientCertNotFromDecisionCache(t *testing.T) {
	h := newHarness(t, func(d *Deps) { d.Tokens = certTokens{next: d.Tokens} }, withDecisionCache(time.Minute, 10))
	for _, cert := range []string{"", "", "x5t-a", "x5t-b"} {
		req := newRequest("GET", "/sayhello", "Authorization", "Bearer "+goodToken, "X-Test-Cert", cert)
		if w := h.serve(h.g.Traffic(), req); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	// The second request without a certificate is the cache's.
	if n := len(h.queries()); n != 3 {
		t.Errorf("OPA asked %d times, want 3 (each request with a certificate decided afresh)", n)
	}
}
