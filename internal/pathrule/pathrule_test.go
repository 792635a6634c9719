package pathrule

import (
	"reflect"
	"testing"
)

func mustParse(t *testing.T, list ...string) []Rule {
	t.Helper()
	rules, errs := ParseList(list)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return rules
}

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Rule
		wantErr string
	}{
		{in: "/health", want: Rule{Path: "/health"}},
		{in: " GET  /health ", want: Rule{Method: "GET", Path: "/health"}},
		{in: "OPTIONS /*", want: Rule{Method: "OPTIONS", Path: "/", Prefix: true}},
		{in: "/static/*", want: Rule{Path: "/static/", Prefix: true}},
		{in: "get /x", wantErr: `"get /x": method must be upper-case letters, e.g. GET`},
		{in: "GET /x y", wantErr: `"GET /x y": want [METHOD ]PATH, e.g. "GET /health" or "OPTIONS /*"`},
		{in: "x", wantErr: `"x": path must start with /`},
		{in: "/a*", wantErr: `"/a*": path may hold * only as a final /*, and no %, \, ? or #`},
		{in: "/a%2F", wantErr: `"/a%2F": path may hold * only as a final /*, and no %, \, ? or #`},
		{in: "/a//b", wantErr: `"/a//b": path must not contain //`},
		{in: "/a/../b", wantErr: `"/a/../b": path must not contain . or .. segments`},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		switch {
		case tt.wantErr != "":
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Parse(%q) error %v, want %s", tt.in, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("Parse(%q): %v", tt.in, err)
		case got != tt.want:
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	rules, errs := ParseList([]string{"/a", " ", "", "bad", "GET /b/*"})
	if want := []Rule{{Path: "/a"}, {Method: "GET", Path: "/b/", Prefix: true}}; !reflect.DeepEqual(rules, want) || len(errs) != 1 {
		t.Errorf("ParseList = %+v, %v; want %+v and one error", rules, errs, want)
	}
}

type matchCase struct {
	method, path string
	want         bool
}

// TestExact: PUBLIC_PATHS remove checking, so they match only what the
// operator wrote: exact method (GET covers HEAD), exact case-sensitive
// path, a prefix rule only below its slash.
func TestExact(t *testing.T) {
	m := Exact(mustParse(t, "GET /health", "OPTIONS /*", "/static/*", "/api/pay"))
	for _, tc := range []matchCase{
		{"GET", "/health", true},
		{"HEAD", "/health", true},
		{"POST", "/health", false},
		{"get", "/health", false},
		{"GET", "/health/", false},
		{"GET", "/Health", false},
		{"GET", "/health/x", false},
		{"GET", "/healthz", false},
		{"OPTIONS", "/anything/at/all", true},
		{"DELETE", "/static/a.css", true},
		{"GET", "/static/", true},
		{"GET", "/static", false},
		{"GET", "/STATIC/a.css", false},
		{"GET", "/staticx", false},
		{"GET", "/api/pay", true},
		{"GET", "/api/Pay", false},
		{"GET", "/api/pay/", false},
	} {
		if got := m.Match(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

// TestGenerous: INTROSPECT_PATHS add checking, so they match every
// spelling an upstream could read as the rule. Each "bypass" row was not
// introspected by the exact matching that INTROSPECT_PATHS once shared
// with PUBLIC_PATHS: a JWT revoked at the IdP reached the upstream there.
func TestGenerous(t *testing.T) {
	m := Generous(mustParse(t, "/api/pay", "/api/admin/*", "DELETE /x", "GET /reports/", "POST /"))
	for _, tc := range []matchCase{
		{"GET", "/api/pay", true},
		{"POST", "/api/pay", true},
		{"GET", "/api/pay/", true},   // bypass: trailing slash
		{"GET", "/api/Pay", true},    // bypass: case
		{"GET", "/API/PAY/", true},   // bypass: both
		{"GET", "/api/admin", true},  // bypass: P/* covers P
		{"GET", "/api/Admin", true},  // bypass
		{"GET", "/api/admin/", true}, // below the slash, as before
		{"GET", "/api/admin/users", true},
		{"GET", "/api/ADMIN/users/7", true}, // bypass
		{"DELETE", "/x", true},
		{"delete", "/x", true},  // bypass: a method the upstream may fold
		{"Delete", "/X/", true}, // bypass
		{"GET", "/x", false},
		{"GET", "/reports", true},
		{"HEAD", "/Reports/", true},
		{"POST", "/reports", false},
		{"POST", "/", true},
		{"POST", "/a", false},
		{"GET", "/api/payments", false},
		{"GET", "/api/pa", false},
		{"GET", "/api/pay/x", false},
		{"GET", "/api/administrator", false},
		{"GET", "/api", false},
		{"GET", "/", false},
	} {
		if got := m.Match(tc.method, tc.path); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
	if all := Generous(mustParse(t, "PUT /*")); !all.Match("put", "/") || !all.Match("PUT", "/a/B/") || all.Match("GET", "/a") {
		t.Error(`"PUT /*" does not cover every path of PUT, and only those`)
	}
	var none *Matcher
	if none.Match("GET", "/") || Generous(nil).Match("GET", "/") || Exact(nil).Match("GET", "/") {
		t.Error("an empty matcher matched")
	}
}

func BenchmarkGenerous(b *testing.B) {
	rules, _ := ParseList([]string{"/api/pay", "/api/admin/*", "DELETE /x", "GET /reports/"})
	m := Generous(rules)
	b.ReportAllocs()
	for b.Loop() {
		m.Match("GET", "/api/Admin/users/7")
	}
}
