package k8s

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgate/authgate/internal/stacktest"
)

// maxImageBytes is the most authgate's image may weigh.
const maxImageBytes = 40 << 20

// TestImageContents: what make image built holds nothing but the static
// binary and the CA bundle, runs as a non-root user and carries its OCI
// labels.
func TestImageContents(t *testing.T) {
	image := Image(t, "IMAGE", "authgate:dev")
	var meta []struct {
		Size   int64
		Labels map[string]string
		Config struct {
			User       string
			Entrypoint []string
		}
	}
	if err := json.Unmarshal([]byte(podman(t, "image", "inspect", image)), &meta); err != nil || len(meta) != 1 {
		t.Fatalf("podman image inspect: %v", err)
	}
	m := meta[0]
	t.Logf("%s: %.1f MB", image, float64(m.Size)/1e6)
	if m.Size > maxImageBytes {
		t.Errorf("image is %d bytes, more than %d", m.Size, maxImageBytes)
	}
	if m.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", m.Config.User)
	}
	if !slices.Equal(m.Config.Entrypoint, []string{"/authgate"}) {
		t.Errorf("entrypoint %q", m.Config.Entrypoint)
	}
	for k, re := range map[string]string{
		"org.opencontainers.image.source":   `^https://`,
		"org.opencontainers.image.version":  `^\S+$`,
		"org.opencontainers.image.revision": `^[0-9a-f]{40}$`,
	} {
		if !regexp.MustCompile(re).MatchString(m.Labels[k]) {
			t.Errorf("label %s = %q, want %s", k, m.Labels[k], re)
		}
	}

	files := imageFiles(t, image)
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"authgate", "etc/ssl/certs/ca-certificates.crt"}; !slices.Equal(names, want) {
		t.Errorf("files in the image: %q, want only %q", names, want)
	}
	bin, err := elf.NewFile(bytes.NewReader(files["authgate"]))
	if err != nil {
		t.Fatalf("/authgate: %v", err)
	}
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/authgate is dynamically linked (PT_INTERP): build it with CGO_ENABLED=0")
		}
	}
	if !bytes.Contains(files["etc/ssl/certs/ca-certificates.crt"], []byte("-----BEGIN CERTIFICATE-----")) {
		t.Error("the CA bundle holds no certificate")
	}
}

// imageFiles returns the regular files of image's layers (path without the
// leading slash -> content), from podman image save's docker-archive.
func imageFiles(t *testing.T, image string) map[string][]byte {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "image.tar")
	podman(t, "image", "save", "--format", "docker-archive", "-o", archive, image)
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = b
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("docker-archive manifest.json: %v", err)
	}
	files := map[string][]byte{}
	for _, layer := range manifest[0].Layers {
		lr := tar.NewReader(bytes.NewReader(entries[layer]))
		for {
			h, err := lr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", layer, err)
			}
			if h.Typeflag == tar.TypeDir {
				continue
			}
			b, err := io.ReadAll(lr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(h.Name, "/")] = b
		}
	}
	return files
}

// TestImageRuns: the image, with a read-only root filesystem on the host's
// network, answers the seed scenario against OPA and the development
// authorization server started here, and SIGTERM ends it with status 0.
func TestImageRuns(t *testing.T) {
	image := Image(t, "IMAGE", "authgate:dev")
	opa := stacktest.StartOPA(t)
	idp := stacktest.StartIDP(t, 0)
	ports := FreePorts(t, 3)
	env := stacktest.StackEnv(idp, opa)
	env["LISTEN_ADDR"] = addr(ports[0])
	env["ADMIN_ADDR"] = addr(ports[1])
	env["METRICS_ADDR"] = addr(ports[2])
	env["LOG_LEVEL"] = "debug"

	name := "authgate-test-" + strconv.Itoa(os.Getpid())
	args := []string{"run", "--rm", "--name", name, "--read-only", "--network", "host",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		args = append(args, "--env", k+"="+env[k])
	}
	args = append(args, image)
	cmd := exec.Command(Podman(t), args...)
	logs := stacktest.NewLogSink()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var exitErr error
	done := false
	dead := func() bool {
		if done {
			return true
		}
		select {
		case exitErr = <-exited:
			done = true
		default:
		}
		return done
	}
	t.Cleanup(func() {
		if !dead() {
			tryPodman(t, "rm", "--force", "--time", "0", name)
			<-exited
		}
	})

	waitReady(t, "http://"+env["ADMIN_ADDR"], dead, logs.String)
	seedScenario(t, "http://"+env["LISTEN_ADDR"], idp)

	podman(t, "kill", "--signal", "TERM", name)
	deadline := time.Now().Add(30 * time.Second)
	for !dead() {
		if time.Now().After(deadline) {
			t.Fatalf("still running 30s after SIGTERM:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if exitErr != nil {
		t.Fatalf("after SIGTERM: %v (want status 0)\n%s", exitErr, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no \"stopped\" log line:\n%s", logs.String())
	}
	for _, secret := range []string{stacktest.GatewaySecret} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a secret appears in the logs")
		}
	}
}
