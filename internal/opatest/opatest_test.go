package opatest_test

import (
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/authgate/authgate/internal/opatest"
)

func TestServer(t *testing.T) {
	opa := opatest.Start(t, filepath.Join(opatest.RepoRoot(t), "opa-policies"))

	const (
		allow = `{"input":{"method":"GET","path":"/sayhello","scopes":["read_sayhello"]}}`
		deny  = `{"input":{"method":"GET","path":"/saysecret","scopes":["read_saysecret"]}}`
	)
	decide := func(input string) (string, error) {
		resp, err := http.Post(opa.URL+"/v1/data/demoapi/authz/allow", "application/json", strings.NewReader(input))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)), err
	}
	check := func(t *testing.T) {
		t.Helper()
		for _, tc := range []struct{ input, want string }{
			{allow, `{"result":true}`},
			{deny, `{"result":false}`},
		} {
			got, err := decide(tc.input)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("POST %s = %s, want %s", tc.input, got, tc.want)
			}
		}
	}

	t.Run("running", check)

	opa.Stop()
	opa.Stop() // idempotent
	if _, err := decide(allow); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after Stop: err = %v, want connection refused", err)
	}

	url := opa.URL
	opa.Restart(t)
	if opa.URL != url {
		t.Errorf("after Restart: URL = %s, want %s", opa.URL, url)
	}
	t.Run("restarted", check)
}
