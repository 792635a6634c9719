package devidp

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testIssuer = "http://idp.test/oauth2/default"

// clock is a fake time source that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestServer returns a Server with the clients demo, gw (no scopes) and
// one whose ID and secret need URL encoding, after applying edit to its
// config, and the fake clock it runs on.
func newTestServer(t *testing.T, edit func(*Config)) (*Server, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2030, 1, 2, 12, 0, 30, 0, time.UTC)}
	cfg := Config{
		Issuer: testIssuer,
		Clients: []Client{
			{ID: "demo", Secret: "demo-secret", Scopes: []string{"read_sayhello", "read_saysecret"}},
			{ID: "gw", Secret: "gw-secret"},
			{ID: "svc:1 é", Secret: "s:e+c%ret", Scopes: []string{"x"}},
		},
		Now: clk.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

// basic returns an Authorization header value for client_secret_basic.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// post sends a form to path on h and returns the recorded answer.
func post(h http.Handler, path, auth string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return m
}

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`) // 32 bytes, base64url, no padding

func TestToken(t *testing.T) {
	const path = "/oauth2/default/v1/token"
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(kv ...string) url.Values {
		v := maps.Clone(cc)
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name        string
		contentType string // default form
		auth        string
		body        string // default form.Encode()
		form        url.Values
		wantStatus  int
		wantError   string
		wantClient  string
		wantScope   string
	}{
		{name: "basic, all scopes", auth: basic("demo", "demo-secret"), form: cc,
			wantStatus: 200, wantClient: "demo", wantScope: "read_sayhello read_saysecret"},
		{name: "basic, url-encoded credentials", auth: basic("svc:1 é", "s:e+c%ret"), form: cc,
			wantStatus: 200, wantClient: "svc:1 é", wantScope: "x"},
		{name: "post, one scope twice", form: with("client_id", "demo", "client_secret", "demo-secret", "scope", "read_sayhello read_sayhello"),
			wantStatus: 200, wantClient: "demo", wantScope: "read_sayhello"},
		{name: "client without scopes", auth: basic("gw", "gw-secret"), form: cc,
			wantStatus: 200, wantClient: "gw"},
		{name: "basic and post at once", auth: basic("demo", "demo-secret"), form: with("client_id", "demo", "client_secret", "demo-secret"),
			wantStatus: 400, wantError: "invalid_request"},
		{name: "basic, bad secret", auth: basic("demo", "wrong"), form: cc,
			wantStatus: 401, wantError: "invalid_client"},
		{name: "basic, not url-encoded", auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:1 é:s:e+c%ret")), form: cc,
			wantStatus: 401, wantError: "invalid_client"},
		{name: "bearer instead of basic", auth: "Bearer abc", form: cc,
			wantStatus: 401, wantError: "invalid_client"},
		{name: "post, bad secret", form: with("client_id", "demo", "client_secret", "wrong"),
			wantStatus: 401, wantError: "invalid_client"},
		{name: "post, no secret", form: with("client_id", "demo"),
			wantStatus: 401, wantError: "invalid_client"},
		{name: "unknown client", auth: basic("nobody", "demo-secret"), form: cc,
			wantStatus: 401, wantError: "invalid_client"},
		{name: "no client authentication", form: cc,
			wantStatus: 401, wantError: "invalid_client"},
		{name: "client assertion", form: with("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", "x.y.z"),
			wantStatus: 401, wantError: "invalid_client"},
		{name: "scope not allowed", auth: basic("demo", "demo-secret"), form: with("scope", "read_sayhello admin"),
			wantStatus: 400, wantError: "invalid_scope"},
		{name: "malformed scope", auth: basic("demo", "demo-secret"), form: with("scope", `a"b`),
			wantStatus: 400, wantError: "invalid_scope"},
		{name: "client without scopes asks for one", auth: basic("gw", "gw-secret"), form: with("scope", "read_sayhello"),
			wantStatus: 400, wantError: "invalid_scope"},
		{name: "wrong grant", auth: basic("demo", "demo-secret"), form: url.Values{"grant_type": {"password"}},
			wantStatus: 400, wantError: "unsupported_grant_type"},
		{name: "no grant", auth: basic("demo", "demo-secret"), form: url.Values{},
			wantStatus: 400, wantError: "invalid_request"},
		{name: "repeated parameter", auth: basic("demo", "demo-secret"), form: with("grant_type", "client_credentials"),
			wantStatus: 400, wantError: "invalid_request"},
		{name: "JSON body", contentType: "application/json", auth: basic("demo", "demo-secret"), body: `{"grant_type":"client_credentials"}`,
			wantStatus: 400, wantError: "invalid_request"},
		{name: "body too large", auth: basic("demo", "demo-secret"), body: "grant_type=client_credentials&pad=" + strings.Repeat("a", maxFormBytes),
			wantStatus: 413, wantError: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestServer(t, nil)
			body := tt.body
			if body == "" {
				body = tt.form.Encode()
			}
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Content-Type", cmp.Or(tt.contentType, "application/x-www-form-urlencoded"))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			wantAuthenticate := ""
			if tt.wantStatus == 401 {
				wantAuthenticate = `Basic realm="devidp"`
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != wantAuthenticate {
				t.Errorf("WWW-Authenticate %q, want %q", got, wantAuthenticate)
			}
			m := decode(t, rec)
			if tt.wantError != "" {
				if m["error"] != tt.wantError || m["error_description"] == "" {
					t.Errorf("body %v, want error %q with a description", m, tt.wantError)
				}
				if len(s.tokens) != 0 {
					t.Errorf("%d tokens stored after an error", len(s.tokens))
				}
				return
			}
			want := map[string]any{"token_type": "Bearer", "expires_in": 3600.0, "access_token": m["access_token"]}
			if tt.wantScope != "" {
				want["scope"] = tt.wantScope
			}
			if !maps.Equal(m, want) {
				t.Errorf("body %v, want %v", m, want)
			}
			raw, _ := m["access_token"].(string)
			if !tokenPattern.MatchString(raw) {
				t.Errorf("access_token %q is not 32 bytes of unpadded base64url", raw)
			}
			tok, ok := s.lookup(raw)
			if !ok || tok.clientID != tt.wantClient || strings.Join(tok.scopes, " ") != tt.wantScope {
				t.Errorf("stored token %+v (found %v), want client %q scope %q", tok, ok, tt.wantClient, tt.wantScope)
			}
		})
	}
}

