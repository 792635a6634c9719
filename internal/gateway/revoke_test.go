package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/fault"
)

// adminToken is an ADMIN_API_TOKEN of the 32 characters it needs at least.
const adminToken = "admin-api-token-0123456789abcdef-XYZ"

// revokeCall is what the gateway asked of Deps.Revoke.
type revokeCall struct {
	token, hint, issuer string
	ctxErr              error // the context's error when called: nil, detached from the request
}

// withRevoke serves POST /revoke with ADMIN_API_TOKEN adminToken; the
// calls go to calls, answered by answer.
func withRevoke(calls *[]revokeCall, answer func() (Revocation, error)) func(*Deps) {
	return func(d *Deps) {
		d.AdminAPIToken = adminToken
		d.Revoke = func(ctx context.Context, r RevokeRequest) (Revocation, error) {
			*calls = append(*calls, revokeCall{r.Token, r.Hint, r.Issuer, ctx.Err()})
			return answer()
		}
	}
}

func revokeRequest(auth string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return req
}

// TestRevoke: POST /revoke on the admin listener, shaped like RFC 7009:
// the admin token required (compared whole), the form's token and
// token_type_hint and issuer handed to Deps.Revoke, 200 with where it was
// revoked, 400 when Deps.Revoke refuses the issuer, 502
// (written by the error handler) when only the IdP's revocation failed, and
// no token in the log.
func TestRevoke(t *testing.T) {
	const tok = "TOKEN-MARKER-to-revoke-0123456789"
	fleet := func() (Revocation, error) { return Revocation{Scope: "fleet", Upstream: "off"}, nil }
	tests := []struct {
		name       string
		auth       string
		form       url.Values
		answer     func() (Revocation, error)
		wantStatus int
		wantBody   map[string]any
		wantCall   *revokeCall
	}{
		{name: "revoked across the fleet", auth: "Bearer " + adminToken, form: url.Values{"token": {tok}},
			answer: fleet, wantStatus: 200, wantBody: map[string]any{"scope": "fleet", "upstream": "off"},
			wantCall: &revokeCall{token: tok}},
		{name: "the hint is passed on", auth: "Bearer " + adminToken, form: url.Values{"token": {tok}, "token_type_hint": {"access_token"}},
			answer:     func() (Revocation, error) { return Revocation{Scope: "local", Upstream: "revoked"}, nil },
			wantStatus: 200, wantBody: map[string]any{"scope": "local", "upstream": "revoked"},
			wantCall: &revokeCall{token: tok, hint: "access_token"}},
		{name: "the issuer is passed on", auth: "Bearer " + adminToken, form: url.Values{"token": {tok}, "issuer": {"org"}},
			answer:     func() (Revocation, error) { return Revocation{Scope: "local", Upstream: "revoked", Issuer: "org"}, nil },
			wantStatus: 200, wantBody: map[string]any{"scope": "local", "upstream": "revoked", "issuer": "org"},
			wantCall: &revokeCall{token: tok, issuer: "org"}},
		{name: "an issuer Revoke refuses", auth: "Bearer " + adminToken, form: url.Values{"token": {tok}, "issuer": {"nope"}},
			answer: func() (Revocation, error) {
				return Revocation{}, &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "issuer is not a configured issuer's name"}
			},
			wantStatus: 400, wantBody: map[string]any{"error": "invalid_request", "error_description": "issuer is not a configured issuer's name"},
			wantCall: &revokeCall{token: tok, issuer: "nope"}},
		{name: "no admin token", form: url.Values{"token": {tok}}, answer: fleet, wantStatus: 401,
			wantBody: map[string]any{"error": "invalid_token", "error_description": "ADMIN_API_TOKEN required"}},
		{name: "wrong admin token", auth: "Bearer wrong", form: url.Values{"token": {tok}}, answer: fleet, wantStatus: 401},
		{name: "the admin token and more", auth: "Bearer " + adminToken + "x", form: url.Values{"token": {tok}}, answer: fleet, wantStatus: 401},
		{name: "a prefix of the admin token", auth: "Bearer " + adminToken[:31], form: url.Values{"token": {tok}}, answer: fleet, wantStatus: 401},
		{name: "not a bearer", auth: "Basic " + adminToken, form: url.Values{"token": {tok}}, answer: fleet, wantStatus: 401},
		{name: "no token in the form", auth: "Bearer " + adminToken, form: url.Values{}, answer: fleet, wantStatus: 400,
			wantBody: map[string]any{"error": "invalid_request", "error_description": "missing token"}},
		{name: "unreadable form", auth: "Bearer " + adminToken, form: url.Values{"token": {strings.Repeat("a", maxRevokeBody)}},
			answer: fleet, wantStatus: 400, wantBody: map[string]any{"error": "invalid_request", "error_description": "unreadable form"}},
		{name: "the IdP's revocation failed", auth: "Bearer " + adminToken, form: url.Values{"token": {tok}},
			answer: func() (Revocation, error) {
				return Revocation{Scope: "fleet", Upstream: "off"}, errors.New("revoke: status 500")
			},
			wantStatus: 502, wantBody: map[string]any{"error": "bad_gateway",
				"error_description": "revoked in authgate, but the authorization server's revocation failed", "scope": "fleet", "upstream": "off"},
			wantCall: &revokeCall{token: tok}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []revokeCall
			h := newHarness(t, withRevoke(&calls, tt.answer))
			w := h.serve(h.g.Admin(), revokeRequest(tt.auth, tt.form))
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantBody != nil {
				var got map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatalf("body %q: %v", w.Body, err)
				}
				if len(got) != len(tt.wantBody) {
					t.Errorf("body %v, want %v", got, tt.wantBody)
				}
				for k, v := range tt.wantBody {
					if got[k] != v {
						t.Errorf("body %v, want %v", got, tt.wantBody)
						break
					}
				}
			}
			switch {
			case tt.wantCall == nil && len(calls) > 0:
				t.Errorf("revoked: %+v", calls)
			case tt.wantCall != nil && (len(calls) != 1 || calls[0] != *tt.wantCall):
				t.Errorf("Revoke calls %+v, want one %+v", calls, *tt.wantCall)
			}
			switch w.Code {
			case 401:
				if c := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(c, `Bearer realm="authgate", error="invalid_token"`) {
					t.Errorf("challenge %q", c)
				}
			case 502:
				if w.Header().Get("Retry-After") == "" || w.Header().Get("Content-Type") != "application/json" {
					t.Errorf("502 headers %v", w.Header())
				}
			}
			if strings.Contains(h.logs.String(), "TOKEN-MARKER") || strings.Contains(h.logs.String(), adminToken) {
				t.Errorf("a token reached the log:\n%s", h.logs)
			}
		})
	}
}

