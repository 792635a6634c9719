package tokens

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/bearer"
)

// BenchmarkBoundPlainBearer: the sender-constraint check of a token with no
// cnf allocates nothing, escapes in its claims or not.
func BenchmarkBoundPlainBearer(b *testing.B) {
	for _, claims := range []string{
		`{"active":true,"sub":"u","scope":"a b","exp":2000000000}`,
		`{"active":true,"sub":"u","name":"A \u0026 B","exp":2000000000}`,
	} {
		b.Run("", func(b *testing.B) {
			bd := &Bound{Next: &fixedTokens{tok: &authn.Token{Claims: json.RawMessage(claims)}}, CertHeader: "Client-Cert"}
			r := &authn.Request{Method: "GET", Header: http.Header{"Authorization": {"Bearer x"}}, AuthScheme: bearer.SchemeBearer}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := bd.Lookup(ctx, r, "x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
