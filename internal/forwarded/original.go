package forwarded

import (
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/authgate/authgate/internal/fault"
)

// Request is the original request a forward-auth proxy asks about, as the
// proxy wrote it: RawPath is still percent-encoded and not yet cleaned.
type Request struct {
	Method, RawPath, RawQuery string
}

// Original reads the original request from a forward-auth call req, whose
// raw path (its request target as sent, up to the query) is rawPath and
// whose endpoint is prefix ("/verify"):
//
//   - Envoy (a path under prefix/, from ext_authz's path_prefix): the call's
//     own method, and its path after prefix and query.
//   - Traefik and nginx (exactly prefix): method from X-Forwarded-Method
//     (Traefik) or X-Original-Method (nginx convention), else the call's
//     own; URI from X-Forwarded-Uri (Traefik) or X-Original-URI (nginx),
//     required.
//
// Ambiguity is refused (400), never resolved by precedence: a proxy passes
// the client's other headers on (nginx a client's X-Forwarded-Uri, Traefik
// a client's X-Original-URI), so whichever header won would let a client
// choose the request that gets decided. Hence: both conventions present
// with different values, a header given twice, or such headers on an
// Envoy-style path. The method is taken as is (methods are
// case-sensitive). Errors are *fault.Error of kind BadRequest.
func Original(req *http.Request, rawPath, prefix string) (Request, error) {
	method, err := value(req.Header, "X-Forwarded-Method", "X-Original-Method")
	if err != nil {
		return Request{}, err
	}
	uri, err := value(req.Header, "X-Forwarded-Uri", "X-Original-Uri")
	if err != nil {
		return Request{}, err
	}
	var r Request
	if rest, envoy := strings.CutPrefix(rawPath, prefix+"/"); envoy {
		if method != "" || uri != "" {
			return Request{}, errAmbiguous("X-Forwarded-* or X-Original-* request headers on an Envoy-style " + prefix + "/ path")
		}
		r.RawPath, r.RawQuery = "/"+rest, req.URL.RawQuery
	} else if uri != "" {
		if !strings.HasPrefix(uri, "/") {
			return Request{}, errBadURI("original URI must start with /")
		}
		r.RawPath, r.RawQuery, _ = strings.Cut(uri, "?")
		if strings.ContainsFunc(r.RawQuery, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return Request{}, errBadURI("original URI malformed")
		}
	} else {
		return Request{}, &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "no original URI: send X-Forwarded-Uri or X-Original-URI, or ask " + prefix + "/{path}"}
	}
	r.Method = method
	if r.Method == "" {
		r.Method = req.Method
	}
	if !httpguts.ValidHeaderFieldName(r.Method) { // a method is a token, like a header name
		return Request{}, &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "original method malformed"}
	}
	return r, nil
}

// value returns the value of whichever of the two headers is set, "" when
// neither is. Two different values, or a header given twice, is an error.
func value(h http.Header, traefik, nginx string) (string, error) {
	a, b := h[traefik], h[nginx]
	if len(a) > 1 || len(b) > 1 {
		return "", errAmbiguous("a header describing the original request given twice")
	}
	var va, vb string
	if len(a) == 1 {
		va = strings.TrimSpace(a[0])
	}
	if len(b) == 1 {
		vb = strings.TrimSpace(b[0])
	}
	if va != "" && vb != "" && va != vb {
		return "", errAmbiguous(traefik + " and " + nginx + " disagree")
	}
	if va != "" {
		return va, nil
	}
	return vb, nil
}

func errAmbiguous(why string) error {
	return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "original request ambiguous: " + why}
}

// errBadURI has the wording of the gateway's path errors.
func errBadURI(why string) error {
	return &fault.Error{Kind: fault.BadRequest, Code: "invalid_request", Description: "path not accepted: " + why}
}
