package k8s

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
)

// Podman returns the podman binary, and makes the podman it runs use
// containers.conf beside this file unless CONTAINERS_CONF names another.
// Without podman the test skips, or fails when CI=true (make test installs
// it with apt-get when root).
func Podman(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("podman")
	if err != nil {
		missing(tb, "podman (apt-get install podman runc catatonit)")
	}
	if os.Getenv("CONTAINERS_CONF") == "" {
		conf, _ := filepath.Abs("containers.conf")
		tb.Setenv("CONTAINERS_CONF", conf)
	}
	return bin
}

// podman runs podman with args and returns its standard output; it fails
// the test, with podman's error output, when podman fails.
func podman(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := tryPodman(tb, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func tryPodman(tb testing.TB, args ...string) (string, error) {
	tb.Helper()
	cmd := exec.Command(Podman(tb), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), &podmanError{args, err, stderr.String()}
	}
	return string(out), nil
}

type podmanError struct {
	args   []string
	err    error
	stderr string
}

func (e *podmanError) Error() string {
	return "podman " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.stderr
}

// Image returns the image named by env (IMAGE, OPA_IMAGE; def when unset),
// which must exist in podman's storage: make image and make opa-image
// build them.
func Image(tb testing.TB, env, def string) string {
	tb.Helper()
	name := os.Getenv(env)
	if name == "" {
		name = def
	}
	if _, err := tryPodman(tb, "image", "exists", name); err != nil {
		missing(tb, "image "+name+" ("+env+"; make "+strings.ToLower(strings.ReplaceAll(env, "_", "-"))+" builds it)")
	}
	return name
}

// waitReady polls GET admin/healthz, then admin/readyz, until each answers
// 200, for at most 60 s; dead, when it returns true, means the gateway is
// gone and the wait stops. logs tells what the gateway said.
func waitReady(tb testing.TB, admin string, dead func() bool, logs func() string) {
	tb.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	for _, path := range []string{"/healthz", "/readyz"} {
		deadline := time.Now().Add(60 * time.Second)
		for {
			r, err := stacktest.TryGet(c, admin+path, "")
			if err == nil && r.Status == http.StatusOK {
				break
			}
			if dead() {
				tb.Fatalf("authgate exited before %s answered 200:\n%s", path, logs())
			}
			if time.Now().After(deadline) {
				tb.Fatalf("%s%s did not answer 200 within 60s (last: %+v, %v):\n%s", admin, path, r, err, logs())
			}
			time.Sleep(50 * time.Millisecond) // polling interval, not a wait for readiness
		}
	}
}

// seedScenario is make run's scenario (README, "Two commands"): a token
// with read_sayhello may GET /sayhello (200) but not /saysecret (403), and
// no token is 401.
func seedScenario(tb testing.TB, traffic string, idp *stacktest.IDP) {
	tb.Helper()
	token := idp.Token(tb, "read_sayhello")
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/sayhello", token, http.StatusOK},
		{"/saysecret", token, http.StatusForbidden},
		{"/sayhello", "", http.StatusUnauthorized},
	} {
		r := stacktest.Get(tb, traffic+c.path, c.token)
		if r.Status != c.want {
			tb.Errorf("GET %s (token %v): %d %s, want %d", c.path, c.token != "", r.Status, r.Body, c.want)
		}
	}
}

// addr is 127.0.0.1:port.
func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
