# Package demoapi.jwtauthz is the original service's policy for Okta JWT access
# tokens: it reads the scopes from the token's scp claim (an array) rather than
# from the introspection response. It needs authgate to forward the raw token
# as input.jwt.tokenValue, which the operator must enable.
#
# Decision: POST /v1/data/demoapi/jwtauthz/allow
package demoapi.jwtauthz

default allow := false

# io.jwt.decode does not verify the signature or expiry: authenticity comes from
# introspection, which authgate has done before asking OPA. A missing or
# malformed token leaves allow undefined, so the default denies.
allow if {
	input.method == "GET"
	input.api == "/sayhello"
	[_, claims, _] := io.jwt.decode(input.jwt.tokenValue)
	"read_sayhello" in claims.scp
}
