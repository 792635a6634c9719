package dpop

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/authgate/authgate/internal/fault"
)

func TestPresentation(t *testing.T) {
	jkt := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	x5t := "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	for _, tc := range []struct {
		name   string
		scheme Scheme
		b      Binding
		mode   Mode
		ok     bool
	}{
		{"DPoP, bound", DPoP, Binding{JKT: jkt}, Allowed, true},
		{"DPoP, bound, required", DPoP, Binding{JKT: jkt}, Required, true},
		{"DPoP, unbound", DPoP, Binding{}, Allowed, false},
		{"DPoP, certificate-bound only", DPoP, Binding{X5tS256: x5t}, Allowed, false},
		{"Bearer, key-bound", Bearer, Binding{JKT: jkt}, Allowed, false},
		{"Bearer, key- and certificate-bound", Bearer, Binding{JKT: jkt, X5tS256: x5t}, Allowed, false},
		{"Bearer, unbound, allowed", Bearer, Binding{}, Allowed, true},
		{"Bearer, unbound, required", Bearer, Binding{}, Required, false},
		{"Bearer, certificate-bound, required", Bearer, Binding{X5tS256: x5t}, Required, true},
		{"no scheme", 0, Binding{}, Allowed, false},
	} {
		err := Presentation(tc.scheme, tc.b, tc.mode)
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v, want accepted", tc.name, err)
			}
			continue
		}
		var fe *fault.Error
		if !asFault(err, &fe) || fe.Kind != fault.Unauthenticated || fe.Code != CodeInvalidToken {
			t.Errorf("%s: %v, want 401 invalid_token", tc.name, err)
		}
	}
}

func asFault(err error, fe **fault.Error) bool {
	e, ok := err.(*fault.Error)
	*fe = e
	return ok
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": Allowed, "allowed": Allowed, "Required": Required, " required ": Required} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseMode("optional"); err == nil {
		t.Error("ParseMode(optional) accepted")
	}
}

func TestBindingOf(t *testing.T) {
	jkt := "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	for in, want := range map[string]Binding{
		``:                      {},
		`null`:                  {},
		`{}`:                    {},
		`{"jkt":"` + jkt + `"}`: {JKT: jkt},
		`{"x5t#S256":"` + jkt + `","kid":"other"}`:       {X5tS256: jkt},
		`{"jkt":"` + jkt + `","x5t#S256":"` + jkt + `"}`: {JKT: jkt, X5tS256: jkt},
	} {
		got, err := BindingOf(json.RawMessage(in))
		if err != nil || got != want {
			t.Errorf("BindingOf(%s) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{
		`"jkt"`, `[]`, `{"jkt":42}`, `{"jkt":""}`, `{"jkt":"short"}`, `{"jkt":"` + jkt + `="}`,
		`{"jkt":"` + jkt[:42] + `!"}`, `{"x5t#S256":null}`, `{"jkt":"` + jkt + `"`,
	} {
		if got, err := BindingOf(json.RawMessage(in)); err == nil {
			t.Errorf("BindingOf(%s) = %+v, want invalid_token", in, got)
		} else if fault.KindOf(err) != fault.Unauthenticated {
			t.Errorf("BindingOf(%s): %v, want Unauthenticated", in, err)
		}
	}
	// Both malformed: always refused for jkt, the first checked.
	for range 20 {
		var fe *fault.Error
		if _, err := BindingOf(json.RawMessage(`{"x5t#S256":1,"jkt":2}`)); !errors.As(err, &fe) || fe.Description != "token cnf claim has a malformed jkt" {
			t.Fatalf("BindingOf with both malformed: %v", err)
		}
	}
}
