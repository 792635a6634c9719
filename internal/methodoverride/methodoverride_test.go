package methodoverride

import (
	"net/http"
	"slices"
	"testing"
)

func TestIs(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Http-Method-Override": true, "X_HTTP_Method": true, "x-method-override": true,
		"X-Http-Method-Overrides": false, "X-Method": false, "": false,
	} {
		if got := Is(name); got != want {
			t.Errorf("Is(%q) = %v", name, got)
		}
	}
}

func TestMethods(t *testing.T) {
	h := http.Header{"X-Http-Method": {"DELETE, put"}, "X_method_override": {"PATCH"}, "Accept": {"GET"}}
	got := slices.Sorted(Methods(h))
	if want := []string{"DELETE", "PATCH", "put"}; !slices.Equal(got, want) {
		t.Errorf("Methods = %q, want %q", got, want)
	}
}
