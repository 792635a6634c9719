# Package gateway.authz is an example policy for authgate in front of a whole
# service: reverse proxy mode (UPSTREAM_URL) or forward-auth (/verify, behind
# nginx, Traefik or Envoy). authgate has already introspected the bearer
# token and only asks when it is active; input.path is the cleaned path, the
# same one the upstream gets.
#
# It answers with an object in opa-envoy-plugin's shape rather than a
# boolean, so that a deny can say why and an allow can tell the upstream
# something:
#   allowed                  bool, required
#   headers                  to the upstream on allow (forward-auth: in the 200)
#   response_headers_to_add  to the client
#   http_status, body        shape a deny (4xx or 5xx only)
#
# Decision: POST /v1/data/gateway/authz/decision
package gateway.authz

# Reads need the scope api_read, writes api_write.
required_scope := "api_read" if input.method in {"GET", "HEAD"}

required_scope := "api_write" if input.method in {"POST", "PUT", "PATCH", "DELETE"}

in_api if startswith(input.path, "/api/")

# /api/internal is hidden: callers get 404, as if it did not exist.
hidden if input.path == "/api/internal"

hidden if startswith(input.path, "/api/internal/")

default decision := {"allowed": false}

decision := {
	"allowed": true,
	"headers": {"X-Authz-Scope": required_scope},
} if {
	in_api
	not hidden
	required_scope in input.scopes
}

# A missing scope is RFC 6750's insufficient_scope: 403 with a challenge
# naming the scope the request needs.
decision := {
	"allowed": false,
	"http_status": 403,
	"response_headers_to_add": {"WWW-Authenticate": sprintf(`Bearer realm="authgate", error="insufficient_scope", scope="%s"`, [scope])},
	"body": json.marshal({
		"error": "insufficient_scope",
		"error_description": sprintf("this request needs the scope %s", [scope]),
	}),
} if {
	in_api
	not hidden
	scope := required_scope
	not scope in input.scopes
}

decision := {
	"allowed": false,
	"http_status": 404,
	"body": `{"error":"not_found"}`,
} if hidden
