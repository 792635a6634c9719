// Package apiserver is make k8s-check: the chart's rendered manifests
// applied to a real kube-apiserver (on etcd, both started here on
// loopback) with a server-side dry run and strict field validation.
//
// It talks to the API server with net/http alone: a server-side apply is a
// PATCH of the object's URL (application/apply-patch+yaml) with
// dryRun=All and fieldValidation=Strict, so no client library is needed.
package apiserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/authgate/authgate/test/k8s"
)

// namespace the manifests are applied to.
const namespace = "authgate"

// resources maps the kinds the chart renders to their resource names.
var resources = map[string]string{
	"ConfigMap": "configmaps", "Secret": "secrets", "Service": "services",
	"ServiceAccount": "serviceaccounts", "Deployment": "deployments",
	"PodDisruptionBudget": "poddisruptionbudgets", "HorizontalPodAutoscaler": "horizontalpodautoscalers",
	"NetworkPolicy": "networkpolicies", "ServiceMonitor": "servicemonitors",
	"CustomResourceDefinition": "customresourcedefinitions", "Namespace": "namespaces",
}

func TestAPIServerAcceptsChart(t *testing.T) {
	apiserverBin := os.Getenv("KUBE_APISERVER")
	if apiserverBin == "" {
		t.Skip("KUBE_APISERVER is not set: make k8s-check runs this test")
	}
	crd := os.Getenv("SERVICEMONITOR_CRD")
	if crd == "" {
		t.Fatal("SERVICEMONITOR_CRD is not set: make k8s-check names the CRD file of the prometheus-operator module")
	}
	etcd := os.Getenv("ETCD")
	if etcd == "" {
		etcd = "etcd"
	}
	if _, err := exec.LookPath(etcd); err != nil {
		t.Fatalf("etcd: %v (apt-get install etcd-server)", err)
	}

	api := start(t, apiserverBin, etcd)
	var version struct{ GitVersion string }
	api.getJSON(t, "/version", &version)
	t.Logf("kube-apiserver %s on etcd (%s)", version.GitVersion, etcd)
	if !strings.HasPrefix(version.GitVersion, "v1.") {
		t.Errorf("kube-apiserver reports version %q: built without the version -ldflags?", version.GitVersion)
	}

	// The namespace and the CRD are created for real: a dry run needs them.
	// Pod Security Admission warns about every pod template in the namespace
	// that the restricted standard refuses; apply fails on any warning.
	api.apply(t, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+namespace+
		"\n  labels:\n    pod-security.kubernetes.io/warn: restricted\n    pod-security.kubernetes.io/audit: restricted\n"), false)
	b, err := os.ReadFile(crd)
	if err != nil {
		t.Fatal(err)
	}
	api.apply(t, b, false)
	api.waitFor(t, "/apis/monitoring.coreos.com/v1/namespaces/"+namespace+"/servicemonitors")

	// The decoder is strict only if the server refuses what it should.
	for _, name := range []string{"unknown field", "wrong type", "unknown in CR"} {
		doc := map[string]string{
			"unknown field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  replicass: 1\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i}]}\n",
			"wrong type":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  replicas: two\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i}]}\n",
			"unknown in CR": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: bad}\nspec:\n  selector: {}\n  endpoints: [{prot: metrics}]\n",
		}[name]
		status, body := api.tryApply(t, []byte(doc), true)
		var st struct{ Message string }
		json.Unmarshal([]byte(body), &st)
		field := map[string]string{"unknown field": ".spec.replicass", "wrong type": ".spec.replicas", "unknown in CR": ".prot"}[name]
		if status < 400 || !strings.Contains(st.Message, field) {
			t.Errorf("%s: %d %s, want a refusal naming %s", name, status, body, field)
			continue
		}
		t.Logf("refused as it should be, %s: %d %s", name, status, st.Message)
	}

	for _, values := range []string{"", "ci/everything-on-values.yaml", "ci/existing-secret-values.yaml"} {
		var args []string
		name := "defaults"
		if values != "" {
			args = []string{"-f", filepath.Join(k8s.Chart(t), values)}
			name = filepath.Base(values)
		}
		out, err := k8s.Render(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := k8s.Documents(out)
		if err != nil {
			t.Fatal(err)
		}
		var applied []string
		for _, doc := range docs {
			applied = append(applied, api.apply(t, doc, true))
		}
		t.Logf("%s: %d objects accepted (server-side apply, dry run, strict field validation): %s",
			name, len(applied), strings.Join(applied, ", "))
	}
}

// apiServer is a kube-apiserver started by start.
type apiServer struct {
	url    string
	token  string
	client *http.Client
}

