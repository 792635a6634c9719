package demoapi.authz_test

import data.demoapi.authz

# hello is the input authgate sends for GET /sayhello with a token holding read_sayhello.
hello := {
	"method": "GET",
	"path": "/sayhello",
	"api": "/sayhello",
	"query": {},
	"headers": {"accept": "application/json"},
	"token": {
		"active": true,
		"scope": "openid read_sayhello",
		"client_id": "demo-client",
		"sub": "alice",
	},
	"scopes": ["openid", "read_sayhello"],
	"subject": "alice",
}

test_allow_get_sayhello if {
	authz.allow with input as hello
}

test_deny_wrong_method if {
	not authz.allow with input as object.union(hello, {"method": "POST"})
}

test_deny_wrong_path if {
	not authz.allow with input as object.union(hello, {"path": "/other", "api": "/other"})
}

test_deny_saysecret_even_with_scope if {
	not authz.allow with input as object.union(hello, {
		"path": "/saysecret",
		"api": "/saysecret",
		"scopes": ["read_sayhello", "read_saysecret"],
	})
}

test_deny_missing_scope if {
	not authz.allow with input as object.union(hello, {"scopes": ["openid"]})
}

test_deny_no_scopes if {
	not authz.allow with input as object.remove(hello, ["scopes"])
}

test_deny_empty_input if {
	not authz.allow with input as {}
}
