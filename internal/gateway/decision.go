package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/authgate/authgate/internal/authn"
	"github.com/authgate/authgate/internal/fault"
)

// Rich decisions. Besides a boolean, a decision may be an object in
// opa-envoy-plugin's shape:
//
//	{"allowed": true, "headers": {"X-Tenant": "acme"}}
//	{"allowed": false, "http_status": 404, "body": "{\"error\":\"not_found\"}",
//	 "response_headers_to_add": {"Content-Type": "application/json"}}
//
// allowed (or allow, as APISIX and Kong name it) must be a boolean; anything
// else denies, logged. Unknown members are ignored. A boolean result never
// reaches this file: it stays on pkg/opa's no-decode path.

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

// richDecision is what an object decision adds to allow or deny.
type richDecision struct {
	status          int         // on deny: the answer's status (4xx/5xx); 0 means 403
	headers         http.Header // on allow: to the upstream (proxy) or in the 200 (verify)
	responseHeaders http.Header // to the client, on allow and on deny
	body            []byte      // on deny: the answer's body
	bodyType        string      // Content-Type of body when the policy named none
}

// reasonNoAllowed is the deny reason of an object without a boolean allowed.
const reasonNoAllowed = "policy decision has no boolean allowed"

// parseObject reads an object decision. A decision it cannot use denies:
// failing closed is the only safe reading of a policy that says something
// unexpected. Problems go to warn (the decider's, rate-limited: a policy that
// answers one badly answers every request so), never to the client.
func parseObject(raw []byte, warn func(msg string, args ...any)) decision {
	var o objectResult
	if err := json.Unmarshal(raw, &o); err != nil {
		warn("opa decision object unreadable; denying", "err", err)
		return decision{reason: "policy decision unreadable"}
	}
	d := decision{rich: &richDecision{}}
	switch string(o.allowed()) {
	case "true":
		d.allowed = true
	case "false":
		d.reason = "policy denied"
	default:
		d.reason = reasonNoAllowed // logged by the decider, rate-limited
	}
	var err error
	if d.rich.headers, err = parseHeaders(o["headers"]); err != nil {
		warn("opa decision: bad headers; denying", "err", err)
		return decision{reason: "policy decision has bad headers"}
	}
	if d.rich.responseHeaders, err = parseHeaders(o["response_headers_to_add"]); err != nil {
		warn("opa decision: bad response_headers_to_add; denying", "err", err)
		return decision{reason: "policy decision has bad response_headers_to_add"}
	}
	if d.allowed {
		return d // http_status and body shape a deny only
	}
	if st := o["http_status"]; len(st) > 0 && string(st) != "null" {
		s, err := strconv.Atoi(string(st))
		if err != nil || s < 400 || s > 599 {
			warn("opa decision: a deny must have a 4xx or 5xx http_status; answering 403", "http_status", string(st))
		} else {
			d.rich.status = s
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
		d.rich.body = []byte(s)
		d.rich.bodyType = "text/plain; charset=utf-8"
		if t := strings.TrimSpace(s); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
			d.rich.bodyType = echo.MIMEApplicationJSON
		}
	default: // an object, array, number: sent as the JSON it is
		d.rich.body = append([]byte(nil), b...)
		d.rich.bodyType = echo.MIMEApplicationJSON
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
			if !validHeaderName(name) {
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
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// policyAnswer is a deny shaped by an object decision. It wraps the usual
// Forbidden fault, so failure classification (logs, metrics) is unchanged;
// the error handler writes it as the policy asked.
type policyAnswer struct {
	denied *fault.Error
	rich   *richDecision
}

func (p *policyAnswer) Error() string { return p.denied.Error() }
func (p *policyAnswer) Unwrap() error { return p.denied }

// write sends the policy's answer: its status (403 by default), its
// headers, and its body or, without one, the usual JSON error body. A 401
// or 403 challenge names the resource metadata (resourceMetadata, when set).
func (p *policyAnswer) write(c echo.Context, resourceMetadata string) error {
	status := p.rich.status
	if status == 0 {
		status = http.StatusForbidden
	}
	h := c.Response().Header()
	addHeaders(h, p.rich.responseHeaders)
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", challenge(&fault.Error{}, resourceMetadata))
	}
	if resourceMetadata != "" && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
		addResourceMetadata(h, resourceMetadata)
	}
	if c.Request().Method == http.MethodHead {
		return c.NoContent(status)
	}
	if p.rich.body == nil {
		body := errorBody{Error: p.denied.Code, ErrorDescription: p.denied.Description}
		if status != http.StatusForbidden {
			body = errorBody{Error: strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))}
		}
		return c.JSON(status, body)
	}
	ct := h.Get(echo.HeaderContentType)
	if ct == "" {
		ct = p.rich.bodyType
	}
	return c.Blob(status, ct, p.rich.body)
}

// addHeaders adds every value of from to h.
func addHeaders(h, from http.Header) {
	for k, vs := range from {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
}

// grant is what an allowed request carries to its handler.
type grant struct {
	token    *authn.Token
	decision decision
}

// grantOf returns the request's grant, or nil when it was not checked (a
// public path). It lives in the pooled record: no allocation per request.
func grantOf(c echo.Context) *grant {
	if rec := recordOf(c); rec.granted {
		return &rec.grant
	}
	return nil
}

// IdentityHeaders name the headers that carry the caller's identity to the
// upstream (proxy mode) or back to the proxy (forward-auth).
type IdentityHeaders struct {
	Subject, ClientID, Scopes string
}

// set writes the token's identity into h, replacing any value.
func (ih IdentityHeaders) set(h http.Header, t *authn.Token) {
	setOrDel(h, ih.Subject, t.Subject)
	setOrDel(h, ih.ClientID, t.ClientID)
	setOrDel(h, ih.Scopes, t.Scope)
}

// setAll writes all three identity headers into h, empty ones included:
// some proxies copy only the headers present in the answer (Envoy's
// allowed_upstream_headers), and would otherwise let a client's own copy of
// an absent one through.
func (ih IdentityHeaders) setAll(h http.Header, t *authn.Token) {
	for _, p := range [][2]string{{ih.Subject, t.Subject}, {ih.ClientID, t.ClientID}, {ih.Scopes, t.Scope}} {
		if p[0] != "" {
			h.Set(p[0], p[1])
		}
	}
}

// strip removes the identity headers from h: a client must never send them.
// Spellings with "_" for "-" go too, since CGI-style frameworks read
// X_Auth_Subject and X-Auth-Subject as the same variable.
func (ih IdentityHeaders) strip(h http.Header) {
	for k := range h {
		if ih.named(k) {
			delete(h, k)
		}
	}
}

// named reports whether k is one of the identity headers' names, comparing
// case-insensitively and with "_" read as "-" on both sides (a configured
// name may itself have an underscore). ReplaceAll copies only a name that has
// an underscore.
func (ih IdentityHeaders) named(k string) bool {
	k = strings.ReplaceAll(k, "_", "-")
	for _, n := range [...]string{ih.Subject, ih.ClientID, ih.Scopes} {
		if n != "" && strings.EqualFold(k, strings.ReplaceAll(n, "_", "-")) {
			return true
		}
	}
	return false
}

func setOrDel(h http.Header, name, val string) {
	switch {
	case name == "":
	case val == "":
		h.Del(name)
	default:
		h.Set(name, val)
	}
}