// TestRevokeDetached: a caller that goes away does not leave a revocation
// half done: Deps.Revoke's context is not the request's.
func TestRevokeDetached(t *testing.T) {
	var calls []revokeCall
	h := newHarness(t, withRevoke(&calls, func() (Revocation, error) { return Revocation{Scope: "local", Upstream: "off"}, nil }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.serve(h.g.Admin(), revokeRequest("Bearer "+adminToken, url.Values{"token": {"tok"}}).WithContext(ctx))
	if len(calls) != 1 || calls[0].ctxErr != nil {
		t.Errorf("Revoke calls %+v, want one with a live context", calls)
	}
	if l := h.waitLine(t, "token revoked"); l["scope"] != "local" || l["upstream"] != "off" {
		t.Errorf("log line %v", l)
	}
}

// TestRevokeOff: without ADMIN_API_TOKEN (or without a Revoke) there is no
// POST /revoke: 404, on the admin listener as on the traffic one.
func TestRevokeOff(t *testing.T) {
	var calls []revokeCall
	for name, opt := range map[string]func(*Deps){
		"no ADMIN_API_TOKEN": func(d *Deps) { withRevoke(&calls, nil)(d); d.AdminAPIToken = "" },
		"no Revoke":          func(d *Deps) { d.AdminAPIToken = adminToken },
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, opt)
			if w := h.serve(h.g.Admin(), revokeRequest("Bearer "+adminToken, url.Values{"token": {"tok"}})); w.Code != 404 {
				t.Errorf("admin: %d, want 404", w.Code)
			}
		})
	}
	h := newHarness(t, withRevoke(&calls, nil))
	if w := h.serve(h.g.Traffic(), revokeRequest("Bearer "+adminToken, url.Values{"token": {"tok"}})); w.Code != 404 {
		t.Errorf("traffic listener: %d, want 404 (POST /revoke is on ADMIN_ADDR only)", w.Code)
	}
	if w := h.serve(h.g.Admin(), newRequest(http.MethodGet, "/revoke")); w.Code != 405 {
		t.Errorf("GET /revoke: %d, want 405", w.Code)
	}
	if len(calls) != 0 {
		t.Errorf("revoked: %+v", calls)
	}
}

