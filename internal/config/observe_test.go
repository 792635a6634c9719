package config

import (
	"errors"
	"log/slog"
	"testing"
)

// observeEnv is a valid configuration plus the given variables.
func observeEnv(extra map[string]string) func(string) (string, bool) {
	env := map[string]string{
		"ENV_FILE":           "/dev/null",
		"OKTA_ISSUER":        "https://example.okta.com/oauth2/default",
		"OKTA_CLIENT_ID":     "authgate",
		"OKTA_CLIENT_SECRET": "s3cret",
		"OPA_AUTHZ_URL":      "http://127.0.0.1:8181/v1/data/demoapi/authz/allow",
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestObservabilityConfig(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		problem string // "" means valid
	}{
		{"defaults", nil, ""},
		{"debug text", map[string]string{"LOG_LEVEL": "debug", "LOG_FORMAT": "text"}, ""},
		{"level any case", map[string]string{"LOG_LEVEL": "WARN"}, ""},
		{"bad level", map[string]string{"LOG_LEVEL": "loud"}, `LOG_LEVEL: must be debug, info, warn or error, got "loud"`},
		{"bad format", map[string]string{"LOG_FORMAT": "xml"}, `LOG_FORMAT: must be json or text, got "xml"`},
		{"bad pprof", map[string]string{"PPROF": "sometimes"}, `PPROF: not a boolean (true or false): strconv.ParseBool: parsing "sometimes": invalid syntax`},
		{"otlp endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ""},
		{"bad otlp endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
			`OTEL_EXPORTER_OTLP_ENDPOINT: must be an http or https URL, got scheme "collector"`},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, ""},
		{"bad exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, `OTEL_TRACES_EXPORTER: must be otlp or none, got "zipkin"`},
		{"http protocol", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ""},
		{"grpc protocol", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: only http/protobuf is supported (OTLP over HTTP, port 4318), got "grpc"`},
		{"bad traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "grpc://collector:4317"},
			`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: must be an http or https URL, got scheme "grpc"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(observeEnv(c.env))
			switch {
			case c.problem == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.problem != "" && err == nil:
				t.Fatalf("no error, want %q", c.problem)
			case c.problem != "":
				var ce *Error
				if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0] != c.problem {
					t.Fatalf("got %v, want exactly %q", err, c.problem)
				}
			}
		})
	}
}

func TestLevelAndTracesURL(t *testing.T) {
	for _, c := range []struct {
		env   map[string]string
		level slog.Level
		url   string
	}{
		{nil, slog.LevelInfo, ""},
		{map[string]string{"LOG_LEVEL": "debug"}, slog.LevelDebug, ""},
		{map[string]string{"LOG_LEVEL": "error"}, slog.LevelError, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}, slog.LevelInfo, "http://c:4318/v1/traces"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://t.example/x"},
			slog.LevelInfo, "https://t.example/x"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, slog.LevelInfo, ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, slog.LevelInfo, ""},
	} {
		cfg, err := Load(observeEnv(c.env))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Level() != c.level || cfg.TracesURL() != c.url {
			t.Errorf("%v: level %v url %q, want %v %q", c.env, cfg.Level(), cfg.TracesURL(), c.level, c.url)
		}
	}
}
