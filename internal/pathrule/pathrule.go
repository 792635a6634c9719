// Package pathrule reads and matches the "[METHOD ]PATH" rules of
// PUBLIC_PATHS and INTROSPECT_PATHS against a request's method and cleaned
// path.
//
// The two lists do opposite things, so they match differently. A rule that
// removes checking (PUBLIC_PATHS) matches exactly: a request the operator
// did not write down is checked. A rule that adds checking
// (INTROSPECT_PATHS) matches generously: the upstream may read /api/Pay,
// /api/pay/ or "delete" as the /api/pay or DELETE the operator wrote (many
// routers fold case or ignore a trailing slash), so the rule must cover
// every spelling the upstream could take for it, or a revoked token gets
// through by the spelling the rule missed.
package pathrule

import (
	"fmt"
	"net/http"
	"strings"
)

// Rule is one "[METHOD ]PATH" rule.
type Rule struct {
	// Method is an HTTP method (upper-case letters), or "" for any method.
	Method string
	// Path is the exact path, or the prefix (ending in "/") when Prefix is
	// set: "/static/*" is Path "/static/", Prefix true.
	Path   string
	Prefix bool
}

// Parse parses "[METHOD ]PATH", where PATH is an exact path ("/health") or
// a prefix ending in "/*" ("/static/*", "/*"). Paths are matched against
// the cleaned path, so they must be clean themselves: no "//", no "." or
// ".." segments, no percent-encoding.
func Parse(s string) (Rule, error) {
	var r Rule
	fields := strings.Fields(s)
	switch len(fields) {
	case 1:
		r.Path = fields[0]
	case 2:
		r.Method, r.Path = fields[0], fields[1]
		for _, c := range r.Method {
			if c < 'A' || c > 'Z' {
				return r, fmt.Errorf("%q: method must be upper-case letters, e.g. GET", s)
			}
		}
	default:
		return r, fmt.Errorf("%q: want [METHOD ]PATH, e.g. \"GET /health\" or \"OPTIONS /*\"", s)
	}
	if strings.HasSuffix(r.Path, "/*") {
		r.Path, r.Prefix = r.Path[:len(r.Path)-1], true
	}
	switch {
	case !strings.HasPrefix(r.Path, "/"):
		return r, fmt.Errorf("%q: path must start with /", s)
	case strings.ContainsAny(r.Path, "*%\\?#"):
		return r, fmt.Errorf("%q: path may hold * only as a final /*, and no %%, \\, ? or #", s)
	case strings.Contains(r.Path, "//"):
		return r, fmt.Errorf("%q: path must not contain //", s)
	}
	for _, seg := range strings.Split(r.Path, "/") {
		if seg == "." || seg == ".." {
			return r, fmt.Errorf("%q: path must not contain . or .. segments", s)
		}
	}
	return r, nil
}

// ParseList parses a list of rules, blanks skipped, and returns every
// error, each naming its rule.
func ParseList(list []string) ([]Rule, []error) {
	var rules []Rule
	var errs []error
	for _, s := range list {
		if strings.TrimSpace(s) == "" {
			continue
		}
		r, err := Parse(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
	return rules, errs
}

// Matcher matches requests against a list of rules, exactly or generously
// (see the package comment). Built once, at startup; Match does not
// allocate. The zero Matcher matches nothing.
type Matcher struct {
	rules    []Rule
	generous bool
}

// Exact matches like PUBLIC_PATHS, a list that removes checking: a rule's
// method exactly ("GET" also covers HEAD), its path exactly and
// case-sensitively, a prefix rule "P/*" only below "P/" (not "P" itself).
func Exact(rules []Rule) *Matcher {
	return &Matcher{rules: rules}
}

// Generous matches like INTROSPECT_PATHS, a list that adds checking, every
// spelling an upstream could read as the rule: method and path with ASCII
// case folding ("delete", "/API/Pay"), a path with or without a trailing
// slash ("/api/pay" and "/api/pay/" alike), and a prefix rule "P/*" covers
// "P" itself. "GET" also covers HEAD.
func Generous(rules []Rule) *Matcher {
	m := &Matcher{generous: true}
	for _, r := range rules {
		// Stored lower-case, without the trailing slash: "/api/admin/*" is
		// Path "/api/admin", "/*" is Path "" (everything).
		r.Method = strings.ToUpper(r.Method)
		r.Path = strings.TrimRight(strings.ToLower(r.Path), "/")
		if r.Path == "" && !r.Prefix {
			r.Path = "/"
		}
		m.rules = append(m.rules, r)
	}
	return m
}

// Match reports whether a request for method and path (the cleaned path)
// matches one of the rules.
func (m *Matcher) Match(method, path string) bool {
	if m == nil {
		return false
	}
	if m.generous {
		return m.matchGenerous(method, path)
	}
	for _, r := range m.rules {
		if r.Method != "" && r.Method != method && (r.Method != http.MethodGet || method != http.MethodHead) {
			continue
		}
		if r.Prefix && strings.HasPrefix(path, r.Path) || !r.Prefix && path == r.Path {
			return true
		}
	}
	return false
}

func (m *Matcher) matchGenerous(method, path string) bool {
	if len(path) > 1 {
		path = strings.TrimRight(path, "/")
		if path == "" {
			path = "/"
		}
	}
	for _, r := range m.rules {
		if r.Method != "" && !equalFold(method, r.Method) && (r.Method != http.MethodGet || !equalFold(method, http.MethodHead)) {
			continue
		}
		switch {
		case !r.Prefix:
			if equalFold(path, r.Path) {
				return true
			}
		case r.Path == "": // "/*"
			return true
		case len(path) == len(r.Path):
			if equalFold(path, r.Path) {
				return true
			}
		case len(path) > len(r.Path):
			if path[len(r.Path)] == '/' && equalFold(path[:len(r.Path)], r.Path) {
				return true
			}
		}
	}
	return false
}

// equalFold reports whether s and t are equal under ASCII case folding, as
// case-insensitive routers compare paths (Express, ASP.NET's route
// templates for ASCII). Not Unicode folding (strings.EqualFold): it would
// read "/ſecret" as "/secret", whose lengths differ, so a prefix could no
// longer be compared byte for byte.
func equalFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != lower(t[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
