package e2e

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/authgate/authgate/internal/opatest"
	"github.com/authgate/authgate/internal/stacktest"
)

// otelcolConf runs the collector of internal/tools/otelcol/builder.yaml as
// a deployment would (OTLP/HTTP in, batch, out), with the debug exporter
// writing every span, in detail, to a file the test reads. Its own
// telemetry stays off: no port of its own beside the receiver's.
var otelcolConf = template.Must(template.New("otelcol.yaml").Parse(`receivers:
  otlp:
    protocols:
      http:
        endpoint: {{.Listen}}
processors:
  batch:
    timeout: 100ms
exporters:
  debug:
    verbosity: detailed
    use_internal_logger: false
    output_paths: [{{.Dir}}/spans.txt]
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
`))

// otelcolBinary is $OTELCOL_BIN, else bin/otelcol (make bin/otelcol builds
// it; make test does). Without it the test skips, or fails when CI=true.
func otelcolBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("OTELCOL_BIN")
	if bin == "" {
		bin = filepath.Join(opatest.RepoRoot(t), "bin", "otelcol")
	}
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no OpenTelemetry Collector at %s, and CI=true: make test builds it (make otelcol)", bin)
	}
	t.Skipf("no OpenTelemetry Collector at %s (make otelcol builds it): skipping the tracing test", bin)
	return ""
}

// collectedSpan is one span as the debug exporter printed it.
type collectedSpan struct {
	Trace, Parent, ID, Name, Kind, Service string
}

// readSpans parses the debug exporter's detailed output: a "Span #n" block
// per span, its fields as "    Name           : value" lines, after the
// resource's attributes ("     -> service.name: Str(authgate)").
func readSpans(path string) ([]collectedSpan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var spans []collectedSpan
	var service string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "-> service.name: Str("); ok {
			service = strings.TrimSuffix(rest, ")")
			continue
		}
		if strings.HasPrefix(line, "ResourceSpans #") {
			service = ""
			continue
		}
		if strings.HasPrefix(line, "Span #") {
			spans = append(spans, collectedSpan{Service: service})
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok || len(spans) == 0 || !strings.HasPrefix(line, "    ") {
			continue
		}
		s := &spans[len(spans)-1]
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "Trace ID":
			s.Trace = val
		case "Parent ID":
			s.Parent = val
		case "ID":
			s.ID = val
		case "Name":
			s.Name = val
		case "Kind":
			s.Kind = val
		}
	}
	return spans, sc.Err()
}

// TestTracesReachCollector sends a request with a caller's traceparent
// through authgate exporting to a real OpenTelemetry Collector, and checks
// what the collector received: the server span under the caller's span,
// and the introspection and OPA client spans under it, in the caller's
// trace.
func TestTracesReachCollector(t *testing.T) {
	bin := otelcolBinary(t)
	const (
		traceID    = "5e1f0c3a9b7d4e2f8a6c1b3d5f7e9a0b"
		callerSpan = "a1b2c3d4e5f60718"
	)
	var dir string
	col := proxyProcess(t, proxySpec{
		name: "otelcol", bin: bin, conf: otelcolConf, file: "otelcol.yaml",
		args: func(d, conf string) []string { dir = d; return []string{"--config", conf} },
	}, "", "")

	o := stacktest.StartOPA(t)
	i := stacktest.StartIDP(t, 0)
	env := stacktest.StackEnv(i, o)
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = col
	gw := stacktest.StartGateway(t, env)
	tok := i.Token(t, "read_sayhello")

	req, _ := http.NewRequest(http.MethodGet, gw.Traffic+"/sayhello", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/sayhello: %d", resp.StatusCode)
	}
	// Stopping authgate flushes its batch of spans to the collector: no
	// waiting for the SDK's export interval.
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}

	var spans []collectedSpan
	byName := map[string]collectedSpan{}
	stacktest.Eventually(t, 10*time.Second, "the collector exports authgate's three spans", func() bool {
		all, err := readSpans(filepath.Join(dir, "spans.txt"))
		if err != nil {
			return false
		}
		spans, byName = nil, map[string]collectedSpan{}
		for _, s := range all {
			if s.Trace == traceID {
				spans = append(spans, s)
				byName[s.Name] = s
			}
		}
		return len(byName) >= 3
	})
	if len(spans) != 3 {
		t.Errorf("%d spans in the caller's trace, want 3: %+v", len(spans), spans)
	}
	server, ok := byName["GET /sayhello"]
	if !ok {
		t.Fatalf("no server span named after the route: %+v", spans)
	}
	if server.Kind != "Server" || server.Parent != callerSpan || server.Service != "authgate" {
		t.Errorf("server span %+v: want kind Server, parent %s (the caller's), service authgate", server, callerSpan)
	}
	for _, n := range []string{"introspect", "opa decision"} {
		s, ok := byName[n]
		if !ok {
			t.Errorf("no %q span: %+v", n, spans)
			continue
		}
		if s.Kind != "Client" || s.Parent != server.ID {
			t.Errorf("%q span %+v: want kind Client under the server span %s", n, s, server.ID)
		}
	}
}
