package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/config"
)

// keptSpans is an in-memory exporter whose spans survive the provider's
// shutdown, which is when Run flushes them.
type keptSpans struct{ *tracetest.InMemoryExporter }

func (keptSpans) Shutdown(context.Context) error { return nil }

// upstream is a stub IdP or OPA that remembers the headers it was sent.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newUpstream(t *testing.T, body string) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) seen() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.headers...)
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listening waits for Run to report its listeners and returns the traffic
// and admin addresses.
func listening(t *testing.T, addrs <-chan Addrs, logs *syncBuffer, done <-chan error) (traffic, admin string) {
	t.Helper()
	select {
	case a := <-addrs:
		return a.Traffic, a.Admin
	case err := <-done:
		t.Fatalf("Run ended: %v\n%s", err, logs)
	}
	return "", ""
}

// TestTracing runs authgate between stub upstreams, with tracing on (an
// in-memory exporter stands in for OTLP) and off.
func TestTracing(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	parentTrace := "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "on", false: "off"}[on]
		t.Run(name, func(t *testing.T) {
			idp := newUpstream(t, `{"active":true,"sub":"alice","client_id":"demo","scope":"read_sayhello"}`)
			opa := newUpstream(t, `{"result":true}`)
			env := map[string]string{
				"ENV_FILE":           "/dev/null", // never a developer's .env
				"OKTA_ISSUER":        idp.URL,
				"OKTA_CLIENT_ID":     "authgate",
				"OKTA_CLIENT_SECRET": "s3cret-for-tracing",
				"OPA_AUTHZ_URL":      opa.URL + "/v1/data/demoapi/authz/allow",
				"LISTEN_ADDR":        "127.0.0.1:0",
				"ADMIN_ADDR":         "127.0.0.1:0",
				"METRICS_ADDR":       "127.0.0.1:0",
			}
			if on {
				env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:1" // replaced by the in-memory exporter
			}
			exp := keptSpans{tracetest.NewInMemoryExporter()}
			ctx, cancel := context.WithCancel(context.Background())
			logs := &syncBuffer{}
			done := make(chan error, 1)
			addrs := make(chan Addrs, 1)
			go func() {
				done <- run(ctx, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, logs,
					options{spanExporter: exp, onListening: func(a Addrs) { addrs <- a }})
			}()
			addr, admin := listening(t, addrs, logs, done)
			if r, err := http.Get("http://" + admin + "/readyz"); err != nil || r.StatusCode != 200 {
				t.Fatalf("/readyz: %v %v", r, err)
			}

			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/sayhello", nil)
			req.Header.Set("Authorization", "Bearer some-token")
			req.Header.Set("Traceparent", parent)
			req.Header.Set("X-Request-Id", "trace-test-1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "trace-test-1" {
				t.Fatalf("status %d, X-Request-Id %q\n%s", resp.StatusCode, resp.Header.Get("X-Request-Id"), logs)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			for _, u := range []struct {
				name string
				up   *upstream
			}{{"idp", idp}, {"opa", opa}} {
				seen := u.up.seen()
				if u.name == "opa" && len(seen) == 2 {
					seen = seen[1:] // the first was /readyz's health check
				}
				if len(seen) != 1 {
					t.Fatalf("%s called %d times", u.name, len(seen))
				}
				if id := seen[0].Get("X-Request-Id"); id != "trace-test-1" {
					t.Errorf("%s got X-Request-Id %q", u.name, id)
				}
				tp := seen[0].Get("Traceparent")
				switch {
				case on && !strings.Contains(tp, parentTrace):
					t.Errorf("%s got traceparent %q, want trace %s", u.name, tp, parentTrace)
				case !on && tp != "":
					t.Errorf("tracing off, yet %s got traceparent %q", u.name, tp)
				}
			}

			spans := exp.GetSpans()
			if !on {
				if len(spans) != 0 {
					t.Errorf("tracing off, yet %d spans", len(spans))
				}
				return
			}
			if len(spans) != 3 {
				t.Errorf("%d spans, want 3 (the /readyz health check makes none): %v", len(spans), names(spans))
			}
			byName := map[string]tracetest.SpanStub{}
			for _, s := range spans {
				byName[s.Name] = s
			}
			server, ok := byName["GET /sayhello"]
			if !ok {
				t.Fatalf("no server span named after the route; spans: %v", names(spans))
			}
			if server.SpanKind != trace.SpanKindServer || server.SpanContext.TraceID().String() != parentTrace {
				t.Errorf("server span kind %v trace %s", server.SpanKind, server.SpanContext.TraceID())
			}
			for _, n := range []string{"introspect", "opa decision"} {
				s, ok := byName[n]
				if !ok {
					t.Errorf("no %q span; spans: %v", n, names(spans))
					continue
				}
				if s.SpanKind != trace.SpanKindClient || s.Parent.SpanID() != server.SpanContext.SpanID() {
					t.Errorf("%q: kind %v, parent %s, want a client span under the request's", n, s.SpanKind, s.Parent.SpanID())
				}
			}
			if !strings.Contains(logs.String(), `"trace_id":"`+parentTrace+`"`) {
				t.Errorf("access log lacks the trace id:\n%s", logs)
			}
		})
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func TestNewLogger(t *testing.T) {
	for _, c := range []struct {
		format, level string
		wantInfo      bool
		prefix        string
	}{
		{"json", "info", true, `{"time":`},
		{"text", "info", true, "time="},
		{"json", "warn", false, `{"time":`},
		{"text", "debug", true, "time="},
	} {
		var b bytes.Buffer
		log := newLogger(&config.Config{LogFormat: c.format, LogLevel: c.level}, &b)
		log.Info("hello", "k", "v")
		log.Error("boom")
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if want := map[bool]int{true: 2, false: 1}[c.wantInfo]; len(lines) != want {
			t.Errorf("%s/%s: %d lines, want %d: %q", c.format, c.level, len(lines), want, lines)
		}
		if !strings.HasPrefix(lines[0], c.prefix) {
			t.Errorf("%s: line %q", c.format, lines[0])
		}
	}
}
