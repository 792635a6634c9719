package challenge

import (
	"net/http"
	"slices"
	"testing"

	"github.com/authgate/authgate/internal/dpop"
	"github.com/authgate/authgate/internal/fault"
)

func TestWrite(t *testing.T) {
	invalid := &fault.Error{Kind: fault.Unauthenticated, Code: "invalid_token", Description: `bad "token"`}
	proof := &fault.Error{Kind: fault.Unauthenticated, Code: dpop.CodeInvalidProof, Description: "htu mismatch"}
	algs := []string{"ES256"}
	for _, tc := range []struct {
		name string
		set  Set
		err  *fault.Error
		want []string
	}{
		{"no token", Set{}, &fault.Error{Kind: fault.NoToken}, []string{`Bearer realm="authgate"`}},
		{"invalid token, quotes dropped", Set{}, invalid,
			[]string{`Bearer realm="authgate", error="invalid_token", error_description="bad token"`}},
		{"resource metadata", Set{ResourceMetadata: `resource_metadata="https://h/.well-known/oauth-protected-resource"`}, &fault.Error{Kind: fault.NoToken},
			[]string{`Bearer realm="authgate", resource_metadata="https://h/.well-known/oauth-protected-resource"`}},
		{"dpop on: bearer error first, bare dpop after", Set{DPoPAlgs: algs}, invalid,
			[]string{`Bearer realm="authgate", error="invalid_token", error_description="bad token"`, `DPoP algs="ES256"`}},
		{"failed proof: dpop error first, bare bearer after", Set{DPoPAlgs: algs}, proof,
			[]string{`DPoP algs="ES256", error="invalid_dpop_proof", error_description="htu mismatch"`, `Bearer realm="authgate"`}},
		{"failed proof, dpop required: no bearer", Set{DPoPAlgs: algs, DPoPOnly: true}, proof,
			[]string{`DPoP algs="ES256", error="invalid_dpop_proof", error_description="htu mismatch"`}},
	} {
		h := http.Header{"Www-Authenticate": {"stale"}}
		tc.set.Write(h, tc.err)
		if got := h.Values("WWW-Authenticate"); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
