package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authgate/authgate/internal/opatest"
)

// TestPush pushes the repository's policies to a real OPA started with
// none, then asks it a decision; a broken policy fails with OPA's error.
func TestPush(t *testing.T) {
	o := opatest.Start(t, t.TempDir())
	var out bytes.Buffer
	if err := push(context.Background(), http.DefaultClient, o.URL, opatest.RepoRoot(t)+"/opa-policies", &out); err != nil {
		t.Fatalf("push: %v", err)
	}
	if strings.Contains(out.String(), "_test.rego") || !strings.Contains(out.String(), "pushed demoapi/authz.rego\n") {
		t.Errorf("pushed:\n%s", out.String())
	}
	resp, err := http.Post(o.URL+"/v1/data/demoapi/authz/allow", "application/json",
		strings.NewReader(`{"input":{"method":"GET","path":"/sayhello","scopes":["read_sayhello"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ Result bool }
	json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if !d.Result {
		t.Error("the pushed policy does not allow GET /sayhello")
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "broken.rego"), []byte("package broken\nallow if {"), 0o644)
	err = push(context.Background(), http.DefaultClient, o.URL, bad, &out)
	if err == nil || !strings.Contains(err.Error(), "broken.rego: OPA answered 400") || !strings.Contains(err.Error(), "rego_parse_error") {
		t.Errorf("broken policy: %v", err)
	}
}
