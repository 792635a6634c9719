package app

// Observability wiring: logger, Prometheus registry and the hooks
// that feed it, OpenTelemetry tracing. Everything here is built from the
// configuration in Run; nothing is global.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/authgate/authgate/internal/breaker"
	"github.com/authgate/authgate/internal/config"
	"github.com/authgate/authgate/internal/metrics"
)

// newLogger builds the logger LOG_LEVEL and LOG_FORMAT ask for.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level()}
	if strings.EqualFold(cfg.LogFormat, "text") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// telemetry is the metrics registry and, when tracing is on, the tracer
// provider, with what wires them into the request path.
type telemetry struct {
	registry *prometheus.Registry
	metrics  *metrics.Metrics
	log      *slog.Logger
	tp       *sdktrace.TracerProvider // nil: tracing off, nothing is wrapped
	prop     propagation.TextMapPropagator
}

// options are Run's knobs (Option), and those only its own tests turn.
type options struct {
	// onListening, when set, is told the listeners' addresses (OnListening).
	onListening func(Addrs)
	// spanExporter, when set, replaces the OTLP exporter when tracing is on.
	spanExporter sdktrace.SpanExporter
}

func newTelemetry(ctx context.Context, cfg *config.Config, log *slog.Logger, opt options) (*telemetry, error) {
	reg := prometheus.NewRegistry()
	t := &telemetry{registry: reg, metrics: metrics.New(reg), log: log}
	url := cfg.TracesURL()
	if url == "" {
		return t, nil
	}
	exp := opt.spanExporter
	if exp == nil {
		var err error
		if exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(url)); err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
		}
	}
	// resource.WithFromEnv reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES,
	// which win over the default name.
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "authgate")), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		log.Warn("tracing resource", "err", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based, always on).
	t.tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	log.Info("tracing on", "otlp_traces_url", url)
	return t, nil
}

// tracing reports whether spans are made.
func (t *telemetry) tracing() bool { return t.tp != nil }

// otelOptions are the otelhttp options: authgate's provider and propagator,
// never the global ones, and no otelhttp metrics (Prometheus has them).
func (t *telemetry) otelOptions(more ...otelhttp.Option) []otelhttp.Option {
	return append([]otelhttp.Option{
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
	}, more...)
}

// transport wraps an upstream's transport so that each call is a client
// span named name and carries the W3C trace context. Unwrapped when tracing is off.
func (t *telemetry) transport(rt http.RoundTripper, name string) http.RoundTripper {
	if !t.tracing() {
		return rt
	}
	return otelhttp.NewTransport(rt, t.otelOptions(
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return name }),
		// Only calls made for a traced request: /readyz's OPA health checks
		// would otherwise start a trace each.
		otelhttp.WithFilter(func(r *http.Request) bool { return trace.SpanContextFromContext(r.Context()).IsValid() }),
	)...)
}

// traffic wraps the traffic handler in a server span that continues the
// caller's trace; the gateway renames it after the route. Unwrapped when
// tracing is off.
func (t *telemetry) traffic(h http.Handler) http.Handler {
	if !t.tracing() {
		return h
	}
	return otelhttp.NewHandler(h, "authgate", t.otelOptions()...)
}

// shutdown flushes the spans still buffered.
func (t *telemetry) shutdown(ctx context.Context) error {
	if !t.tracing() {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// breakerChange logs a transition and counts it. gobreaker calls it under
// its lock: nothing here calls back into the breaker.
func (t *telemetry) breakerChange(name string, from, to breaker.State) {
	t.log.Warn("circuit breaker state changed", "upstream", name, "from", from.String(), "to", to.String())
	t.metrics.BreakerTransition(name, from, to)
}

// metricsHandler serves the registry on GET /metrics.
func (t *telemetry) metricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(t.log.Handler(), slog.LevelError),
	})
}
