package introspect_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/pkg/introspect"
)

// TestPrivateKeyJWT: each call carries a fresh RFC 7523 client assertion
// signed with the key, and no secret.
func TestPrivateKeyJWT(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  jose.SignatureAlgorithm
	}{{"RSA", rsaKey, jose.RS256}, {"EC", ecKey, jose.ES256}} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1_900_000_000, 0)
			var jtis []string
			var url string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				if r.Header.Get("Authorization") != "" || r.PostForm.Has("client_secret") {
					t.Errorf("a secret was sent: %v %v", r.Header, r.PostForm)
				}
				if got := r.PostForm.Get("client_assertion_type"); got != introspect.AssertionType {
					t.Errorf("client_assertion_type %q", got)
				}
				jws, err := jose.ParseSignedCompact(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{tc.alg})
				if err != nil {
					t.Fatalf("assertion: %v", err)
				}
				if h := jws.Signatures[0].Header; h.KeyID != "key-1" {
					t.Errorf("kid %q", h.KeyID)
				}
				payload, err := jws.Verify(tc.key.Public())
				if err != nil {
					t.Fatalf("assertion signature: %v", err)
				}
				var c struct {
					Iss, Sub, Aud, Jti string
					Iat, Exp           int64
				}
				json.Unmarshal(payload, &c)
				if c.Iss != "0oa-gw" || c.Sub != "0oa-gw" || c.Aud != url || c.Iat != now.Unix() || c.Exp-c.Iat > 300 || c.Exp <= c.Iat || c.Jti == "" {
					t.Errorf("assertion claims %+v", c)
				}
				jtis = append(jtis, c.Jti)
				w.Write([]byte(`{"active":false}`))
			}))
			defer srv.Close()
			url = srv.URL + "/oauth2/default/v1/introspect"
			c := &introspect.Client{URL: url, ClientID: "0oa-gw", AuthMethod: introspect.PrivateKeyJWT,
				PrivateKey: tc.key, KeyID: "key-1", Now: func() time.Time { return now }}
			for range 2 {
				if _, err := c.Introspect(context.Background(), "tok"); err != nil {
					t.Fatal(err)
				}
			}
			if len(jtis) != 2 || jtis[0] == jtis[1] {
				t.Errorf("jti not unique per call: %q", jtis)
			}
		})
	}
}

func TestPrivateKeyJWTBadKey(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, key := range []crypto.Signer{nil, ed} {
		c := &introspect.Client{URL: "http://127.0.0.1:1/x", ClientID: "gw", AuthMethod: introspect.PrivateKeyJWT, PrivateKey: key}
		_, err := c.Introspect(context.Background(), "tok")
		var ie *introspect.Error
		if !errors.As(err, &ie) || ie.StatusCode != 0 {
			t.Errorf("key %T: %v", key, err)
		}
	}
}