// TestRevokeObserved: every POST /revoke gets an access-log line with its
// status (never the token nor the admin token) and is counted by result in
// authgate_revoke_requests_total, a refused admin token as unauthorized;
// none is counted as traffic or as a decision.
func TestRevokeObserved(t *testing.T) {
	const tok = "TOKEN-MARKER-to-revoke-0123456789"
	ok := func() (Revocation, error) { return Revocation{Scope: "local", Upstream: "off"}, nil }
	failed := func() (Revocation, error) {
		return Revocation{Scope: "local", Upstream: "off"}, errors.New("revoke: status 500")
	}
	for _, tc := range []struct {
		name       string
		auth       string
		form       url.Values
		answer     func() (Revocation, error)
		wantStatus int
		wantResult string
	}{
		{"revoked", "Bearer " + adminToken, url.Values{"token": {tok}}, ok, 200, "revoked"},
		{"no admin token", "", url.Values{"token": {tok}}, ok, 401, "unauthorized"},
		{"wrong admin token", "Bearer " + tok, url.Values{"token": {tok}}, ok, 401, "unauthorized"},
		{"not a bearer", "Basic " + adminToken, url.Values{"token": {tok}}, ok, 401, "unauthorized"},
		{"missing token", "Bearer " + adminToken, url.Values{}, ok, 400, "bad_request"},
		{"the IdP's revocation failed", "Bearer " + adminToken, url.Values{"token": {tok}}, failed, 502, "upstream_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []revokeCall
			h := newHarness(t, withRevoke(&calls, tc.answer))
			if w := h.serve(h.g.Admin(), revokeRequest(tc.auth, tc.form)); w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tc.wantStatus)
			}
			lines := h.accessLines(t)
			if len(lines) != 1 {
				t.Fatalf("%d access-log lines, want 1:\n%s", len(lines), h.logs)
			}
			l := lines[0]
			if l["route"] != "/revoke" || l["method"] != "POST" || l["status"] != float64(tc.wantStatus) || l["remote_addr"] == nil {
				t.Errorf("access-log line %v", l)
			}
			if logs := h.logs.String(); strings.Contains(logs, "TOKEN-MARKER") || strings.Contains(logs, adminToken) {
				t.Errorf("a token reached the log:\n%s", logs)
			}
			h.metrics.mu.Lock()
			defer h.metrics.mu.Unlock()
			if len(h.metrics.revokes) != 1 || h.metrics.revokes[0] != tc.wantResult {
				t.Errorf("revoke results %q, want [%s]", h.metrics.revokes, tc.wantResult)
			}
			if len(h.metrics.requests) != 0 || len(h.metrics.decisions) != 0 {
				t.Errorf("counted as traffic: requests %q, decisions %q", h.metrics.requests, h.metrics.decisions)
			}
		})
	}
}
