package devidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestPrivateKeyJWTClient(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, clk := newTestServer(t, func(c *Config) {
		c.Clients = append(c.Clients, Client{ID: "pk", Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1"}}})
	})
	h := s.Handler()
	const path = "/oauth2/default/v1/introspect"
	endpoint := testIssuer + "/v1/introspect" // the full URL, as Okta wants it
	sign := func(k *ecdsa.PrivateKey, edit func(map[string]any)) string {
		now := clk.Now()
		c := map[string]any{"iss": "pk", "sub": "pk", "aud": endpoint, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": randomString(8)}
		if edit != nil {
			edit(c)
		}
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		b, _ := json.Marshal(c)
		jws, _ := signer.Sign(b)
		raw, _ := jws.CompactSerialize()
		return raw
	}
	form := func(assertion string) url.Values {
		return url.Values{"token": {"x"}, "client_assertion_type": {assertionType}, "client_assertion": {assertion}}
	}
	replayed := sign(key, nil)
	post(h, path, "", form(replayed))
	tests := []struct {
		name string
		form url.Values
		auth string
		want int
	}{
		{"valid", form(sign(key, nil)), "", 200},
		{"replayed jti", form(replayed), "", 401},
		{"wrong key", form(sign(other, nil)), "", 401},
		{"wrong aud", form(sign(key, func(c map[string]any) { c["aud"] = "https://elsewhere/v1/introspect" })), "", 401},
		{"sub differs", form(sign(key, func(c map[string]any) { c["sub"] = "demo" })), "", 401},
		{"expired", form(sign(key, func(c map[string]any) { c["exp"] = clk.Now().Add(-time.Second).Unix() })), "", 401},
		{"too long", form(sign(key, func(c map[string]any) { c["exp"] = clk.Now().Add(2 * time.Hour).Unix() })), "", 401},
		{"client without keys", form(sign(key, func(c map[string]any) { c["iss"], c["sub"] = "demo", "demo" })), "", 401},
		{"also a secret", form(sign(key, nil)), basic("demo", "demo-secret"), 400},
		{"secret of a key-only client", url.Values{"token": {"x"}}, basic("pk", ""), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := post(h, path, tt.auth, tt.form); rec.Code != tt.want {
				t.Errorf("status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
		})
	}
}
