package demoapi.jwtauthz_test

import data.demoapi.jwtauthz

# jwt returns an HS256 token carrying scp; the policy does not check the signature.
jwt(scp) := io.jwt.encode_sign(
	{"typ": "JWT", "alg": "HS256"},
	{"iss": "https://example.okta.com/oauth2/default", "sub": "alice", "scp": scp},
	{"kty": "oct", "k": "c2VjcmV0"},
)

hello(token) := {
	"method": "GET",
	"path": "/sayhello",
	"api": "/sayhello",
	"jwt": {"tokenValue": token},
}

test_allow_get_sayhello if {
	jwtauthz.allow with input as hello(jwt(["openid", "read_sayhello"]))
}

test_deny_wrong_method if {
	not jwtauthz.allow with input as object.union(hello(jwt(["read_sayhello"])), {"method": "DELETE"})
}

test_deny_wrong_path if {
	not jwtauthz.allow with input as object.union(hello(jwt(["read_sayhello"])), {"path": "/saysecret", "api": "/saysecret"})
}

test_deny_missing_scope if {
	not jwtauthz.allow with input as hello(jwt(["openid", "read_saysecret"]))
}

test_deny_scp_string if {
	not jwtauthz.allow with input as hello(jwt("read_sayhello"))
}

test_deny_missing_jwt if {
	not jwtauthz.allow with input as object.remove(hello(""), ["jwt"])
}

test_deny_missing_token_value if {
	not jwtauthz.allow with input as object.union(hello(""), {"jwt": {}})
}

test_deny_garbage_jwt if {
	not jwtauthz.allow with input as hello("not.a.jwt")
}

test_deny_empty_input if {
	not jwtauthz.allow with input as {}
}
