package jwtauth

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/forwarded"
	"github.com/authgate/authgate/internal/pathrule"
)

// fixedTokens answers every lookup with its token and counts them.
type fixedTokens struct {
	tok   *authn.Token
	calls int
}

func (f *fixedTokens) Lookup(context.Context, *authn.Request, string) (*authn.Token, authn.Lookup, error) {
	f.calls++
	return f.tok, authn.Hit, nil
}

// TestIntrospectOnPaths: a JWT is introspected anew on the paths, matched
// generously, and on /verify by an overridden method too; an introspected
// token is not asked twice, and a method override counts only on /verify
// (serve and proxy modes remove the header).
func TestIntrospectOnPaths(t *testing.T) {
	verify := forwarded.Request{Method: "POST", RawPath: "/x"}
	override := http.Header{"X-Http-Method-Override": {"PUT, DELETE"}}
	for _, tc := range []struct {
		name       string
		r          authn.Request
		validation string
		want       bool
	}{
		{"JWT on a path", authn.Request{Method: "DELETE", Path: "/x"}, authn.ValidationJWT, true},
		{"JWT on a path, other spelling", authn.Request{Method: "DELETE", Path: "/X/"}, authn.ValidationJWT, true},
		{"JWT, other method", authn.Request{Method: "POST", Path: "/x"}, authn.ValidationJWT, false},
		{"JWT, other path", authn.Request{Method: "DELETE", Path: "/y"}, authn.ValidationJWT, false},
		{"introspected already", authn.Request{Method: "DELETE", Path: "/x"}, authn.ValidationIntrospection, false},
		{"verify: overridden to DELETE", authn.Request{Method: "POST", Path: "/x", Header: override, Original: verify}, authn.ValidationJWT, true},
		{"serve: override header ignored", authn.Request{Method: "POST", Path: "/x", Header: override}, authn.ValidationJWT, false},
		{"verify: no override", authn.Request{Method: "POST", Path: "/x", Original: verify}, authn.ValidationJWT, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local := &fixedTokens{tok: &authn.Token{Validation: tc.validation}}
			intro := &fixedTokens{tok: &authn.Token{Validation: authn.ValidationIntrospection}}
			o := &IntrospectOnPaths{Tokens: local, Introspect: intro, Paths: pathrule.Generous([]pathrule.Rule{{Method: "DELETE", Path: "/x"}})}
			tok, _, err := o.Lookup(context.Background(), &tc.r, "t")
			if err != nil || local.calls != 1 {
				t.Fatalf("lookup: %v, %d local lookups", err, local.calls)
			}
			if got := intro.calls == 1; got != tc.want || (got && tok != intro.tok) {
				t.Errorf("introspected %v, want %v", got, tc.want)
			}
		})
	}
}

// TestIntrospectOnPathsKeepsBinding: on the paths the policy sees the
// introspection answer, but the binding of the JWT (its signed cnf) stays
// the token's: an answer that leaves cnf out (RFC 9449 section 6.2 only
// says SHOULD) must not turn a DPoP-bound JWT into a bearer token. An
// answer with its own cnf, and a JWT without one, are passed as they are.
func TestIntrospectOnPathsKeepsBinding(t *testing.T) {
	for _, tc := range []struct {
		name           string
		jwt, answer    string
		wantCnf        string
		wantSameAnswer bool
	}{
		{"answer without cnf", `{"sub":"u","cnf":{"jkt":"K"}}`, `{"active":true,"sub":"u","scope":"a"}`, `{"jkt":"K"}`, false},
		{"answer with cnf", `{"sub":"u","cnf":{"jkt":"K"}}`, `{"active":true,"cnf":{"jkt":"K"}}`, `{"jkt":"K"}`, true},
		{"unbound JWT", `{"sub":"u"}`, `{"active":true,"sub":"u"}`, ``, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local := &fixedTokens{tok: &authn.Token{Validation: authn.ValidationJWT, Subject: "u", Claims: json.RawMessage(tc.jwt)}}
			answer := &authn.Token{Validation: authn.ValidationIntrospection, Subject: "u", Scope: "a", Claims: json.RawMessage(tc.answer)}
			intro := &fixedTokens{tok: answer}
			o := &IntrospectOnPaths{Tokens: local, Introspect: intro, Paths: pathrule.Generous([]pathrule.Rule{{Path: "/x"}})}
			tok, _, err := o.Lookup(context.Background(), &authn.Request{Method: "GET", Path: "/x"}, "t")
			if err != nil {
				t.Fatal(err)
			}
			if got := string(tok.Cnf()); got != tc.wantCnf {
				t.Errorf("cnf %q, want %q", got, tc.wantCnf)
			}
			if (tok == answer) != tc.wantSameAnswer {
				t.Errorf("the answer itself returned: %v, want %v", tok == answer, tc.wantSameAnswer)
			}
			if tok.Validation != authn.ValidationIntrospection || tok.Scope != "a" {
				t.Errorf("not the introspection answer: %+v", tok)
			}
			if string(answer.Claims) != tc.answer {
				t.Errorf("the cached answer was changed: %s", answer.Claims)
			}
		})
	}
}
