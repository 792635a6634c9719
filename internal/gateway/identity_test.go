package gateway

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/authgate/authgate/internal/authn"
)

func TestIdentityNamed(t *testing.T) {
	cases := []struct {
		name string
		id   IdentityHeaders
		in   http.Header
	}{
		{"defaults", IdentityHeaders{Subject: "X-Auth-Subject", ClientID: "X-Auth-Client-Id", Scopes: "X-Auth-Scopes"}, http.Header{
			"X-Auth-Subject": {"forged"}, "X_auth_subject": {"forged"}, "X-Auth-Scopes": {"admin"}, "X-Auth-Client-Id": {"x"},
		}},
		{"configured name with an underscore", IdentityHeaders{Subject: "X_User"}, http.Header{
			"X-User": {"forged"}, "X_user": {"forged"}, "X_USER": {"forged"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.in.Clone()
			h["Accept"] = []string{"*/*"}
			h["X-Users"] = []string{"kept"}
			for k := range h {
				if tc.id.named(k) {
					delete(h, k)
				}
			}
			if want := (http.Header{"Accept": {"*/*"}, "X-Users": {"kept"}}); !reflect.DeepEqual(h, want) {
				t.Errorf("after removing the named ones: %v, want %v", h, want)
			}
		})
	}
}

func TestIdentitySet(t *testing.T) {
	id := IdentityHeaders{Subject: "X-Auth-Subject", ClientID: "X-Auth-Client-Id", Scopes: "X-Auth-Scopes"}
	tok := &authn.Token{Subject: "alice", Scopes: nil}
	proxied := http.Header{}
	id.set(proxied, tok)
	if !reflect.DeepEqual(proxied, http.Header{"X-Auth-Subject": {"alice"}}) {
		t.Errorf("set: %v", proxied)
	}
	answer := http.Header{}
	id.setAll(answer, tok)
	if !reflect.DeepEqual(answer, http.Header{"X-Auth-Subject": {"alice"}, "X-Auth-Client-Id": {""}, "X-Auth-Scopes": {""}}) {
		t.Errorf("setAll: %v", answer)
	}
}
