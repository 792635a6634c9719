// Package authn verifies bearer tokens: RFC 7662 introspection, wrapped by a
// circuit breaker and by a cache with request coalescing. Each layer is a
// Verifier, so they stack in any order the caller composes.
package authn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/fault"
	"github.com/authgate/authgate/internal/lograte"
	"github.com/authgate/authgate/pkg/introspect"
)

// Token is what authgate knows of an active token.
type Token struct {
	Subject  string // sub, else client_id
	ClientID string
	Scope    string   // Scopes joined by single spaces (the introspected string when it already is)
	Scopes   []string // the scope split on ASCII spaces (RFC 6749 3.3), or a JWT's scp list
	Exp      int64    // seconds since the epoch; 0 when the server gave none
	// Claims is the introspection answer, or the JWT's claim set, as the
	// server sent it (compacted).
	Claims json.RawMessage
	// Validation is ValidationIntrospection or ValidationJWT.
	Validation string
	// CachedUntil is when the Cache entry holding this token ends (unix
	// nanoseconds); set once by the Cache before the token is shared, 0 for
	// a token that was not cached. What is derived from the token (a cached
	// decision) must not outlive it.
	CachedUntil int64
}

// Cnf is the raw cnf member of the token's claims (the introspection
// answer or the JWT's claim set; RFC 7800), nil when there is none: what
// binds the token to a key or a certificate. Claims that
// cannot hold one cost nothing: a member named cnf is spelled "cnf", or
// escapes one of its letters, and \u0063 (c), \u006e (n) and \u0066 (f)
// all begin \u006. Any other escape (\u0026 for "&" as Go's encoder
// writes it, \u00e9 for "é" as Python's does) does not make every request
// of such a token parse its claims.
func (t *Token) Cnf() json.RawMessage {
	claims := t.Claims
	if !bytes.Contains(claims, []byte("cnf")) && !bytes.Contains(claims, []byte(`\u006`)) {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(claims, &m) != nil {
		// Claims are what a verifier accepted: JSON objects. Anything else
		// is refused (dpop.BindingOf) as a cnf that is not an object.
		return json.RawMessage(`[]`)
	}
	return m["cnf"]
}

// Verifier checks a bearer token.
type Verifier interface {
	// Verify returns the token's identity. Errors are *fault.Error:
	// Unauthenticated for a token that is not (or no longer) valid,
	// Unavailable when the authorization server could not answer.
	Verify(ctx context.Context, token string) (*Token, error)
}

// Introspector is the part of introspect.Client that Introspection uses.
type Introspector interface {
	Introspect(ctx context.Context, token string) (*introspect.Response, error)
}

// Introspection is the Verifier that asks the authorization server.
type Introspection struct {
	Client Introspector
	// Audience, when set, must be among the token's aud values.
	Audience string
	// Now is the clock for exp and nbf; nil means time.Now.
	Now func() time.Time
	// OnRateLimit, when set, receives the server's X-Rate-Limit-* values.
	OnRateLimit func(introspect.RateLimit)
	// OnResult, when set, is told of each call: "active", "inactive" or
	// "error". A 4xx the server gives for one token counts as inactive.
	OnResult func(result string, d time.Duration)
	// Log, when set, receives the server's error text (error,
	// error_description) at debug level, redacted and bounded: it is the
	// server's, may echo the token, and so never reaches an error or a
	// line above debug. A refusal of authgate's own credentials
	// (ErrMisconfigured) is an ERROR line naming the issuer's variables to
	// check (Var), at most one per lograte.Every.
	Log *slog.Logger
	// PrivateKeyJWT says the client authenticates with a signed assertion
	// (OKTA_AUTH_METHOD=private_key_jwt): a refusal of authgate's
	// credentials then also wraps ErrAssertionRejected, so that the log
	// names the key's variables.
	PrivateKeyJWT bool
	// Var names the variable of an issuer setting ("CLIENT_ID" is
	// OKTA_CLIENT_ID for the primary, ISSUER_ORG_CLIENT_ID for org), for
	// the ERROR line of refused credentials; nil names the primary's.
	Var func(setting string) string

	// Refused credentials refuse every request: one line per lograte.Every.
	misconfigured lograte.Limit
}

var _ Verifier = (*Introspection)(nil)

// Verify implements Verifier.
func (in *Introspection) Verify(ctx context.Context, token string) (*Token, error) {
	now := time.Now
	if in.Now != nil {
		now = in.Now
	}
	start := time.Now()
	r, err := in.Client.Introspect(ctx, token)
	var ie *introspect.Error
	if err != nil && errors.As(err, &ie) {
		in.logServerText(ctx, ie, token)
		ie = scrubbed(ie, token)
		err = ie
	}
	if in.OnResult != nil {
		res := "error"
		switch {
		case err == nil && r.Active:
			res = "active"
		case err == nil, ie != nil && classify(ie) == rejectedToken:
			res = "inactive"
		}
		in.OnResult(res, time.Since(start))
	}
	if err != nil {
		// A transport failure (StatusCode 0) carries a zero RateLimit, not
		// the -1 of absent headers: the server said nothing.
		if ie != nil && in.OnRateLimit != nil && ie.StatusCode != 0 && ie.RateLimit.Limit >= 0 {
			in.OnRateLimit(ie.RateLimit)
		}
		if ie != nil && classify(ie) == rejectedToken {
			// That token's answer, cached like active:false: a caller
			// choosing tokens the server refuses must not look like an
			// outage (the breaker) nor like authgate's configuration.
			return nil, &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token",
				Description: "token rejected by the authorization server", Err: ie}
		}
		fe := unavailable(err)
		if errors.Is(fe, ErrMisconfigured) {
			if in.PrivateKeyJWT {
				fe.Err = errors.Join(ErrAssertionRejected, fe.Err)
			}
			in.logMisconfigured(now(), fe.Err)
		}
		return nil, fe
	}
	if in.OnRateLimit != nil && r.RateLimit.Limit >= 0 {
		in.OnRateLimit(r.RateLimit)
	}
	t := now().Unix()
	switch {
	case !r.Active:
		return nil, invalidToken("token is not active")
	case r.Exp != 0 && r.Exp <= t:
		return nil, invalidToken("token expired")
	case r.Nbf != 0 && r.Nbf > t:
		return nil, invalidToken("token not yet valid")
	case in.Audience != "" && !slices.Contains(r.Aud, in.Audience):
		return nil, invalidToken("token audience not accepted")
	}
	// A member of the wrong type is not guessed at (no fallback from a
	// numeric sub to client_id): the token is refused.
	for _, name := range r.WrongType {
		switch name {
		case "sub", "client_id", "scope":
			return nil, invalidToken("token " + name + " is not a string")
		}
	}
	return NewToken(r.Sub, r.ClientID, r.Scope, SplitScope(r.Scope), r.Exp, r.Raw, ValidationIntrospection)
}

