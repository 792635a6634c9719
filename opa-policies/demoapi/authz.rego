# Package demoapi.authz decides whether authgate lets a request through to the
# demo API. authgate has already introspected the bearer token (RFC 7662) and
# only asks when it is active; input.scopes is the token's scope split on spaces.
#
# Decision: POST /v1/data/demoapi/authz/allow
package demoapi.authz

default allow := false

# Only GET /sayhello is allowed. /saysecret stays denied whatever the scopes, so
# the demo shows a 403.
allow if {
	input.method == "GET"
	input.path == "/sayhello"
	"read_sayhello" in input.scopes
}
