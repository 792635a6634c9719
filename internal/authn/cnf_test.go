package authn_test

import (
	"encoding/json"
	"testing"

	"github.com/authgate/authgate/internal/authn"
)

// TestCnf: the cnf member in every spelling JSON allows, and nothing
// mistaken for it.
func TestCnf(t *testing.T) {
	for _, tc := range []struct{ claims, want string }{
		{`{"sub":"u"}`, ``},
		{`{"sub":"A \u0026 B","name":"\u00e9"}`, ``},
		{`{"sub":"cnf","x":{"cnf":{"jkt":"k"}}}`, ``},
		{`{"cnf":{"jkt":"k"}}`, `{"jkt":"k"}`},
		{`{"\u0063nf":{"jkt":"k"}}`, `{"jkt":"k"}`},
		{`{"c\u006enf":1,"c\u006Ef":{"jkt":"k"}}`, `{"jkt":"k"}`},
		{`{"cn\u0066":{"jkt":"k"}}`, `{"jkt":"k"}`},
		{`{"\u0063\u006e\u0066":{"jkt":"k"}}`, `{"jkt":"k"}`},
		{`{"CNF":{"jkt":"k"}}`, ``},
		{`["cnf"]`, `[]`},
	} {
		if got := string((&authn.Token{Claims: json.RawMessage(tc.claims)}).Cnf()); got != tc.want {
			t.Errorf("Cnf of %s = %q, want %q", tc.claims, got, tc.want)
		}
	}
}
