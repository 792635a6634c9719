// Package methodoverride knows the headers by which frameworks let a client
// override the request's method (X-HTTP-Method-Override and its kin): a
// POST carrying "DELETE" may reach an upstream as a DELETE.
package methodoverride

import (
	"iter"
	"net/http"
	"strings"

	"github.com/authgate/authgate/internal/headername"
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
		if headername.Is(name, n) {
			return true
		}
	}
	return false
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