// How a Token was validated, as the OPA input's validation member names it.
const (
	ValidationIntrospection = "introspection" // the authorization server said it is active
	ValidationJWT           = "jwt"           // its signature and claims were checked locally
)

// NewToken builds the Token every validation gives, so that one policy
// serves them all: the subject is sub, else the client id (sub absent, null
// or "": a client credentials token); scope is the scopes as the server
// wrote them (kept when already normalised, which spares a copy), scopes
// their list; claims the server's JSON as sent. The caller has read sub,
// client id and scope as strings, and refused the token when they were of
// another type.
//
// Identity goes into headers and logs: what authgate cannot pass on exactly
// is refused, never guessed at or cleaned up. The error is Unauthenticated
// invalid_token when sub, the client id or a scope holds a control
// character, or a scope is empty or holds a space (it would not survive
// being joined into Scope and split again).
func NewToken(sub, clientID, scope string, scopes []string, exp int64, claims json.RawMessage, validation string) (*Token, error) {
	switch {
	case hasControl(sub):
		return nil, invalidToken("token sub has a control character")
	case hasControl(clientID):
		return nil, invalidToken("token client_id has a control character")
	case hasControl(scope):
		return nil, invalidToken("token scope has a control character")
	}
	for _, s := range scopes {
		switch {
		case hasControl(s):
			return nil, invalidToken("token scope has a control character")
		case s == "" || strings.Contains(s, " "):
			return nil, invalidToken("token scope is not a list of scope tokens")
		}
	}
	if sub == "" {
		sub = clientID
	}
	if j := strings.Join(scopes, " "); j != scope {
		scope = j
	}
	return &Token{
		Subject:    sub,
		ClientID:   clientID,
		Scope:      scope,
		Scopes:     scopes,
		Exp:        exp,
		Claims:     claims,
		Validation: validation,
	}, nil
}

// SplitScope splits an RFC 6749 section 3.3 scope string on ASCII spaces,
// and only on them: strings.Fields would also split on U+00A0 and other
// Unicode spaces, turning "read\u00a0admin" into a scope "admin".
func SplitScope(s string) []string {
	out := make([]string, 0, strings.Count(s, " ")+1)
	for tok := range strings.SplitSeq(s, " ") {
		if tok != "" {
			out = append(out, tok)
		}
	}
	return out
}

