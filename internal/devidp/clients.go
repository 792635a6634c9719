package devidp

import (
	"errors"
	"fmt"
	"strings"
)

// ParseClients parses a client list of the form
//
//	id:secret:scope1 scope2,id2:secret2:scopeA
//
// Clients are separated by commas and scopes by spaces; the scope part may be
// empty or omitted ("id:secret:" or "id:secret") for a client without scopes.
// IDs and secrets cannot contain ':' or ','. Syntax errors are reported
// first, all at once, then every other problem; errors name a client by its
// position and ID, never by its secret.
func ParseClients(spec string) ([]Client, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("clients: empty list")
	}
	var clients []Client
	var errs []error
	for i, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			errs = append(errs, fmt.Errorf("client %d: empty entry", i+1))
			continue
		}
		id, rest, ok := strings.Cut(entry, ":")
		if !ok {
			// Print neither the entry nor part of it: it may be a secret.
			errs = append(errs, fmt.Errorf("client %d: want id:secret:scopes", i+1))
			continue
		}
		secret, scopes, _ := strings.Cut(rest, ":")
		clients = append(clients, Client{ID: id, Secret: secret, Scopes: strings.Fields(scopes)})
	}
	if len(errs) == 0 {
		errs = validateClients(clients)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("clients: %w", err)
	}
	return clients, nil
}

// validateClients reports empty IDs and secrets, duplicate IDs and scopes
// that are not RFC 6749 scope tokens, naming clients by 1-based position.
func validateClients(clients []Client) []error {
	var errs []error
	seen := make(map[string]bool, len(clients))
	for i, c := range clients {
		switch {
		case c.ID == "":
			errs = append(errs, fmt.Errorf("client %d: empty id", i+1))
		case seen[c.ID]:
			errs = append(errs, fmt.Errorf("client %d: duplicate id %q", i+1, c.ID))
		}
		seen[c.ID] = true
		if c.Secret == "" && len(c.Keys) == 0 {
			errs = append(errs, fmt.Errorf("client %d (%q): empty secret", i+1, c.ID))
		}
		for _, sc := range c.Scopes {
			if !validScope(sc) {
				errs = append(errs, fmt.Errorf("client %d (%q): invalid scope %q", i+1, c.ID, sc))
			}
		}
	}
	return errs
}

// validScope reports whether s is a scope-token of RFC 6749 section 3.3:
// one or more printable ASCII characters other than space, '"' and '\'.
func validScope(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
