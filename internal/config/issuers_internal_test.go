package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestIssuersDocsClassifyEveryVariable: docs/issuers.md says of every
// variable whether it is per issuer or global. Each per-issuer setting has
// its row (ISSUER_N_<SETTING> with the primary's twin on the same line) and
// is in .env.example's comment block; every variable Config reads is named
// on the page; the page names no per-issuer variable Load does not read.
func TestIssuersDocsClassifyEveryVariable(t *testing.T) {
	page, err := os.ReadFile("../../docs/issuers.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(page)
	known := map[string]bool{}
	for _, s := range issuerSettings() {
		known[s.suffix] = true
		v := "`ISSUER_N_" + s.suffix + "`"
		row := ""
		for _, line := range strings.Split(doc, "\n") {
			if strings.HasPrefix(line, "| "+v) || strings.HasPrefix(line, "| `ISSUER_N_") && strings.Contains(line, v) {
				row = line
				break
			}
		}
		switch {
		case row == "":
			t.Errorf("docs/issuers.md has no table row for %s", v)
		case s.primary != "" && !strings.Contains(row, "`"+s.primary+"`"):
			t.Errorf("docs/issuers.md: the row of %s does not name its twin %s", v, s.primary)
		case s.inherit != strings.Contains(row, "the primary's value"):
			t.Errorf("docs/issuers.md: the row of %s says %q; inherited: %v", v, row, s.inherit)
		}
		if !strings.Contains(string(example), "ISSUER_<N>_"+s.suffix) {
			t.Errorf(".env.example does not describe ISSUER_<N>_%s", s.suffix)
		}
	}
	for _, m := range regexp.MustCompile("`ISSUER_N_([A-Z0-9_]+)`").FindAllStringSubmatch(doc, -1) {
		if !known[m[1]] {
			t.Errorf("docs/issuers.md names ISSUER_N_%s, which Load does not read", m[1])
		}
	}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		if name := typ.Field(i).Tag.Get("env"); name != "" && !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/issuers.md does not say whether %s is per issuer or global", name)
		}
	}
}

// TestIssuerSettingsTwins: each per-issuer setting's twin is a variable
// Config reads, and an inheriting one's field has the issuer field's type
// (Load copies it).
func TestIssuerSettingsTwins(t *testing.T) {
	cfg, raw := reflect.TypeFor[Config](), reflect.TypeFor[issuerEnv]()
	for _, s := range issuerSettings() {
		if s.primary == "" {
			if s.suffix != "OPAQUE_PATHS" || s.inherit {
				t.Errorf("%s: no twin", s.suffix)
			}
			continue
		}
		f, ok := envField(cfg, s.primary)
		if !ok {
			t.Errorf("%s: twin %s is not a variable Config reads", s.suffix, s.primary)
			continue
		}
		if own, _ := raw.FieldByName(s.field); s.inherit && own.Type != f.Type {
			t.Errorf("%s inherits %s: types %s and %s differ", s.suffix, s.primary, own.Type, f.Type)
		}
	}
}
