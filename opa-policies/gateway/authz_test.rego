package gateway.authz_test

import data.gateway.authz

# read is the input authgate sends in proxy mode for GET /api/items with a
# token holding api_read.
read := {
	"method": "GET",
	"path": "/api/items",
	"api": "/api/items",
	"host": "api.example",
	"scheme": "https",
	"remote_addr": "198.51.100.7",
	"mode": "proxy",
	"query": {},
	"headers": {"accept": "application/json"},
	"token": {"active": true, "scope": "api_read", "client_id": "svc", "sub": "alice"},
	"scopes": ["api_read"],
	"subject": "alice",
}

test_read_allowed_with_header_to_upstream if {
	authz.decision == {"allowed": true, "headers": {"X-Authz-Scope": "api_read"}} with input as read
}

test_head_is_a_read if {
	authz.decision.allowed with input as object.union(read, {"method": "HEAD"})
}

test_write_needs_api_write if {
	d := authz.decision with input as object.union(read, {"method": "POST"})
	d.allowed == false
	d.http_status == 403
	d.response_headers_to_add["WWW-Authenticate"] == `Bearer realm="authgate", error="insufficient_scope", scope="api_write"`
	json.unmarshal(d.body).error == "insufficient_scope"
}

test_write_allowed_with_api_write if {
	authz.decision.allowed with input as object.union(read, {"method": "DELETE", "scopes": ["api_write"]})
}

test_internal_is_hidden if {
	d := authz.decision with input as object.union(read, {"path": "/api/internal/keys", "scopes": ["api_read", "api_write"]})
	d.allowed == false
	d.http_status == 404
}

test_internal_root_is_hidden if {
	authz.decision.http_status == 404 with input as object.union(read, {"path": "/api/internal"})
}

test_outside_api_denied if {
	authz.decision == {"allowed": false} with input as object.union(read, {"path": "/admin"})
}

test_other_method_denied if {
	authz.decision == {"allowed": false} with input as object.union(read, {"method": "OPTIONS"})
}

test_same_in_verify_mode if {
	authz.decision.allowed with input as object.union(read, {"mode": "verify"})
}
