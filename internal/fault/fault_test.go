package fault

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// TestTable: the one table, kind by kind: the answer's status, the outcome
// the metrics and the access log count, the default error code and
// whether a WWW-Authenticate challenge goes with it.
func TestTable(t *testing.T) {
	for _, tc := range []struct {
		kind      Kind
		name      string
		status    int
		outcome   string
		code      string
		challenge bool
	}{
		{Internal, "internal", http.StatusInternalServerError, "error", "internal_error", false},
		{BadRequest, "bad_request", http.StatusBadRequest, "bad_request", "invalid_request", true},
		{NoToken, "no_token", http.StatusUnauthorized, "no_token", "unauthorized", true},
		{Unauthenticated, "unauthenticated", http.StatusUnauthorized, "invalid_token", "invalid_token", true},
		{Forbidden, "forbidden", http.StatusForbidden, "deny", "access_denied", false},
		{Unavailable, "unavailable", http.StatusServiceUnavailable, "unavailable", "temporarily_unavailable", false},
		{HeadersTooLarge, "headers_too_large", http.StatusRequestHeaderFieldsTooLarge, "bad_request", "request_header_fields_too_large", false},
		{Unroutable, "unroutable", http.StatusBadRequest, "bad_request", "invalid_request", false},
		{BadGateway, "bad_gateway", http.StatusBadGateway, "unavailable", "bad_gateway", false},
		{GatewayTimeout, "gateway_timeout", http.StatusGatewayTimeout, "unavailable", "gateway_timeout", false},
		{numKinds, "internal", http.StatusInternalServerError, "error", "internal_error", false}, // out of range: Internal's row
		{Kind(200), "internal", http.StatusInternalServerError, "error", "internal_error", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.kind
			if k.String() != tc.name || k.Status() != tc.status || k.Outcome() != tc.outcome || k.Challenges() != tc.challenge {
				t.Errorf("kind %d: %q %d %q challenge %v, want %q %d %q %v",
					k, k.String(), k.Status(), k.Outcome(), k.Challenges(), tc.name, tc.status, tc.outcome, tc.challenge)
			}
			if got := (&Error{Kind: k}).ErrorCode(); got != tc.code {
				t.Errorf("kind %v: default code %q, want %q", k, got, tc.code)
			}
			if got := (&Error{Kind: k, Code: "own_code"}).ErrorCode(); got != "own_code" {
				t.Errorf("kind %v: code %q, want the Error's own", k, got)
			}
		})
	}
	// Every kind has a row of its own.
	for k := range numKinds {
		if k != Internal && table[k].name == "" {
			t.Errorf("kind %d has no row", k)
		}
	}
}

func TestReason(t *testing.T) {
	cause := errors.New("opa: breaker open")
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{&Error{Kind: NoToken, Description: "a bearer token is required"}, "no bearer token"},
		{&Error{Kind: BadRequest, Code: "invalid_request", Description: "empty bearer token"}, "empty bearer token"},
		{&Error{Kind: Unauthenticated, Code: "invalid_token", Description: "token expired", Err: cause}, "token expired"},
		{&Error{Kind: Forbidden, Description: "denied by policy", Err: errors.New("policy decision undefined")}, "policy decision undefined"},
		{&Error{Kind: Forbidden, Description: "denied by policy"}, "denied by policy"},
		{&Error{Kind: Unavailable, Description: "opa unavailable", Err: cause}, "opa unavailable: opa: breaker open"},
		{&Error{Kind: Unavailable, Description: "authorization server rate limit reached"}, "authorization server rate limit reached"},
		{&Error{Kind: HeadersTooLarge, Description: "request headers too large"}, "request headers too large"},
	} {
		if got := tc.err.Reason(); got != tc.want {
			t.Errorf("%v: Reason %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	cause := errors.New("introspect: status 502")
	e := &Error{Kind: Unavailable, Code: "temporarily_unavailable", Description: "authorization server unavailable", Err: cause}
	if got, want := e.Error(), "unavailable temporarily_unavailable: authorization server unavailable: introspect: status 502"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (&Error{Kind: Forbidden}).Error(); got != "forbidden" {
		t.Errorf("Error() = %q, want forbidden", got)
	}
	wrapped := fmt.Errorf("check: %w", e)
	if !errors.Is(wrapped, cause) || KindOf(wrapped) != Unavailable || !Is(wrapped, Unavailable) || Is(wrapped, Internal) {
		t.Errorf("wrapped %v: kind %v", wrapped, KindOf(wrapped))
	}
	if KindOf(errors.New("boom")) != Internal || Is(nil, Internal) {
		t.Error("a plain error is Internal; nil is no kind")
	}
}

func TestQuotable(t *testing.T) {
	for in, want := range map[string]string{
		"token expired": "token expired", `say "hi"\`: "say hi", "a\r\nb\x7f\u00e9c": "abc", "": "",
	} {
		if got := Quotable(in); got != want {
			t.Errorf("Quotable(%q) = %q, want %q", in, got, want)
		}
	}
}
