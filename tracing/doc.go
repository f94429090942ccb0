// Package tracing is Sluice's OpenTelemetry tracing: spans for each HTTP
// request and Kafka record, the time an event queued, the batch and each
// invocation, exported over OTLP/HTTP in bounded batches.
//
// A nil *Tracer is tracing off, and the hot paths that call into this
// package check for nil first: with tracing off nothing here runs, no span
// exists and nothing is allocated.
//
// Trace context travels with the event as its W3C traceparent
// (plugins.Event.TraceParent): the gateway and the Kafka triggers replace
// the incoming one with their own span's, so that the invoker's spans are
// children of the request's or the record's, and the invoker gives each
// event of a batch its invocation span's traceparent
// (plugins.Batch.TraceParents) for the worker to pass on.
//
// Export never holds a request up: ended spans go to a bounded queue and a
// full queue drops them, as does a failed export (no retries: the next
// batch must not wait behind a collector that is down). Both are counted in
// sluice_trace_spans_dropped_total; sluice_trace_spans_exported_total
// counts the spans the collector took.
package tracing
