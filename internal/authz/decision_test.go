package authz

import (
	"bytes"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// richDecision is what an object decision adds to allowed and reason.
type richDecision struct {
	status          int
	headers         http.Header
	responseHeaders http.Header
	body            []byte
	bodyType        string
}

func richOf(d Decision) richDecision {
	return richDecision{status: d.Status, headers: d.Headers, responseHeaders: d.ResponseHeaders, body: d.Body, bodyType: d.BodyType}
}

func TestParseObject(t *testing.T) {
	cases := []struct {
		name, raw string
		allowed   bool
		reason    string
		rich      richDecision // the members beyond allowed and reason
		logs      string       // a substring of the log, "" for none
	}{
		{name: "allowed", raw: `{"allowed":true}`, allowed: true, rich: richDecision{}},
		{name: "allow, as APISIX and Kong name it", raw: `{"allow":true}`, allowed: true, rich: richDecision{}},
		{name: "allowed wins over allow", raw: `{"allowed":false,"allow":true}`, reason: "policy denied", rich: richDecision{}},
		// Logged by the decider, rate-limited (TestPolicyWarningsAreRateLimited).
		{name: "missing allowed denies", raw: `{"http_status":404}`, reason: "policy decision has no boolean allowed",
			rich: richDecision{status: 404}},
		{name: "non-boolean allowed denies", raw: `{"allowed":"yes"}`, reason: "policy decision has no boolean allowed",
			rich: richDecision{}},
		// Member names are exact: encoding/json's case folding must not
		// let another spelling decide.
		{name: "ALLOWED is not allowed", raw: `{"allowed":false,"ALLOWED":true}`, reason: "policy denied", rich: richDecision{}},
		{name: "Allowed alone denies", raw: `{"Allowed":true}`, reason: "policy decision has no boolean allowed", rich: richDecision{}},
		{name: "Http_Status is not http_status", raw: `{"allowed":false,"Http_Status":404}`, reason: "policy denied", rich: richDecision{}},
		{name: "unknown keys ignored", raw: `{"allowed":true,"reason":"x","extra":{"a":[1]}}`, allowed: true, rich: richDecision{}},
		{name: "headers to upstream", raw: `{"allowed":true,"headers":{"X-Tenant":"acme","x-roles":["a","b"]}}`, allowed: true,
			rich: richDecision{headers: http.Header{"X-Tenant": {"acme"}, "X-Roles": {"a", "b"}}}},
		{name: "headers as an array of objects", raw: `{"allowed":true,"headers":[{"X-A":"1"},{"X-A":"2"}]}`, allowed: true,
			rich: richDecision{headers: http.Header{"X-A": {"1", "2"}}}},
		{name: "allow ignores status and body", raw: `{"allowed":true,"http_status":404,"body":"x"}`, allowed: true, rich: richDecision{}},
		{name: "deny with status, headers and string body",
			raw:    `{"allowed":false,"http_status":403,"response_headers_to_add":{"WWW-Authenticate":"Bearer error=\"insufficient_scope\", scope=\"write\""},"body":"{\"error\":\"insufficient_scope\"}"}`,
			reason: "policy denied",
			rich: richDecision{status: 403, responseHeaders: http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope", scope="write"`}},
				body: []byte(`{"error":"insufficient_scope"}`), bodyType: "application/json"}},
		{name: "deny with text body", raw: `{"allowed":false,"http_status":404,"body":"not here"}`, reason: "policy denied",
			rich: richDecision{status: 404, body: []byte("not here"), bodyType: "text/plain; charset=utf-8"}},
		{name: "deny with object body", raw: `{"allowed":false,"body":{"error":"nope"}}`, reason: "policy denied",
			rich: richDecision{body: []byte(`{"error":"nope"}`), bodyType: "application/json"}},
		{name: "deny cannot carry 200", raw: `{"allowed":false,"http_status":200}`, reason: "policy denied",
			rich: richDecision{}, logs: "4xx or 5xx"},
		{name: "deny cannot carry 302", raw: `{"allowed":false,"http_status":302}`, reason: "policy denied",
			rich: richDecision{}, logs: "4xx or 5xx"},
		{name: "deny cannot carry 101", raw: `{"allowed":false,"http_status":101}`, reason: "policy denied",
			rich: richDecision{}, logs: "4xx or 5xx"},
		{name: "non-integer status", raw: `{"allowed":false,"http_status":"404"}`, reason: "policy denied",
			rich: richDecision{}, logs: "4xx or 5xx"},
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
			if d.Allowed != tc.allowed || d.Reason != tc.reason {
				t.Errorf("allowed %v reason %q, want %v %q", d.Allowed, d.Reason, tc.allowed, tc.reason)
			}
			if got := richOf(d); !reflect.DeepEqual(got, tc.rich) {
				t.Errorf("rich %+v, want %+v", got, tc.rich)
			}
			if d.Rich() != !reflect.DeepEqual(tc.rich, richDecision{}) {
				t.Errorf("Rich() = %v for %+v", d.Rich(), tc.rich)
			}
			if tc.logs == "" && logs.Len() > 0 || !strings.Contains(logs.String(), tc.logs) {
				t.Errorf("logs %q, want %q", logs.String(), tc.logs)
			}
		})
	}
}
