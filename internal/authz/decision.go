package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Decision is the policy's verdict on one request.
//
// A boolean result gives Allowed and ID only. An object result, in
// opa-envoy-plugin's shape, may add the rest:
//
//	{"allowed": true, "headers": {"X-Tenant": "acme"}}
//	{"allowed": false, "http_status": 404, "body": "{\"error\":\"not_found\"}",
//	 "response_headers_to_add": {"Content-Type": "application/json"}}
//
// allowed (or allow, as APISIX and Kong name it) must be a boolean; anything
// else denies, logged. Unknown members are ignored.
type Decision struct {
	Allowed bool
	ID      string // OPA's decision_id, when decision logging is on
	Reason  string // why a deny, for the access log: "policy denied", ...
	// Cached says the decision came from the decision cache: ID then names
	// the decision made for an earlier request.
	Cached bool

	Status          int         // on deny: the answer's status (4xx/5xx); 0 means 403
	Headers         http.Header // on allow: to the upstream (proxy) or in the 200 (verify)
	ResponseHeaders http.Header // to the client, on allow and on deny
	Body            []byte      // on deny: the answer's body
	BodyType        string      // Content-Type of Body when ResponseHeaders name none
}

// Rich reports whether the decision came from an object result, whose
// members shape the answer.
func (d *Decision) Rich() bool {
	return d.Status != 0 || d.Headers != nil || d.ResponseHeaders != nil || d.Body != nil
}

// Deny reasons, for the access log.
const (
	ReasonDenied     = "policy denied"
	ReasonUndefined  = "policy decision undefined"
	ReasonNotBoolean = "policy decision not a boolean"
	reasonNoAllowed  = "policy decision has no boolean allowed"
)

// objectResult is an object decision's members, read by their exact names:
// encoding/json's struct decoding folds case, and would read
// {"allowed": false, "ALLOWED": true} as allowed. Members are kept raw and
// read one by one.
type objectResult map[string]json.RawMessage

// allowed is the decision's allowed member, or allow when there is none.
func (o objectResult) allowed() json.RawMessage {
	if a, ok := o["allowed"]; ok {
		return a
	}
	return o["allow"]
}

// parseObject reads an object decision. A decision it cannot use denies:
// failing closed is the only safe reading of a policy that says something
// unexpected. Problems go to warn (the decider's, rate-limited: a policy that
// answers one badly answers every request so), never to the client.
func parseObject(raw []byte, warn func(msg string, args ...any)) Decision {
	var o objectResult
	if err := json.Unmarshal(raw, &o); err != nil {
		warn("opa decision object unreadable; denying", "err", err)
		return Decision{Reason: "policy decision unreadable"}
	}
	var d Decision
	switch string(o.allowed()) {
	case "true":
		d.Allowed = true
	case "false":
		d.Reason = ReasonDenied
	default:
		d.Reason = reasonNoAllowed // logged by the decider, rate-limited
	}
	var err error
	if d.Headers, err = parseHeaders(o["headers"]); err != nil {
		warn("opa decision: bad headers; denying", "err", err)
		return Decision{Reason: "policy decision has bad headers"}
	}
	if d.ResponseHeaders, err = parseHeaders(o["response_headers_to_add"]); err != nil {
		warn("opa decision: bad response_headers_to_add; denying", "err", err)
		return Decision{Reason: "policy decision has bad response_headers_to_add"}
	}
	if d.Allowed {
		return d // http_status and body shape a deny only
	}
	if st := o["http_status"]; len(st) > 0 && string(st) != "null" {
		s, err := strconv.Atoi(string(st))
		if err != nil || s < 400 || s > 599 {
			warn("opa decision: a deny must have a 4xx or 5xx http_status; answering 403", "http_status", string(st))
		} else {
			d.Status = s
		}
	}
	switch b := bytes.TrimSpace(o["body"]); {
	case len(b) == 0 || string(b) == "null":
	case b[0] == '"':
		var s string
		if json.Unmarshal(b, &s) != nil {
			warn("opa decision: body unreadable; ignored")
			break
		}
		d.Body = []byte(s)
		d.BodyType = "text/plain; charset=utf-8"
		if t := strings.TrimSpace(s); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
			d.BodyType = "application/json"
		}
	default: // an object, array, number: sent as the JSON it is
		d.Body = append([]byte(nil), b...)
		d.BodyType = "application/json"
	}
	return d
}

// headerValues is one header's value(s): a string or an array of strings.
type headerValues []string

func (v *headerValues) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, (*[]string)(v))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("a header value must be a string or an array of strings")
	}
	*v = headerValues{s}
	return nil
}

// parseHeaders reads {"Name": "value" | ["v1", "v2"]}, or an array of such
// objects (opa-envoy-plugin's form for repeated headers).
func parseHeaders(raw json.RawMessage) (http.Header, error) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || string(b) == "null" {
		return nil, nil
	}
	var sets []map[string]headerValues
	if b[0] == '[' {
		if err := json.Unmarshal(b, &sets); err != nil {
			return nil, err
		}
	} else {
		var one map[string]headerValues
		if err := json.Unmarshal(b, &one); err != nil {
			return nil, err
		}
		sets = append(sets, one)
	}
	h := http.Header{}
	for _, set := range sets {
		for name, vals := range set {
			if !httpguts.ValidHeaderFieldName(name) {
				return nil, fmt.Errorf("%q is not a header name", name)
			}
			if policyForbidden[strings.ToLower(name)] {
				return nil, fmt.Errorf("%q cannot be set by a policy", name)
			}
			for _, v := range vals {
				if strings.ContainsAny(v, "\r\n\x00") {
					return nil, fmt.Errorf("value of %q has a line break or NUL", name)
				}
				h.Add(name, v)
			}
		}
	}
	return h, nil
}

// policyForbidden are headers that HTTP framing or the connection own.
var policyForbidden = map[string]bool{
	"connection": true, "content-length": true, "transfer-encoding": true, "upgrade": true,
	"te": true, "trailer": true, "keep-alive": true, "proxy-connection": true, "host": true,
	"http2-settings": true, // h2c's: never to the upstream (the gateway's upgrade screen)
}
