// Package methodoverride knows the headers by which frameworks let a client
// override the request's method (X-HTTP-Method-Override and its kin): a
// POST carrying "DELETE" may reach an upstream as a DELETE.
package methodoverride

import (
	"iter"
	"net/http"
	"strings"
)

// names are the headers by which frameworks let a client
// override the request's method (Rails, Laravel, Symfony, ASP.NET, Express's
// method-override, Google's APIs...), lower-case with "-".
var names = [...]string{"x-http-method-override", "x-http-method", "x-method-override"}

// Is reports whether name is one of the method-override headers, in any
// case and with "_" read as "-" (CGI-style frameworks read X_HTTP_Method
// as X-HTTP-Method).
func Is(name string) bool {
	for _, n := range names {
		if len(name) == len(n) && equalFoldDash(name, n) {
			return true
		}
	}
	return false
}

// equalFoldDash reports whether name equals lower (lower-case ASCII, same
// length), ignoring ASCII case and reading "_" in name as "-".
func equalFoldDash(name, lower string) bool {
	for i := 0; i < len(lower); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// Methods yields each method h's method-override headers name
// (a value may list several, comma-separated), as written.
func Methods(h http.Header) iter.Seq[string] {
	return func(yield func(string) bool) {
		for k, vs := range h {
			if !Is(k) {
				continue
			}
			for _, v := range vs {
				for m := range strings.SplitSeq(v, ",") {
					if !yield(strings.TrimSpace(m)) {
						return
					}
				}
			}
		}
	}
}
