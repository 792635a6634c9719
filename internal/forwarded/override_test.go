package forwarded

import (
	"net/http"
	"slices"
	"testing"
)

// TestOverriddenMethods: every spelling frameworks read (any case, "_" for
// "-"), comma-separated lists, and nothing from other headers.
func TestOverriddenMethods(t *testing.T) {
	for _, n := range []string{"X-HTTP-Method-Override", "x-http-method", "X_Method_Override", "X-METHOD-OVERRIDE"} {
		if !IsMethodOverride(n) {
			t.Errorf("IsMethodOverride(%q) false", n)
		}
	}
	for _, n := range []string{"X-HTTP-Method-Overrides", "X-Method", "Method", ""} {
		if IsMethodOverride(n) {
			t.Errorf("IsMethodOverride(%q) true", n)
		}
	}
	h := http.Header{"X-Http-Method-Override": {"PUT, DELETE"}, "X_method_override": {"PATCH"}, "X-Other": {"GET"}}
	got := slices.Sorted(OverriddenMethods(h))
	if want := []string{"DELETE", "PATCH", "PUT"}; !slices.Equal(got, want) {
		t.Errorf("OverriddenMethods = %q, want %q", got, want)
	}
}
