package e2e

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authgate/authgate/internal/stacktest"
)

// sealV1 seals an answer as the first shared tier did: under a key derived
// from the token alone, so that whoever can write to Redis could.
func sealV1(t *testing.T, token, name string, v map[string]any) string {
	t.Helper()
	key, err := hkdf.Key(sha256.New, []byte(token), nil, "authgate fleet answer v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	plain, _ := json.Marshal(v)
	out := make([]byte, 1+aead.NonceSize())
	out[0] = 1
	rand.Read(out[1:])
	return string(aead.Seal(out, out[1:], plain, []byte(name)))
}

// adminAnswer is what a forger writes: an active admin.
func adminAnswer() map[string]any {
	return map[string]any{"u": time.Now().Add(time.Hour).UnixNano(), "a": true, "sub": "admin", "cid": "admin",
		"scope": "read_sayhello admin", "scopes": []string{"read_sayhello", "admin"}, "exp": time.Now().Add(time.Hour).Unix(),
		"claims": map[string]any{"active": true, "sub": "admin", "scope": "read_sayhello admin"}, "v": "introspection"}
}

// TestFleetForgedAnswer: whoever can write to Redis but does not hold
// FLEET_KEY cannot mint a credential: a made-up token with an answer
// sealed the first version's way, and a real token whose answer a writer
// replaced, are introspected (401 for the made-up one), never a shared hit.
func TestFleetForgedAnswer(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	r := stacktest.StartRedis(t)
	gws := startFleet(t, 2, r, i, o)
	c := r.Client()
	ctx := context.Background()

	const madeUp = "made-up-token-0123456789abcdef"
	sum := sha256.Sum256([]byte(madeUp))
	name := "authgate:{" + hex.EncodeToString(sum[:]) + "}:answer"
	if err := c.Set(ctx, name, sealV1(t, madeUp, name, adminAnswer()), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if got := stacktest.Get(t, gws[0].Traffic+"/sayhello", madeUp); got.Status != 401 {
		t.Errorf("a made-up token with a forged answer: %d %s, want 401", got.Status, got.Body)
	}
	if a := lastAccess(t, gws[0]); a["cache"] == "shared_hit" || a["subject"] == "admin" {
		t.Errorf("a made-up token answered from Redis: %v", a)
	}
	if n := i.IntrospectCalls(); n != 1 {
		t.Errorf("%d introspections, want 1: the made-up token asked of the IdP", n)
	}

	// A real token (the writer's own): its answer, once in Redis, is
	// replaced by one claiming admin, sealed the first version's way and
	// in the present format under a key the writer made up.
	tok := i.Token(t, "read_sayhello")
	known, _ := c.Keys(ctx, "authgate:*").Result()
	if got := stacktest.Get(t, gws[0].Traffic+"/sayhello", tok); got.Status != 200 {
		t.Fatalf("%d %s", got.Status, got.Body)
	}
	// The writer finds its token's answer: the one key that came.
	var names []string
	all, _ := c.Keys(ctx, "authgate:*answer*").Result()
	for _, n := range all {
		if !slices.Contains(known, n) {
			names = append(names, n)
		}
	}
	if len(names) != 1 {
		t.Fatalf("new answers in Redis: %v", names)
	}
	forged := map[string]string{}
	for _, n := range names {
		v, err := c.Get(ctx, n).Result()
		if err != nil || len(v) <= 5 {
			t.Fatalf("the answer under %s: %q, %v; want a sealed value", n, v, err)
		}
		madeKey := make([]byte, 32)
		rand.Read(madeKey)
		forged[n] = sealV1(t, tok, n, adminAnswer())
		// The present format, its key id kept, sealed under a key of the
		// writer's making.
		block, _ := aes.NewCipher(madeKey)
		aead, _ := cipher.NewGCM(block)
		plain, _ := json.Marshal(adminAnswer())
		head := []byte(v[:5])
		nonce := make([]byte, aead.NonceSize())
		rand.Read(nonce)
		forged[n+" v2"] = string(aead.Seal(append(head, nonce...), nonce, plain, []byte(n)))
	}
	before := i.IntrospectCalls()
	for k, v := range forged {
		c.Set(ctx, strings.TrimSuffix(k, " v2"), v, time.Hour)
		gw := startFleet(t, 1, r, i, o)[0] // a replica whose own cache is empty
		if got := stacktest.Get(t, gw.Traffic+"/sayhello", tok); got.Status != 200 {
			t.Fatalf("%d %s", got.Status, got.Body)
		}
		if a := lastAccess(t, gw); a["cache"] == "shared_hit" || a["subject"] == "admin" {
			t.Errorf("a replaced answer was believed: %v", a)
		}
		gw.Stop()
		gw.AssertNoLeaks(t, tok, stacktest.FleetKey, stacktest.GatewaySecret)
	}
	if n := i.IntrospectCalls() - before; n != int64(len(forged)) {
		t.Errorf("%d introspections for %d replaced answers, want one each", n, len(forged))
	}
	if v := scrape(t, gws[0]).value("authgate_redis_rejected_total", "what=answer", "reason=forged"); v != 0 {
		t.Errorf("rejected{answer,forged} %v on a replica that read none, want 0 (present from the start)", v)
	}
}

// esKeys serves a JWKS of one P-256 key, and signs ES256 JWTs with it.
type esKeys struct {
	key *ecdsa.PrivateKey
	srv *httptest.Server
}

const esKID = "e2e-es256"

func startESKeys(t *testing.T) *esKeys {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.Public(), KeyID: esKID, Algorithm: "ES256", Use: "sig"}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	return &esKeys{key: k, srv: srv}
}

func (e *esKeys) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: e.key}, (&jose.SignerOptions{}).WithHeader("kid", esKID))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jws.CompactSerialize()
	return raw
}

