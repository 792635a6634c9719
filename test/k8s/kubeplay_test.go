package k8s

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/internal/opatest"
	"github.com/authgate/authgate/internal/stacktest"
)

// TestChartRunsUnderKubePlay renders the chart with the repository's
// policies and the images make image and make opa-image built, and runs its
// ConfigMap and Deployment with `podman kube play`: authgate and the OPA
// sidecar (on loopback, policies from the ConfigMap), read-only root
// filesystems, non-root. The pod must answer the seed scenario against the
// development authorization server started here, and stop with status 0.
//
// What podman 4.3 cannot do is adapted, nothing else: the pod uses the
// host's network (podman's bridge addresses are not loopback, so the
// development authorization server would be unreachable), which refuses
// containerPort, so the ports lists are removed; the client secret is a
// plain env value (kube play does not read envFrom.secretRef); and since
// httpGet probes do not run here, the test polls /healthz and /readyz
// itself.
func TestKubePlayChart(t *testing.T) {
	image := Image(t, "IMAGE", "authgate:dev")
	opaImage := Image(t, "OPA_IMAGE", "authgate-opa:dev")
	idp := stacktest.StartIDP(t, 0)
	ports := FreePorts(t, 4)

	repo, tag := splitImage(image)
	opaRepo, opaTag := splitImage(opaImage)
	release := "kp" + strconv.Itoa(os.Getpid())
	values := map[string]any{
		"fullnameOverride": release,
		"replicaCount":     1,
		"image":            map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"},
		"ports":            map[string]any{"traffic": ports[0], "admin": ports[1], "metrics": ports[2]},
		"opa": map[string]any{
			"image":    map[string]any{"repository": opaRepo, "tag": opaTag, "pullPolicy": "Never"},
			"port":     ports[3],
			"policies": policies(t),
		},
		"env": map[string]string{
			"OKTA_ISSUER":        idp.Issuer,
			"OKTA_CLIENT_ID":     stacktest.GatewayClient,
			"OKTA_CLIENT_SECRET": stacktest.GatewaySecret,
		},
	}
	dir := t.TempDir()
	valuesFile := filepath.Join(dir, "values.json")
	writeJSON(t, valuesFile, values)
	out, err := Render(t, "-f", valuesFile)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatalf("strict decoding: %v", err)
	}
	var play []byte
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.ConfigMap:
			play = appendDoc(t, play, o)
		case *appsv1.Deployment:
			for i := range o.Spec.Template.Spec.Containers {
				o.Spec.Template.Spec.Containers[i].Ports = nil
			}
			play = appendDoc(t, play, o)
		}
	}
	playFile := filepath.Join(dir, "play.yaml")
	if err := os.WriteFile(playFile, play, 0o644); err != nil {
		t.Fatal(err)
	}

	started := podman(t, "kube", "play", "--network", "host", "--replace", playFile)
	t.Cleanup(func() {
		if out, err := tryPodman(t, "kube", "down", playFile); err != nil {
			t.Logf("podman kube down: %v\n%s", err, out)
		}
	})
	pod := podID(t, started)
	containers := map[string]string{} // container name in the Deployment -> podman's name
	for name := range strings.FieldsSeq(podman(t, "ps", "--all", "--filter", "pod="+pod, "--format", "{{.Names}}")) {
		for _, c := range []string{"authgate", "opa"} {
			if strings.HasSuffix(name, "-"+c) {
				containers[c] = name
			}
		}
	}
	if len(containers) != 2 {
		t.Fatalf("containers of pod %s: %v", pod, containers)
	}
	logs := func() string {
		var b strings.Builder
		for c, name := range containers {
			out, _ := tryPodman(t, "logs", name)
			b.WriteString("--- " + c + ":\n" + out)
		}
		return b.String()
	}
	inspect := func(name, format string) string {
		out, _ := tryPodman(t, "inspect", "--format", format, name)
		return strings.TrimSpace(out)
	}
	for c, name := range containers {
		if got := inspect(name, "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}} {{.EffectiveCaps}}"); got != "true 65532:65532 []" {
			t.Errorf("%s: read-only root, user, capabilities = %q, want \"true 65532:65532 []\"", c, got)
		}
	}
	dead := func() bool { return inspect(containers["authgate"], "{{.State.Running}}") != "true" }

	admin := "http://" + addr(ports[1])
	waitReady(t, admin, dead, logs)
	seedScenario(t, "http://"+addr(ports[0]), idp)
	if r := stacktest.Get(t, admin+"/readyz", ""); r.Status != http.StatusOK || !strings.Contains(r.Body, `"opa":"ok"`) {
		t.Errorf("/readyz: %d %s", r.Status, r.Body)
	}

	// Stopping the pod sends SIGTERM to both containers.
	podman(t, "pod", "stop", "--time", "30", pod)
	for c, name := range containers {
		if got := inspect(name, "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 0" {
			t.Errorf("%s after SIGTERM: %q, want \"exited 0\"\n%s", c, got, logs())
		}
	}
	if t.Failed() {
		t.Log(logs())
	}
}

// splitImage splits NAME[:TAG] into repository and tag (default "latest");
// a name without a registry is podman's localhost/NAME.
func splitImage(image string) (repo, tag string) {
	repo, tag = image, "latest"
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		repo, tag = image[:i], image[i+1:]
	}
	if !strings.Contains(repo, "/") {
		repo = "localhost/" + repo
	}
	return repo, tag
}

// policies returns the repository's Rego policies, tests left out, keyed by
// their path under opa-policies/ with "/" made "." (a ConfigMap key has no
// "/"; OPA takes the package from the file, not its name).
func policies(t *testing.T) map[string]string {
	t.Helper()
	root := filepath.Join(opatest.RepoRoot(t), "opa-policies")
	m := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		m[strings.ReplaceAll(rel, string(filepath.Separator), ".")] = string(b)
		return nil
	})
	if err != nil || len(m) == 0 {
		t.Fatalf("policies under %s: %v (%d)", root, err, len(m))
	}
	return m
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendDoc(t *testing.T, stream []byte, obj any) []byte {
	t.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(stream, "---\n"...), b...)
}

// podID is the pod's ID in kube play's output ("Pod:\n<id>\n...").
func podID(t *testing.T, out string) string {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "Pod:" && i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" {
			return strings.TrimSpace(lines[i+1])
		}
	}
	t.Fatalf("no pod in podman kube play's output:\n%s", out)
	return ""
}
