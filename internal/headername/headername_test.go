package headername

import "testing"

func TestIs(t *testing.T) {
	for _, tc := range []struct {
		name, lower string
		is, prefix  bool
	}{
		{"X-Forwarded-Host", "x-forwarded-host", true, true},
		{"x_FORWARDED_host", "x-forwarded-host", true, true},
		{"X-Forwarded-Hosts", "x-forwarded-host", false, true},
		{"X-Forwarded", "x-forwarded-host", false, false},
		{"X-Forwardedxhost", "x-forwarded-host", false, false},
		{"", "", true, true},
	} {
		if got := Is(tc.name, tc.lower); got != tc.is {
			t.Errorf("Is(%q, %q) = %v", tc.name, tc.lower, got)
		}
		if got := HasPrefix(tc.name, tc.lower); got != tc.prefix {
			t.Errorf("HasPrefix(%q, %q) = %v", tc.name, tc.lower, got)
		}
	}
}
