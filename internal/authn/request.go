package authn

import (
	"context"
	"net/http"

	"github.com/authgate/authgate/internal/forwarded"
)

// Request is what every token lookup is told of the request that carries
// the token: the one description, defined here and built once per request
// by the gateway. A verifier that needs more of the request (a DPoP proof,
// a forwarded client certificate) reads it from here; new needs add fields,
// never parameters.
type Request struct {
	// Method and Path are the request being decided, as the policy sees
	// them: the request's own, or on /verify the original request the
	// proxy describes; Path cleaned (percent-decoded, dot segments
	// resolved).
	Method, Path string
	// Scheme and Host are where the request was sent, as TRUSTED_PROXIES
	// lets authgate believe (package forwarded); Target is its request
	// target as sent (RFC 9112 3.2), neither decoded nor cleaned.
	Scheme, Host, Target string
	// Header is the request's header: on /verify the proxy's call, which
	// carries the client's headers (method-override ones included).
	Header http.Header
	// Original is, on /verify, the original request as the forward-auth
	// proxy describes it (forwarded.Original); zero otherwise.
	Original forwarded.Request
	// Issuer is the URL of the issuer chosen for the token (OKTA_ISSUER, or
	// an ISSUER_N_URL), set by the lookup that routes it (package tokens);
	// empty before, and when the token goes to no issuer. The policy sees
	// it as input.issuer.
	Issuer string
	// IssuerName is that issuer's configured name (primary, or an ISSUERS
	// name): the issuer label of metrics and the access log.
	IssuerName string

	// Sender constraint (RFC 9449 DPoP, RFC 8705 certificate-bound
	// tokens; docs/sender-constrained.md). The proofs are Header's DPoP
	// fields, the certificate its CLIENT_CERT_HEADER field, which the
	// gateway keeps only from TRUSTED_PROXIES.

	// AuthScheme is the scheme of the Authorization header the token came
	// with: "Bearer" or "DPoP" (input.token_type); empty counts as Bearer.
	AuthScheme string
	// Recheck marks the re-check of an open stream's token: its sender
	// constraint was checked when the stream opened, and is not again.
	Recheck bool
	// Bound is filled in by the lookup that checked the sender constraint,
	// for the policy and the answer.
	Bound Bound
}

// Bound is what a lookup found of the request's sender constraint.
type Bound struct {
	// JKT is the thumbprint of the key of a verified DPoP proof
	// (input.dpop.jkt); empty without one.
	JKT string
	// NextNonce, when set, is a fresh DPoP nonce for the answer's
	// DPoP-Nonce header.
	NextNonce string
	// CertX5tS256 and CertSubject describe the client certificate a trusted
	// proxy forwarded (input.client_cert); empty without one.
	CertX5tS256, CertSubject string
}

// ForwardAuth reports whether a forward-auth proxy describes the request
// (GET /verify): it forwards the method-override headers upstream, where
// serve and proxy modes remove them.
func (r *Request) ForwardAuth() bool { return r.Original.Method != "" }

// Tokens looks up a request's bearer token: what the gateway asks.
type Tokens interface {
	// Lookup verifies raw, the bearer token of the request r describes, and
	// says whether a cache answered. Errors are *fault.Error:
	// Unauthenticated or Unavailable.
	Lookup(ctx context.Context, r *Request, raw string) (*Token, Lookup, error)
}

// Cached is a Cache as Tokens: its answer does not depend on the request.
type Cached struct{ Cache *Cache }

var _ Tokens = Cached{}

// Lookup implements Tokens.
func (c Cached) Lookup(ctx context.Context, _ *Request, raw string) (*Token, Lookup, error) {
	return c.Cache.Lookup(ctx, raw)
}
