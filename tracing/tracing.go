package tracing

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicehq/sluice/plugins"
)

// Config configures a Tracer.
type Config struct {
	// Endpoint is the OTLP/HTTP collector's URL. A URL whose path does not
	// end in /v1/traces is a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is:
	// /v1/traces is added. Required unless Exporter is set.
	Endpoint string
	// SampleRatio is the share of new traces sampled, 0 to 1; a trace
	// started elsewhere follows its traceparent's sampled flag. Defaults
	// to 0 (none): callers pass the configured ratio.
	SampleRatio float64
	// ServiceName is the service.name resource attribute. Defaults to
	// "sluice".
	ServiceName string
	// QueueSize bounds the spans waiting for export; more are dropped and
	// counted. Defaults to 8192.
	QueueSize int
	// BatchSize is the most spans exported in one request. Defaults to 512.
	BatchSize int
	// BatchTimeout is how long a batch waits to fill after its first span.
	// Defaults to 200ms.
	BatchTimeout time.Duration
	// ExportTimeout bounds one export request. Defaults to 5s.
	ExportTimeout time.Duration
	// Exporter replaces the OTLP/HTTP exporter (tests, benchmarks).
	Exporter sdktrace.SpanExporter
}

// Deps are what a Tracer needs that is not configuration.
type Deps struct {
	// Logger receives export failures, at most one line per 10s. Defaults
	// to a disabled logger.
	Logger *zerolog.Logger
	// Metrics receives sluice_trace_spans_dropped_total and
	// sluice_trace_spans_exported_total; the caller registers it. Defaults
	// to a new, unregistered set.
	Metrics *metrics.Set
}

// Tracer starts Sluice's spans and exports them. A nil *Tracer is tracing
// off: callers check for nil before calling anything, so that the hot
// paths pay one comparison. Its methods are safe for concurrent use.
type Tracer struct {
	tp   *sdktrace.TracerProvider
	tr   trace.Tracer
	proc *processor
	fns  sync.Map // function name → *fnNames
}

// New returns a Tracer exporting to cfg.Endpoint. It returns an error for a
// malformed endpoint; it does not contact the collector.
func New(cfg Config, deps Deps) (*Tracer, error) {
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 || cfg.SampleRatio != cfg.SampleRatio {
		return nil, fmt.Errorf("tracing: sample ratio %v is not from 0 to 1", cfg.SampleRatio)
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "sluice"
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 8192
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 512
	}
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = 200 * time.Millisecond
	}
	if cfg.ExportTimeout <= 0 {
		cfg.ExportTimeout = 5 * time.Second
	}
	log := zerolog.Nop()
	if deps.Logger != nil {
		log = *deps.Logger
	}
	set := deps.Metrics
	if set == nil {
		set = metrics.NewSet()
	}
	exp := cfg.Exporter
	if exp == nil {
		u, err := TracesURL(cfg.Endpoint)
		if err != nil {
			return nil, err
		}
		exp, err = otlptracehttp.New(context.Background(),
			otlptracehttp.WithEndpointURL(u),
			otlptracehttp.WithTimeout(cfg.ExportTimeout),
			// The processor drops a batch that failed and counts it:
			// retrying would only hold the next batches up behind a
			// collector that is down.
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
		)
		if err != nil {
			return nil, fmt.Errorf("tracing: cannot create the OTLP exporter: %w", err)
		}
	}
	proc := newProcessor(exp, cfg, log.With().Str("component", "tracing").Logger(), set)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))),
		sdktrace.WithSpanProcessor(proc),
	)
	return &Tracer{tp: tp, tr: tp.Tracer("github.com/sluicehq/sluice"), proc: proc}, nil
}

// TracesURL returns the URL spans are posted to for endpoint: endpoint
// itself when its path ends in /v1/traces, else endpoint with /v1/traces
// added to its path.
func TracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing: endpoint %q is not an http:// or https:// URL", endpoint)
	}
	if !strings.HasSuffix(u.Path, "/v1/traces") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

// Shutdown exports the spans still queued and stops the exporter, waiting
// until ctx ends at most.
func (t *Tracer) Shutdown(ctx context.Context) error {
	return t.tp.Shutdown(ctx)
}

// Flush exports the spans queued so far.
func (t *Tracer) Flush(ctx context.Context) error {
	return t.tp.ForceFlush(ctx)
}

// Span is a started span. The zero Span does nothing.
type Span struct {
	s trace.Span
}

// Kinds of span Start starts.
const (
	KindServer   = trace.SpanKindServer
	KindConsumer = trace.SpanKindConsumer
	KindInternal = trace.SpanKindInternal
)

// Start starts a span at start (now when zero) as a child of the W3C
// traceparent and tracestate given, or as the root of a new trace when
// traceparent is empty or malformed.
func (t *Tracer) Start(name string, kind trace.SpanKind, traceparent, tracestate string, start time.Time, attrs ...attribute.KeyValue) Span {
	ctx := context.Background()
	if sc, ok := spanContext(traceparent, tracestate); ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	var s trace.Span
	if start.IsZero() {
		_, s = t.tr.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	} else {
		_, s = t.tr.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...), trace.WithTimestamp(start))
	}
	return Span{s: s}
}

// spanContext parses a traceparent (and its tracestate) as a remote parent.
func spanContext(traceparent, tracestate string) (trace.SpanContext, bool) {
	if traceparent == "" {
		return trace.SpanContext{}, false
	}
	c, ok := plugins.ParseTraceParent(traceparent)
	if !ok {
		return trace.SpanContext{}, false
	}
	cfg := trace.SpanContextConfig{
		TraceID:    c.TraceID,
		SpanID:     c.SpanID,
		TraceFlags: trace.TraceFlags(c.Flags) & trace.FlagsSampled,
		Remote:     true,
	}
	if tracestate != "" {
		if ts, err := trace.ParseTraceState(tracestate); err == nil {
			cfg.TraceState = ts
		}
	}
	return trace.NewSpanContext(cfg), true
}

// TraceParent returns the span's context as a W3C traceparent, "" for the
// zero Span.
func (s Span) TraceParent() string {
	if s.s == nil {
		return ""
	}
	return traceParent(s.s.SpanContext())
}

func traceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return plugins.TraceContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}.String()
}

// TraceID returns the span's trace id in hex, "" for the zero Span.
func (s Span) TraceID() string {
	if s.s == nil {
		return ""
	}
	return s.s.SpanContext().TraceID().String()
}

// Recording reports whether the span records what it is given: false for
// the zero Span and for spans not sampled, which need no attributes.
func (s Span) Recording() bool { return s.s != nil && s.s.IsRecording() }

// SetAttributes adds attributes to the span.
func (s Span) SetAttributes(attrs ...attribute.KeyValue) {
	if s.s != nil && s.s.IsRecording() {
		s.s.SetAttributes(attrs...)
	}
}

// Fail marks the span as failed with msg.
func (s Span) Fail(msg string) {
	if s.s != nil && s.s.IsRecording() {
		s.s.SetStatus(codes.Error, msg)
	}
}

// End ends the span at end (now when zero).
func (s Span) End(end time.Time) {
	if s.s == nil {
		return
	}
	if end.IsZero() {
		s.s.End()
		return
	}
	s.s.End(trace.WithTimestamp(end))
}
