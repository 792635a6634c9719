// Package headername compares header names as the frameworks behind a
// proxy read them: ASCII case ignored, and "_" read as "-" (CGI-style
// frameworks see X_Forwarded_Host as X-Forwarded-Host).
package headername

// HasPrefix reports whether name begins with prefix (lower-case ASCII,
// "-" not "_"), read as above.
func HasPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// Is reports whether name is lower (lower-case ASCII, "-" not "_"), read
// as above.
func Is(name, lower string) bool { return len(name) == len(lower) && HasPrefix(name, lower) }