// hasControl reports whether s holds a C0 control character (CR, LF, NUL,
// tab...), DEL or a C1 control (U+0080 to U+009F).
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || 0x7f <= r && r <= 0x9f {
			return true
		}
	}
	return false
}

// logMisconfigured names the variables to check when the server refused
// authgate's own credentials or request: the key's with private_key_jwt,
// the secret's otherwise.
func (in *Introspection) logMisconfigured(now time.Time, err error) {
	if in.Log == nil {
		return
	}
	v := in.Var
	if v == nil {
		v = func(setting string) string { return "OKTA_" + setting }
	}
	msg := "authorization server rejected authgate's credentials or request: check " +
		v("CLIENT_ID") + ", " + v("CLIENT_SECRET") + ", " + v("AUTH_METHOD") + " and " + v("INTROSPECT_URL")
	if in.PrivateKeyJWT {
		msg = "authorization server rejected authgate's client assertion: check " + v("CLIENT_ID") + ", " +
			v("PRIVATE_KEY_FILE") + " and " + v("PRIVATE_KEY_ID") + " (the key registered for the client), " +
			v("AUTH_METHOD") + " and " + v("INTROSPECT_URL")
	}
	in.misconfigured.Log(in.Log, slog.LevelError, now, msg, "err", err)
}

func invalidToken(desc string) error {
	return &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: desc}
}

// ErrMisconfigured marks an introspection refused for authgate's own
// credentials or endpoint (invalid_client, 401/403, 404, ... from the
// server): an operator problem, never the caller's, and not the server's
// failure either, so it does not count against the breaker.
var ErrMisconfigured = errors.New("authorization server rejected authgate's client credentials or request")

// ErrAssertionRejected marks ErrMisconfigured for a client that
// authenticates with private_key_jwt: the server refused its assertion.
var ErrAssertionRejected = errors.New("authorization server rejected authgate's client assertion (private_key_jwt)")

func unavailable(err error) *fault.Error {
	e := &fault.Error{Kind: fault.Unavailable, Code: "temporarily_unavailable",
		Description: "authorization server unavailable", Err: err}
	var ie *introspect.Error
	if errors.As(err, &ie) {
		switch {
		case classify(ie) == failedConfigured:
			e.Err = errors.Join(ErrMisconfigured, err)
		case ie.StatusCode == http.StatusTooManyRequests:
			e.Description = "authorization server rate limit reached"
			e.RetryAfter = ie.RetryAfter
		default:
			e.RetryAfter = ie.RetryAfter
		}
	}
	return e
}

// Guarded is a Verifier behind a circuit breaker. Only upstream failures
// count against the breaker (see IsUpstreamFailure); an inactive or
// rejected token is an answer. A 429 holds further calls until the
// server's reset time.
type Guarded struct {
	Next    Verifier
	Breaker *breaker.Breaker
	// OnHold, when set, is told of each hold a 429 started (its end, as
	// bounded), so that other replicas can hold too (package fleet).
	OnHold func(until time.Time)
}

var _ Verifier = (*Guarded)(nil)

// IsUpstreamFailure is the breaker's failure test for both upstreams: an
// Unavailable error, except authgate's own misconfiguration (the server
// answered) and its own budget refusals (the server was not asked).
func IsUpstreamFailure(err error) bool {
	return fault.Is(err, fault.Unavailable) && !errors.Is(err, ErrMisconfigured) &&
		!errors.Is(err, ErrOverBudget) && !errors.Is(err, ErrClientOverBudget)
}

// Verify implements Verifier.
func (g *Guarded) Verify(ctx context.Context, token string) (*Token, error) {
	done, err := g.Breaker.Allow()
	if err != nil {
		return nil, err
	}
	t, err := g.Next.Verify(ctx, token)
	done(err)
	var ie *introspect.Error
	if errors.As(err, &ie) && ie.StatusCode == http.StatusTooManyRequests && !ie.RetryAfter.IsZero() {
		g.Breaker.Hold(ie.RetryAfter)
		if until := g.Breaker.HeldUntil(); g.OnHold != nil && !until.IsZero() {
			g.OnHold(until)
		}
		// This answer's Retry-After is the hold as bounded, like every
		// answer while it lasts, not the server's possibly far-off time.
		var fe *fault.Error
		if errors.As(err, &fe) {
			fe.RetryAfter = g.Breaker.HeldUntil()
		}
	}
	return t, err
}
