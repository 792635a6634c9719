package gateway

import (
	"bytes"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/authn"
)

func TestParseObject(t *testing.T) {
	cases := []struct {
		name, raw string
		allowed   bool
		reason    string
		rich      *richDecision
		logs      string // a substring of the log, "" for none
	}{
		{name: "allowed", raw: `{"allowed":true}`, allowed: true, rich: &richDecision{}},
		{name: "allow, as APISIX and Kong name it", raw: `{"allow":true}`, allowed: true, rich: &richDecision{}},
		{name: "allowed wins over allow", raw: `{"allowed":false,"allow":true}`, reason: "policy denied", rich: &richDecision{}},
		// Logged by the decider, rate-limited (TestPolicyWarningsAreRateLimited).
		{name: "missing allowed denies", raw: `{"http_status":404}`, reason: "policy decision has no boolean allowed",
			rich: &richDecision{status: 404}},
		{name: "non-boolean allowed denies", raw: `{"allowed":"yes"}`, reason: "policy decision has no boolean allowed",
			rich: &richDecision{}},
		// Member names are exact: encoding/json's case folding must not
		// let another spelling decide.
		{name: "ALLOWED is not allowed", raw: `{"allowed":false,"ALLOWED":true}`, reason: "policy denied", rich: &richDecision{}},
		{name: "Allowed alone denies", raw: `{"Allowed":true}`, reason: "policy decision has no boolean allowed", rich: &richDecision{}},
		{name: "Http_Status is not http_status", raw: `{"allowed":false,"Http_Status":404}`, reason: "policy denied", rich: &richDecision{}},
		{name: "unknown keys ignored", raw: `{"allowed":true,"reason":"x","extra":{"a":[1]}}`, allowed: true, rich: &richDecision{}},
		{name: "headers to upstream", raw: `{"allowed":true,"headers":{"X-Tenant":"acme","x-roles":["a","b"]}}`, allowed: true,
			rich: &richDecision{headers: http.Header{"X-Tenant": {"acme"}, "X-Roles": {"a", "b"}}}},
		{name: "headers as an array of objects", raw: `{"allowed":true,"headers":[{"X-A":"1"},{"X-A":"2"}]}`, allowed: true,
			rich: &richDecision{headers: http.Header{"X-A": {"1", "2"}}}},
		{name: "allow ignores status and body", raw: `{"allowed":true,"http_status":404,"body":"x"}`, allowed: true, rich: &richDecision{}},
		{name: "deny with status, headers and string body",
			raw:    `{"allowed":false,"http_status":403,"response_headers_to_add":{"WWW-Authenticate":"Bearer error=\"insufficient_scope\", scope=\"write\""},"body":"{\"error\":\"insufficient_scope\"}"}`,
			reason: "policy denied",
			rich: &richDecision{status: 403, responseHeaders: http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope", scope="write"`}},
				body: []byte(`{"error":"insufficient_scope"}`), bodyType: "application/json"}},
		{name: "deny with text body", raw: `{"allowed":false,"http_status":404,"body":"not here"}`, reason: "policy denied",
			rich: &richDecision{status: 404, body: []byte("not here"), bodyType: "text/plain; charset=utf-8"}},
		{name: "deny with object body", raw: `{"allowed":false,"body":{"error":"nope"}}`, reason: "policy denied",
			rich: &richDecision{body: []byte(`{"error":"nope"}`), bodyType: "application/json"}},
		{name: "deny cannot carry 200", raw: `{"allowed":false,"http_status":200}`, reason: "policy denied",
			rich: &richDecision{}, logs: "4xx or 5xx"},
		{name: "deny cannot carry 302", raw: `{"allowed":false,"http_status":302}`, reason: "policy denied",
			rich: &richDecision{}, logs: "4xx or 5xx"},
		{name: "deny cannot carry 101", raw: `{"allowed":false,"http_status":101}`, reason: "policy denied",
			rich: &richDecision{}, logs: "4xx or 5xx"},
		{name: "non-integer status", raw: `{"allowed":false,"http_status":"404"}`, reason: "policy denied",
			rich: &richDecision{}, logs: "4xx or 5xx"},
		{name: "header with a line break denies", raw: `{"allowed":true,"headers":{"X-A":"a\r\nX-B: b"}}`,
			reason: "policy decision has bad headers", logs: "bad headers"},
		{name: "bad header name denies", raw: `{"allowed":true,"headers":{"X A":"a"}}`,
			reason: "policy decision has bad headers", logs: "bad headers"},
		{name: "framing header denies", raw: `{"allowed":true,"headers":{"Content-Length":"1"}}`,
			reason: "policy decision has bad headers", logs: "bad headers"},
		{name: "h2c's HTTP2-Settings denies", raw: `{"allowed":true,"headers":{"HTTP2-Settings":"AAMAAABkAAQAAP__"}}`,
			reason: "policy decision has bad headers", logs: "bad headers"},
		{name: "non-string header value denies", raw: `{"allowed":true,"response_headers_to_add":{"X-A":1}}`,
			reason: "policy decision has bad response_headers_to_add", logs: "bad response_headers_to_add"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			d := parseObject([]byte(tc.raw), slog.New(slog.NewTextHandler(&logs, nil)).Warn)
			if d.allowed != tc.allowed || d.reason != tc.reason {
				t.Errorf("allowed %v reason %q, want %v %q", d.allowed, d.reason, tc.allowed, tc.reason)
			}
			if !reflect.DeepEqual(d.rich, tc.rich) {
				t.Errorf("rich %+v, want %+v", d.rich, tc.rich)
			}
			if tc.logs == "" && logs.Len() > 0 || !strings.Contains(logs.String(), tc.logs) {
				t.Errorf("logs %q, want %q", logs.String(), tc.logs)
			}
		})
	}
}

func TestIdentityStrip(t *testing.T) {
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
			tc.id.strip(h)
			if want := (http.Header{"Accept": {"*/*"}, "X-Users": {"kept"}}); !reflect.DeepEqual(h, want) {
				t.Errorf("after strip: %v, want %v", h, want)
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
