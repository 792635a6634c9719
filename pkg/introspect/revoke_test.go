package introspect_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/pkg/introspect"
)

// TestRevoke: the RFC 7009 form (token, token_type_hint), the client
// authenticated as the method says (a private_key_jwt assertion for the
// revocation endpoint, not the introspection one), and a refusal as an
// *Error with its status.
func TestRevoke(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, method := range []string{introspect.ClientSecretBasic, introspect.ClientSecretPost, introspect.PrivateKeyJWT} {
		t.Run(method, func(t *testing.T) {
			var endpoint string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				if r.PostForm.Get("token") != "tok" || r.PostForm.Get("token_type_hint") != "access_token" {
					t.Errorf("form %v", r.PostForm)
				}
				id, secret, basic := r.BasicAuth()
				switch method {
				case introspect.ClientSecretBasic:
					if !basic || id != "gw" || secret != "s3cret" {
						t.Errorf("basic auth %q %q %v", id, secret, basic)
					}
				case introspect.ClientSecretPost:
					if basic || r.PostForm.Get("client_id") != "gw" || r.PostForm.Get("client_secret") != "s3cret" {
						t.Errorf("post auth: %v %v", r.Header, r.PostForm)
					}
				case introspect.PrivateKeyJWT:
					if basic || r.PostForm.Has("client_secret") || r.PostForm.Get("client_assertion_type") != introspect.AssertionType {
						t.Errorf("a secret was sent, or no assertion: %v %v", r.Header, r.PostForm)
					}
					jws, err := jose.ParseSignedCompact(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.RS256})
					if err != nil {
						t.Fatalf("assertion: %v", err)
					}
					payload, err := jws.Verify(key.Public())
					if err != nil {
						t.Fatalf("assertion signature: %v", err)
					}
					var c struct{ Aud string }
					json.Unmarshal(payload, &c)
					if c.Aud != endpoint {
						t.Errorf("assertion aud %q, want the revocation endpoint %q", c.Aud, endpoint)
					}
				}
				if r.URL.Path == "/refuse" {
					w.WriteHeader(http.StatusUnauthorized)
					w.Write([]byte(`{"error":"invalid_client"}`))
				}
			}))
			defer srv.Close()
			c := &introspect.Client{URL: srv.URL + "/v1/introspect", ClientID: "gw", ClientSecret: "s3cret", AuthMethod: method}
			if method == introspect.PrivateKeyJWT {
				c.ClientSecret, c.PrivateKey = "", key
			}
			endpoint = srv.URL + "/v1/revoke"
			if err := c.Revoke(context.Background(), endpoint, "tok", "access_token"); err != nil {
				t.Fatal(err)
			}
			endpoint = srv.URL + "/refuse"
			err := c.Revoke(context.Background(), endpoint, "tok", "access_token")
			var ie *introspect.Error
			if !errors.As(err, &ie) || ie.StatusCode != http.StatusUnauthorized {
				t.Errorf("refused revocation: %v", err)
			}
		})
	}
}

// TestOneClientAuthentication: introspection and revocation authenticate
// the client the same way, method by method (Client.post).
func TestOneClientAuthentication(t *testing.T) {
	type seen struct{ authorization, clientID, secret, headerX string }
	for _, method := range []string{"", introspect.ClientSecretBasic, introspect.ClientSecretPost} {
		var got []seen
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			got = append(got, seen{r.Header.Get("Authorization"), r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), r.Header.Get("X-Extra")})
			w.Write([]byte(`{"active":false}`))
		}))
		c := &introspect.Client{URL: srv.URL, ClientID: "id:1", ClientSecret: "s&2", AuthMethod: method, Header: http.Header{"X-Extra": {"x"}}}
		if _, err := c.Introspect(context.Background(), "tok"); err != nil {
			t.Fatal(err)
		}
		if err := c.Revoke(context.Background(), srv.URL, "tok", ""); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if len(got) != 2 || got[0] != got[1] || got[0].headerX != "x" {
			t.Errorf("%q: introspection %+v, revocation %+v", method, got[0], got[1])
		}
		if (got[0].authorization != "") == (method == introspect.ClientSecretPost) {
			t.Errorf("%q: Authorization %q", method, got[0].authorization)
		}
	}
}
