package k8s

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/authgate/authgate/internal/opatest"
)

// Chart is the chart's directory.
func Chart(tb testing.TB) string {
	return filepath.Join(opatest.RepoRoot(tb), "deploy", "helm", "authgate")
}

// scheme holds every API type the chart may render, and nothing else: an
// object of any other kind fails to decode.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// strict decodes YAML or JSON into the registered types, refusing unknown
// and duplicate fields; a wrong type is a decoding error in any mode.
var strict = serializer.NewCodecFactory(scheme(), serializer.EnableStrict).UniversalDeserializer()

// Decode strictly decodes every document of a multi-document YAML stream
// (helm template's output). Empty documents are skipped; the first error
// names the document's source comment (# Source: ...) when there is one.
func Decode(stream []byte) ([]runtime.Object, error) {
	docs, err := Documents(stream)
	if err != nil {
		return nil, err
	}
	var objs []runtime.Object
	for _, doc := range docs {
		obj, _, err := strict.Decode(doc, nil, nil)
		if err != nil {
			return objs, fmt.Errorf("%s: %w", Source(doc), err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// Documents splits a multi-document YAML stream, leaving out documents
// that hold only comments.
func Documents(stream []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		if !isBlank(doc) {
			docs = append(docs, doc)
		}
	}
}

// isBlank reports whether a YAML document holds only comments and space.
func isBlank(doc []byte) bool {
	for line := range strings.Lines(string(doc)) {
		l := strings.TrimSpace(line)
		if l != "" && l != "---" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// Source is the "# Source: chart/templates/x.yaml" line of a rendered
// document, or its first line.
func Source(doc []byte) string {
	for line := range strings.Lines(string(doc)) {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); ok {
			return s
		}
	}
	first, _, _ := strings.Cut(string(doc), "\n")
	return first
}

// Helm returns the helm binary: $HELM, else bin/helm of the repository
// (make bin/helm). Without it the test skips, or fails when CI=true.
func Helm(tb testing.TB) string {
	tb.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(opatest.RepoRoot(tb), "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		missing(tb, "helm ("+bin+"; make bin/helm builds the pinned one)")
	}
	return bin
}

// missing skips the test for want of a tool, or fails it when CI=true.
func missing(tb testing.TB, what string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is missing, and CI=true: make test builds or installs it", what)
	}
	tb.Skipf("%s is missing: skipping", what)
}

// Render runs helm template on the chart (release "authgate", namespace
// "authgate") with args (-f FILE, --set ...) and returns its output, or
// the error with helm's output.
func Render(tb testing.TB, args ...string) ([]byte, error) {
	tb.Helper()
	cmd := exec.Command(Helm(tb), append([]string{"template", "authgate", Chart(tb), "--namespace", "authgate"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("helm template %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}
