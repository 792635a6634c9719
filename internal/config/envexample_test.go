package config

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestEnvExampleNamesEveryVariable: .env.example is the one list of
// variables, so every variable Config reads is in it (set, or commented
// out as "# NAME=..."), and it names none that Config does not read.
func TestEnvExampleNamesEveryVariable(t *testing.T) {
	f, err := os.Open("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^#? ?([A-Z][A-Z0-9_]*)=`)
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			listed[m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("env"), ",")
		if name != "" {
			read[name] = true
		}
	}
	if len(read) == 0 {
		t.Fatal("Config has no env tags: the test reads the wrong type")
	}
	for name := range read {
		if !listed[name] {
			t.Errorf(".env.example does not name %s", name)
		}
	}
	for name := range listed {
		if !read[name] && name != "ENV_FILE" {
			t.Errorf(".env.example names %s, which Config does not read", name)
		}
	}
}