// start runs etcd and kube-apiserver on free loopback ports until the test
// ends, and returns once the API server's /readyz answers 200.
func start(t *testing.T, apiserverBin, etcdBin string) *apiServer {
	t.Helper()
	dir := t.TempDir()
	ports := k8s.FreePorts(t, 3)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	run(t, "etcd", etcdBin, "--name", "k8scheck", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "k8scheck="+peerURL, "--log-level", "error")

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	saKey := filepath.Join(dir, "sa.key")
	write(t, saKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	token := rand.Text()
	tokens := filepath.Join(dir, "tokens.csv")
	write(t, tokens, []byte(token+",k8scheck,k8scheck,system:masters\n"))
	certDir := filepath.Join(dir, "certs")
	apiserver := run(t, "kube-apiserver", apiserverBin,
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		// No Endpoints for the kubernetes Service: it would refuse a loopback address.
		"--endpoint-reconciler-type", "none",
		"--secure-port", strconv.Itoa(ports[2]), "--cert-dir", certDir,
		"--token-auth-file", tokens, "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.96.0.0/16", "--enable-priority-and-fairness=false",
		"--profiling=false", "--v=0")

	api := &apiServer{url: "https://127.0.0.1:" + strconv.Itoa(ports[2]), token: token}
	// The serving certificate is self-signed in certDir once the server
	// starts; until then the client has no root to trust, so it polls for
	// the file first.
	deadline := time.Now().Add(3 * time.Minute)
	var pool *x509.CertPool
	for pool == nil {
		if b, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt")); err == nil {
			pool = x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				pool = nil
			}
		}
		if time.Now().After(deadline) || apiserver.exited() {
			t.Fatalf("kube-apiserver wrote no serving certificate:\n%s", apiserver.logs())
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	api.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "kubernetes.default.svc", MinVersion: tls.VersionTLS12},
	}}
	for {
		status, _, err := api.do("GET", "/readyz", "", nil)
		if err == nil && status == http.StatusOK {
			return api
		}
		if time.Now().After(deadline) || apiserver.exited() {
			t.Fatalf("kube-apiserver not ready (%d, %v):\n%s", status, err, apiserver.logs())
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
}

func (a *apiServer) do(method, path, contentType string, body []byte) (int, []byte, error) {
	status, b, _, err := a.doHeader(method, path, contentType, body)
	return status, b, err
}

// doHeader is do that also returns the response's Warning headers.
func (a *apiServer) doHeader(method, path, contentType string, body []byte) (int, []byte, []string, error) {
	req, err := http.NewRequest(method, a.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Values("Warning"), err
}

func (a *apiServer) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	status, b, err := a.do("GET", path, "", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %v %s", path, status, err, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// waitFor polls GET path until it answers 200 (a CRD's resource is served
// a moment after the CRD is created).
func (a *apiServer) waitFor(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		status, b, err := a.do("GET", path, "", nil)
		if err == nil && status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %v %s", path, status, err, b)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

// apply applies doc with a server-side apply and strict field validation,
// as a dry run or for real; any answer but 200 or 201, or any warning (a
// deprecated field, a pod template the restricted Pod Security Standard
// refuses), fails the test. It returns Kind/name.
func (a *apiServer) apply(t *testing.T, doc []byte, dryRun bool) string {
	t.Helper()
	status, body, warnings := a.tryApplyWarnings(t, doc, dryRun)
	id := objectID(t, doc)
	if status != http.StatusOK && status != http.StatusCreated {
		t.Errorf("%s (%s): %d %s", id, k8s.Source(doc), status, body)
	}
	if len(warnings) > 0 {
		t.Errorf("%s (%s): warnings %q", id, k8s.Source(doc), warnings)
	}
	return id
}

func (a *apiServer) tryApply(t *testing.T, doc []byte, dryRun bool) (int, string) {
	t.Helper()
	status, body, _ := a.tryApplyWarnings(t, doc, dryRun)
	return status, body
}

func (a *apiServer) tryApplyWarnings(t *testing.T, doc []byte, dryRun bool) (int, string, []string) {
	t.Helper()
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Fatalf("%s: %v", k8s.Source(doc), err)
	}
	resource, ok := resources[meta.Kind]
	if !ok {
		t.Fatalf("%s: kind %s has no resource name here", k8s.Source(doc), meta.Kind)
	}
	path := "/apis/" + meta.APIVersion
	if meta.APIVersion == "v1" {
		path = "/api/v1"
	}
	if meta.Kind != "Namespace" && meta.Kind != "CustomResourceDefinition" {
		path += "/namespaces/" + namespace
	}
	q := url.Values{"fieldManager": {"k8scheck"}, "fieldValidation": {"Strict"}, "force": {"true"}}
	if dryRun {
		q.Set("dryRun", "All")
	}
	path += "/" + resource + "/" + meta.Metadata.Name + "?" + q.Encode()
	status, body, warnings, err := a.doHeader("PATCH", path, "application/apply-patch+yaml", doc)
	if err != nil {
		t.Fatalf("PATCH %s: %v", path, err)
	}
	return status, string(body), warnings
}

func objectID(t *testing.T, doc []byte) string {
	var m struct {
		Kind     string
		Metadata struct{ Name string }
	}
	if err := yaml.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	return m.Kind + "/" + m.Metadata.Name
}

// process is a program started by run.
type process struct {
	out  *buffer
	done chan struct{}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) logs() string { return p.out.String() }

// run starts bin with args until the test ends (SIGTERM, then SIGKILL
// after 10 s).
func run(t *testing.T, name, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	p := &process{out: &buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, lastLines(p.out.String(), 40))
		}
	})
	return p
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