func TestIntrospect(t *testing.T) {
	const path = "/oauth2/default/v1/introspect"
	s, clk := newTestServer(t, func(c *Config) { c.Audience = "api://authgate" })
	issue := func(client string, scopes []string, ttl time.Duration) string {
		t.Helper()
		tok, err := s.Issue(client, scopes, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	iat := clk.Now()
	active := issue("demo", []string{"read_sayhello"}, 0)
	noScope := issue("gw", nil, 0)
	expiring := issue("demo", nil, time.Minute)
	revoked := issue("demo", nil, 0)
	s.Revoke(revoked)
	clk.Add(time.Minute) // expiring is now expired: exp is exclusive

	gw := basic("gw", "gw-secret")
	tests := []struct {
		name       string
		auth       string
		form       url.Values
		wantStatus int
		want       map[string]any // members other than jti and uid
	}{
		{name: "active", auth: gw, form: url.Values{"token": {active}}, wantStatus: 200, want: map[string]any{
			"active": true, "scope": "read_sayhello", "username": "demo", "sub": "demo", "client_id": "demo",
			"exp": float64(iat.Add(time.Hour).Unix()), "iat": float64(iat.Unix()),
			"aud": "api://authgate", "iss": testIssuer, "token_type": "Bearer",
		}},
		{name: "active, no scope, post auth, hint", form: url.Values{
			"token": {noScope}, "token_type_hint": {"access_token"}, "client_id": {"demo"}, "client_secret": {"demo-secret"},
		}, wantStatus: 200, want: map[string]any{
			"active": true, "username": "gw", "sub": "gw", "client_id": "gw",
			"exp": float64(iat.Add(time.Hour).Unix()), "iat": float64(iat.Unix()),
			"aud": "api://authgate", "iss": testIssuer, "token_type": "Bearer",
		}},
		{name: "expired", auth: gw, form: url.Values{"token": {expiring}}, wantStatus: 200, want: map[string]any{"active": false}},
		{name: "revoked", auth: gw, form: url.Values{"token": {revoked}}, wantStatus: 200, want: map[string]any{"active": false}},
		{name: "unknown", auth: gw, form: url.Values{"token": {"no-such-token"}}, wantStatus: 200, want: map[string]any{"active": false}},
		{name: "missing token", auth: gw, form: url.Values{}, wantStatus: 400, want: map[string]any{
			"error": "invalid_request", "error_description": "missing token",
		}},
		{name: "unauthenticated", form: url.Values{"token": {active}}, wantStatus: 401, want: map[string]any{
			"error": "invalid_client", "error_description": "client authentication required",
		}},
		{name: "bad secret", auth: basic("gw", "nope"), form: url.Values{"token": {active}}, wantStatus: 401, want: map[string]any{
			"error": "invalid_client", "error_description": "client authentication failed",
		}},
		{name: "basic and post at once", auth: gw, form: url.Values{"token": {active}, "client_secret": {"gw-secret"}}, wantStatus: 400, want: map[string]any{
			"error": "invalid_request", "error_description": "client credentials sent both in the Authorization header and in the body",
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(s.Handler(), path, tt.auth, tt.form)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			m := decode(t, rec)
			if m["active"] == true {
				if jti, _ := m["jti"].(string); !strings.HasPrefix(jti, "AT.") || len(jti) < 20 {
					t.Errorf("jti %q", m["jti"])
				}
				if uid, _ := m["uid"].(string); uid == "" {
					t.Error("no uid")
				}
				delete(m, "jti")
				delete(m, "uid")
			}
			if !maps.Equal(m, tt.want) {
				t.Errorf("body %v, want %v", m, tt.want)
			}
			if got := s.IntrospectCalls(); got != int64(i+1) {
				t.Errorf("IntrospectCalls() = %d, want %d", got, i+1)
			}
		})
	}
	if _, ok := s.tokens[expiring]; ok {
		t.Error("expired token still stored after lookup")
	}

	// uid and jti are stable per token.
	first, second := post(s.Handler(), path, gw, url.Values{"token": {active}}), post(s.Handler(), path, gw, url.Values{"token": {active}})
	if a, b := decode(t, first), decode(t, second); a["uid"] != b["uid"] || a["jti"] != b["jti"] {
		t.Errorf("uid or jti changed between introspections: %v, %v", a, b)
	}
}

func TestRevokeEndpoint(t *testing.T) {
	const path = "/oauth2/default/v1/revoke"
	s, _ := newTestServer(t, nil)
	demo, gw := basic("demo", "demo-secret"), basic("gw", "gw-secret")
	tests := []struct {
		name       string
		auth       string
		form       url.Values
		wantStatus int
		wantActive bool
	}{
		{name: "another client's token is kept", auth: gw, wantStatus: 200, wantActive: true},
		{name: "unknown token", auth: demo, form: url.Values{"token": {"no-such-token"}}, wantStatus: 200, wantActive: true},
		{name: "unauthenticated", wantStatus: 401, wantActive: true},
		{name: "missing token", auth: demo, form: url.Values{}, wantStatus: 400, wantActive: true},
		{name: "own token", auth: demo, wantStatus: 200, wantActive: false},
		{name: "already revoked", auth: demo, wantStatus: 200, wantActive: false},
	}
	tok, err := s.Issue("demo", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := tt.form
			if form == nil {
				form = url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
			}
			rec := post(s.Handler(), path, tt.auth, form)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == 200 && rec.Body.Len() != 0 {
				t.Errorf("body %q, want empty", rec.Body)
			}
			if _, active := s.lookup(tok); active != tt.wantActive {
				t.Errorf("token active = %v, want %v", active, tt.wantActive)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	s, clk := newTestServer(t, func(c *Config) { c.RateLimit = 2 })
	h := s.Handler()
	tok, err := s.Issue("demo", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	introspect := func(*testing.T) *httptest.ResponseRecorder {
		return post(h, "/oauth2/default/v1/introspect", basic("gw", "gw-secret"), url.Values{"token": {tok}})
	}
	endOfMinute := strconv.FormatInt(time.Date(2030, 1, 2, 12, 1, 0, 0, time.UTC).Unix(), 10)
	tests := []struct {
		name          string
		advance       time.Duration
		do            func(*testing.T) *httptest.ResponseRecorder
		wantStatus    int
		wantRemaining string
		wantReset     string
	}{
		{name: "first", do: introspect, wantStatus: 200, wantRemaining: "1", wantReset: endOfMinute},
		{name: "wrong method counts", do: func(*testing.T) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/default/v1/token", nil))
			return rec
		}, wantStatus: 405, wantRemaining: "0", wantReset: endOfMinute},
		{name: "over the limit", advance: 29 * time.Second, do: introspect, wantStatus: 429, wantRemaining: "0", wantReset: endOfMinute},
		{name: "next window", advance: time.Second, do: introspect, wantStatus: 200, wantRemaining: "1",
			wantReset: strconv.FormatInt(time.Date(2030, 1, 2, 12, 2, 0, 0, time.UTC).Unix(), 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Add(tt.advance)
			rec := tt.do(t)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			for k, want := range map[string]string{
				"X-Rate-Limit-Limit": "2", "X-Rate-Limit-Remaining": tt.wantRemaining, "X-Rate-Limit-Reset": tt.wantReset,
			} {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if tt.wantStatus == 429 {
				want := `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}` + "\n"
				if got := rec.Body.String(); got != want {
					t.Errorf("body %q, want %q", got, want)
				}
			}
		})
	}
	if got := s.IntrospectCalls(); got != 3 {
		t.Errorf("IntrospectCalls() = %d, want 3 (rejected ones count)", got)
	}

	t.Run("no limit, no headers", func(t *testing.T) {
		s, _ := newTestServer(t, nil)
		rec := post(s.Handler(), "/oauth2/default/v1/introspect", basic("gw", "gw-secret"), url.Values{"token": {"x"}})
		for k := range rec.Header() {
			if strings.HasPrefix(k, "X-Rate-Limit") {
				t.Errorf("unexpected header %s", k)
			}
		}
	})
	t.Run("discovery is not limited", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/default/.well-known/oauth-authorization-server", nil))
		if rec.Code != 200 || rec.Header().Get("X-Rate-Limit-Limit") != "" {
			t.Errorf("status %d, headers %v", rec.Code, rec.Header())
		}
	})
}

func TestLatency(t *testing.T) {
	const path = "/oauth2/default/v1/introspect"
	form := url.Values{"token": {"x"}}
	t.Run("delays the answer", func(t *testing.T) {
		const latency = 20 * time.Millisecond
		s, _ := newTestServer(t, func(c *Config) { c.Latency = latency })
		start := time.Now()
		rec := post(s.Handler(), path, basic("gw", "gw-secret"), form)
		if d := time.Since(start); d < latency {
			t.Errorf("answered after %v, want at least %v", d, latency)
		}
		if rec.Code != 200 {
			t.Errorf("status %d", rec.Code)
		}
	})
	t.Run("stops when the request is cancelled", func(t *testing.T) {
		s, _ := newTestServer(t, func(c *Config) { c.Latency = time.Hour })
		ctx, cancel := context.WithCancel(t.Context())
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic("gw", "gw-secret"))
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Handler().ServeHTTP(rec, req)
		}()
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("handler still waiting after the request was cancelled")
		}
		if rec.Body.Len() != 0 || s.IntrospectCalls() != 1 {
			t.Errorf("body %q, IntrospectCalls %d", rec.Body, s.IntrospectCalls())
		}
	})
}

func TestDiscovery(t *testing.T) {
	s, _ := newTestServer(t, func(c *Config) { c.Issuer = testIssuer + "/" })
	h := s.Handler()
	for _, path := range []string{
		"/oauth2/default/.well-known/oauth-authorization-server",
		"/oauth2/default/.well-known/openid-configuration",
	} {
		t.Run(path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != 200 {
				t.Fatalf("status %d", rec.Code)
			}
			var doc struct {
				Issuer                   string   `json:"issuer"`
				TokenEndpoint            string   `json:"token_endpoint"`
				IntrospectionEndpoint    string   `json:"introspection_endpoint"`
				RevocationEndpoint       string   `json:"revocation_endpoint"`
				IntrospectionAuthMethods []string `json:"introspection_endpoint_auth_methods_supported"`
				GrantTypes               []string `json:"grant_types_supported"`
				Scopes                   []string `json:"scopes_supported"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			checks := []struct{ name, got, want string }{
				{"issuer", doc.Issuer, testIssuer},
				{"token_endpoint", doc.TokenEndpoint, testIssuer + "/v1/token"},
				{"introspection_endpoint", doc.IntrospectionEndpoint, testIssuer + "/v1/introspect"},
				{"revocation_endpoint", doc.RevocationEndpoint, testIssuer + "/v1/revoke"},
				{"introspection auth methods", strings.Join(doc.IntrospectionAuthMethods, " "), "client_secret_basic client_secret_post private_key_jwt"},
				{"grant types", strings.Join(doc.GrantTypes, " "), "client_credentials"},
				{"scopes", strings.Join(doc.Scopes, " "), "read_sayhello read_saysecret x"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestRouting(t *testing.T) {
	s, _ := newTestServer(t, nil)
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/oauth2/default/v1/token", 405},
		{http.MethodGet, "/oauth2/default/v1/introspect", 405},
		{http.MethodPut, "/oauth2/default/v1/revoke", 405},
		{http.MethodPost, "/oauth2/default/.well-known/oauth-authorization-server", 405},
		{http.MethodPost, "/oauth2/v1/token", 404},
		{http.MethodPost, "/oauth2/default/v1/keys", 405},
		{http.MethodGet, "/oauth2/default/devidp/rotate-key", 405},
		{http.MethodGet, "/", 404},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d", rec.Code, tt.want)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	s, _ := newTestServer(t, nil)
	tests := []struct {
		name    string
		client  string
		scopes  []string
		ttl     time.Duration
		wantErr string
	}{
		{name: "ok", client: "demo", scopes: []string{"read_saysecret"}, ttl: time.Second},
		{name: "unknown client", client: "nobody", wantErr: `devidp: unknown client "nobody"`},
		{name: "scope not allowed", client: "gw", scopes: []string{"read_sayhello"}, wantErr: `devidp: client "gw": scope read_sayhello is not allowed for this client`},
		{name: "negative ttl", client: "demo", ttl: -time.Second, wantErr: "devidp: token TTL -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := s.Issue(tt.client, tt.scopes, tt.ttl)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, ok := s.lookup(tok)
			if !ok || got.exp.Sub(got.iat) != tt.ttl || !slices.Equal(got.scopes, tt.scopes) {
				t.Errorf("stored %+v (found %v)", got, ok)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	s, clk := newTestServer(t, nil)
	for range minSweep - 1 {
		if _, err := s.Issue("demo", nil, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	live, err := s.Issue("demo", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second) // expires all but live; the next Issue sweeps
	if _, err := s.Issue("demo", nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.tokens[live]; !ok || len(s.tokens) != 2 {
		t.Errorf("%d tokens after the sweep (live one kept: %v), want 2", len(s.tokens), ok)
	}
}

func TestNew(t *testing.T) {
	ok := []Client{{ID: "a", Secret: "s"}}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "relative issuer", cfg: Config{Issuer: "/oauth2/default", Clients: ok},
			wantErr: `devidp: invalid config: issuer "/oauth2/default": want an absolute http or https URL`},
		{name: "unparsable issuer", cfg: Config{Issuer: "http://[::1", Clients: ok},
			wantErr: `devidp: invalid config: issuer: parse "http://[::1": missing ']' in host`},
		{name: "issuer with query", cfg: Config{Issuer: "http://h/x?a=b", Clients: ok},
			wantErr: `devidp: invalid config: issuer "http://h/x?a=b": must not have user info, query or fragment`},
		{name: "issuer path with a pattern", cfg: Config{Issuer: "http://h/{x}", Clients: ok},
			wantErr: `devidp: invalid config: issuer "http://h/{x}": path may contain only letters, digits, '/', '-', '.', '_' and '~'`},
		{name: "everything wrong", cfg: Config{Issuer: "http://h", TokenTTL: -1, Latency: -1, RateLimit: -1},
			wantErr: "devidp: invalid config: no clients\ntoken TTL -1ns is negative\nlatency -1ns is negative\nrate limit -1 is negative"},
		{name: "bad clients", cfg: Config{Issuer: "http://h", Clients: []Client{{ID: "a", Secret: "s"}, {ID: "a", Scopes: []string{"a b"}}}},
			wantErr: "devidp: invalid config: client 2: duplicate id \"a\"\nclient 2 (\"a\"): empty secret\nclient 2 (\"a\"): invalid scope \"a b\""},
		{name: "root issuer", cfg: Config{Issuer: "https://h", Clients: ok}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if got := errString(err); got != tt.wantErr {
				t.Errorf("err = %q, want %q", got, tt.wantErr)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestEndToEnd(t *testing.T) {
	s, _ := newTestServer(t, nil)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	form := func(kv ...string) io.Reader {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return strings.NewReader(v.Encode())
	}
	do := func(path, id, secret string, body io.Reader) map[string]any {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/default"+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("%s: status %d: %v", path, resp.StatusCode, err)
		}
		return m
	}
	tok := do("/v1/token", "demo", "demo-secret", form("grant_type", "client_credentials", "scope", "read_saysecret"))
	got := do("/v1/introspect", "gw", "gw-secret", form("token", tok["access_token"].(string)))
	if got["active"] != true || got["scope"] != "read_saysecret" {
		t.Errorf("introspection %v", got)
	}
}

// TestResourceIndicator: a token request may name its resource (RFC 8707);
// the token's aud is then that resource, as an MCP client expects.
func TestResourceIndicator(t *testing.T) {
	s, _ := newTestServer(t, nil)
	demo := basic("demo", "demo-secret")
	audOf := func(t *testing.T, tok string) any {
		t.Helper()
		rec := post(s.Handler(), "/oauth2/default/v1/introspect", basic("gw", "gw-secret"), url.Values{"token": {tok}})
		return decode(t, rec)["aud"]
	}
	tests := []struct {
		name, resource string
		wantStatus     int
		wantAud        string
		wantError      string
	}{
		{name: "no resource: the server's audience", wantStatus: 200, wantAud: "api://default"},
		{name: "resource", resource: "https://mcp.example.com/mcp", wantStatus: 200, wantAud: "https://mcp.example.com/mcp"},
		{name: "relative", resource: "/mcp", wantStatus: 400, wantError: "invalid_target"},
		{name: "fragment", resource: "https://mcp.example.com/mcp#x", wantStatus: 400, wantError: "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}}
			if tt.resource != "" {
				form.Set("resource", tt.resource)
			}
			rec := post(s.Handler(), "/oauth2/default/v1/token", demo, form)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			m := decode(t, rec)
			if tt.wantError != "" {
				if m["error"] != tt.wantError {
					t.Errorf("error %v, want %s", m["error"], tt.wantError)
				}
				return
			}
			if got := audOf(t, m["access_token"].(string)); got != tt.wantAud {
				t.Errorf("aud %v, want %s", got, tt.wantAud)
			}
		})
	}
	tok, err := s.IssueFor("demo", "https://mcp.example.com/mcp", []string{"read_sayhello"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := audOf(t, tok); got != "https://mcp.example.com/mcp" {
		t.Errorf("IssueFor: aud %v", got)
	}
	if _, err := s.IssueFor("demo", "mcp", nil, 0); err == nil || err.Error() != `devidp: resource "mcp": must be an absolute URI without a fragment (RFC 8707)` {
		t.Errorf("IssueFor with a relative resource: %v", err)
	}
}