// highS is token's ECDSA twin: (r, n-s) verifies as (r, s) does.
func highS(t *testing.T, token string) string {
	t.Helper()
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("not an ES256 signature: %v", err)
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	out := append([]byte{}, sig[:32]...)
	out = append(out, s.FillBytes(make([]byte, 32))...)
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(out)
}

// nonCanonical sets an unused bit of the signature's last character: the
// same bytes to a lenient decoder, another string.
func nonCanonical(token string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, token[len(token)-1])
	return token[:len(token)-1] + string(alphabet[last^1])
}

// TestFleetRevokeSpellings: POST /revoke revokes a JWT in every spelling
// that verifies (its ECDSA high-S twin), in jwt and hybrid mode, on
// /verify and on every replica; a spelling that is not canonical base64url
// is 401 before and after, never introspected.
func TestFleetRevokeSpellings(t *testing.T) {
	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	r := stacktest.StartRedis(t)
	keys := startESKeys(t)
	for _, mode := range []string{"jwt", "hybrid"} {
		t.Run(mode, func(t *testing.T) {
			extra := []string{"TOKEN_VALIDATION", mode, "OKTA_AUDIENCE", "api://default", "OKTA_JWKS_URL", keys.srv.URL}
			if mode == "hybrid" {
				extra = append(extra, "INTROSPECT_PATHS", "GET /saysecret")
			}
			gws := startFleet(t, 2, r, i, o, extra...)
			jwt := keys.sign(t, i.Claims(stacktest.DemoClient, []string{"read_sayhello"}, time.Hour))
			twin := highS(t, jwt)
			bad := nonCanonical(jwt)
			calls := i.IntrospectCalls()
			for k, gw := range gws {
				for _, tok := range []string{jwt, twin} {
					if got := stacktest.Get(t, gw.Traffic+"/sayhello", tok); got.Status != 200 {
						t.Fatalf("replica %d before the revocation: %d %s", k, got.Status, got.Body)
					}
					if got := stacktest.Get(t, gw.Admin+"/verify/sayhello", tok); got.Status != 200 {
						t.Fatalf("replica %d /verify before the revocation: %d %s", k, got.Status, got.Body)
					}
				}
				if got := stacktest.Get(t, gw.Traffic+"/sayhello", bad); got.Status != 401 || !strings.Contains(got.Body, "invalid_token") {
					t.Errorf("replica %d, not canonical: %d %s, want 401 invalid_token", k, got.Status, got.Body)
				}
				if got := stacktest.Get(t, gw.Traffic+"/saysecret", bad); got.Status != 401 {
					t.Errorf("replica %d, not canonical, on /saysecret (introspected in hybrid mode): %d %s, want 401", k, got.Status, got.Body)
				}
			}
			if n := i.IntrospectCalls() - calls; n != 0 {
				t.Errorf("%d introspections, want none (locally verified, or not canonical)", n)
			}

			if got := revoke(t, gws[0], adminToken, jwt); got.Status != 200 || !strings.Contains(got.Body, `"scope":"fleet"`) {
				t.Fatalf("revoke: %d %s", got.Status, got.Body)
			}
			start := time.Now()
			for k, gw := range gws {
				for _, tok := range []string{twin, jwt, bad} {
					stacktest.Eventually(t, 2*time.Second-time.Since(start), "every spelling revoked on every replica", func() bool {
						return stacktest.Get(t, gw.Traffic+"/sayhello", tok).Status == 401
					})
					if got := stacktest.Get(t, gw.Admin+"/verify/sayhello", tok); got.Status != 401 {
						t.Errorf("replica %d /verify after the revocation: %d", k, got.Status)
					}
				}
				t.Logf("replica %d: every spelling 401 after %s", k, time.Since(start))
			}
			for _, gw := range gws {
				gw.Stop()
				gw.AssertNoLeaks(t, jwt, twin, stacktest.FleetKey, adminToken)
			}
		})
	}
}
