package tokens

import (
	"context"
	"crypto/rand"
	"log/slog"
	"time"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/bearer"
	"github.com/authgate/authgate/internal/certbind"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/dpop"
	"github.com/authgate/authgate/internal/lograte"
)

// ProofHeader is the request header that carries a DPoP proof (RFC 9449
// section 4.1).
const ProofHeader = "Dpop"

// Bound checks a token's sender constraint (docs/sender-constrained.md)
// above the token lookup: Next answers first (from its caches or not),
// then the token's cnf decides, with the scheme it came with and Mode,
// whether it may be used (dpop.Presentation), a key-bound one is checked
// against its DPoP proof (Proofs), a certificate-bound one against the
// certificate a trusted proxy forwarded (CertHeader). Its refusals depend
// on the request, so they are never cached: the caches below only ever
// hold what the token itself is.
type Bound struct {
	Next authn.Tokens
	// Mode is DPOP_MODE.
	Mode dpop.Mode
	// Proofs checks DPoP proofs.
	Proofs *dpop.Verifier
	// CertHeader is CLIENT_CERT_HEADER, canonical.
	CertHeader string
	// OnMalformedCert, when set, is told of a certificate header that is
	// not RFC 9440's form: a proxy misconfiguration.
	OnMalformedCert func(error)
}

var _ authn.Tokens = (*Bound)(nil)

// Lookup implements authn.Tokens. Next's errors pass as they are; a token
// that may not be used as presented is Unauthenticated invalid_token, a
// proof that fails invalid_dpop_proof or use_dpop_nonce, a replay store
// that cannot answer Unavailable. On success r.Bound says what was found.
func (b *Bound) Lookup(ctx context.Context, r *authn.Request, raw string) (*authn.Token, authn.Lookup, error) {
	if r.AuthScheme == bearer.SchemeDPoP && !r.Recheck {
		// A DPoP header that cannot hold a proof is refused before the
		// token costs a lookup (and perhaps an introspection).
		if err := dpop.CheckShape(r.Header.Values(ProofHeader)); err != nil {
			return nil, authn.Miss, err
		}
	}
	tok, l, err := b.Next.Lookup(ctx, r, raw)
	if err != nil || r.Recheck {
		return tok, l, err
	}
	if err := b.check(ctx, r, raw, tok); err != nil {
		return nil, l, err
	}
	return tok, l, nil
}

// check runs the sender-constraint checks for tok, presented in r as raw.
func (b *Bound) check(ctx context.Context, r *authn.Request, raw string, tok *authn.Token) error {
	binding, err := dpop.BindingOf(tok.Cnf())
	if err != nil {
		return err
	}
	scheme := dpop.Bearer
	if r.AuthScheme == bearer.SchemeDPoP {
		scheme = dpop.DPoP
	}
	if err := dpop.Presentation(scheme, binding, b.Mode); err != nil {
		return err
	}
	var cert *certbind.Cert
	if b.CertHeader != "" {
		if cert, err = certbind.Parse(r.Header.Values(b.CertHeader)); err != nil {
			// Not shown to the policy; a certificate-bound token is refused.
			cert = nil
			if b.OnMalformedCert != nil {
				b.OnMalformedCert(err)
			}
		}
	}
	if err := certbind.Check(binding.X5tS256, cert); err != nil {
		return err
	}
	if cert != nil {
		r.Bound.CertX5tS256, r.Bound.CertSubject = cert.X5tS256, cert.Subject
	}
	if scheme != dpop.DPoP {
		return nil
	}
	p, err := b.Proofs.Verify(ctx, dpop.Request{Proofs: r.Header.Values(ProofHeader), Method: r.Method,
		URI: requestURI(r), Token: raw, JKT: binding.JKT})
	if err != nil {
		return err
	}
	r.Bound.JKT, r.Bound.NextNonce = p.JKT, p.NextNonce
	return nil
}

// requestURI is the URI the client sent r to, as a proof's htu names it:
// the scheme and host as the client addressed them (behind a trusted
// proxy, the forwarded ones) and the request target as it wrote it — on
// /verify the original one the proxy describes — never the cleaned path.
// A target in absolute form is that URI already; one in asterisk form
// ("*") cannot be compared, and the proof is refused.
func requestURI(r *authn.Request) string {
	target := r.Target
	if r.ForwardAuth() {
		target = r.Original.RawPath
	}
	if target == "" || target[0] != '/' {
		return target
	}
	return r.Scheme + "://" + r.Host + target
}

// bound wraps next in the sender-constraint checks DPOP_* and
// CLIENT_CERT_HEADER configure: proofs remembered in this process and,
// with Redis, fleet-wide; nonces (DPOP_NONCE) keyed by FLEET_KEY in a
// fleet (FLEET_KEY_PREVIOUS's accepted too), else by a random key of this
// process.
func (s *Settings) bound(next authn.Tokens) (*Bound, error) {
	cfg := s.Config
	var replay dpop.ReplayStore = dpop.NewLocalReplay(0, nil)
	// The primary's tier keeps every issuer's proofs: a proof is keyed by its
	// key's thumbprint and jti, whichever issuer bound the token.
	if tier := s.Issuers[config.PrimaryIssuer].Tier; tier != nil {
		var failing lograte.Limit
		replay = &dpop.LayeredReplay{Local: replay, Fleet: tier, OnFleetError: func(err error) {
			failing.Log(s.Log, slog.LevelWarn, time.Now(), "DPoP replay check without the fleet: a proof replayed on another replica within its lifetime passes there", "error", err.Error())
		}}
	}
	var nonces *dpop.Nonces
	if cfg.DPoPNonce {
		key := []byte(cfg.FleetKey)
		if len(key) == 0 {
			key = make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return nil, err
			}
		}
		var previous [][]byte
		if cfg.FleetKeyPrev != "" {
			previous = append(previous, []byte(cfg.FleetKeyPrev))
		}
		var err error
		if nonces, err = dpop.NewNonces(key, 0, nil, previous...); err != nil {
			return nil, err
		}
	}
	d := cfg.DPoP()
	v, err := dpop.NewVerifier(dpop.Config{Algorithms: d.Algorithms, MaxAge: cfg.DPoPProofMaxAge,
		Leeway: cfg.JWTLeeway, Replay: replay, Nonces: nonces})
	if err != nil {
		return nil, err
	}
	var malformed lograte.Limit
	return &Bound{Next: next, Mode: d.Mode, Proofs: v, CertHeader: cfg.ClientCertHeaderName(),
		OnMalformedCert: func(err error) {
			malformed.Log(s.Log, slog.LevelWarn, time.Now(), "client certificate header is malformed (not RFC 9440 form): check the TLS-terminating proxy", "header", cfg.ClientCertHeaderName(), "error", err.Error())
		}}, nil
}
