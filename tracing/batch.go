package tracing

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicehq/sluice/plugins"
)

// Outcomes of an invocation, as the invoker logs them.
const (
	OutcomeSuccess = "success"
	OutcomeError   = "error"
	OutcomeTimeout = "timeout"
	OutcomeCrash   = "crash"
)

// Batch holds the spans of one invocation of a function: the batch span,
// and per event the time it queued and its invocation. Get one with
// StartBatch, end it with End; it is not safe for concurrent use.
type Batch struct {
	t       *Tracer
	n       *fnNames
	start   time.Time
	batch   trace.Span
	batchSC trace.SpanContext
	ctx     context.Context // carries the batch span
	invs    []trace.Span
}

var batchPool = sync.Pool{New: func() any { return new(Batch) }}

// fnNames are the span names and attribute of one function, made once.
type fnNames struct {
	batch, queue, invoke string
	attr                 attribute.KeyValue
}

func (t *Tracer) names(function string) *fnNames {
	if n, ok := t.fns.Load(function); ok {
		return n.(*fnNames)
	}
	n, _ := t.fns.LoadOrStore(function, &fnNames{
		batch: "batch " + function, queue: "queue " + function, invoke: "invoke " + function,
		attr: attribute.String("faas.name", function),
	})
	return n.(*fnNames)
}

// Wants reports whether a batch needs spans: not when every event belongs
// to a trace that is not sampled, whose spans would all be dropped. The
// events then pass their traceparent on as it is.
func (t *Tracer) Wants(b *plugins.Batch) bool {
	for _, ev := range b.Events {
		if !unsampled(ev.TraceParent) {
			return true
		}
	}
	return false
}

// unsampled reports whether tp is a version 00 traceparent with the
// sampled flag clear. It reads only the flags: this runs for every batch,
// and the traceparents here are the gateway's and the triggers' own.
func unsampled(tp string) bool {
	if len(tp) != 55 || tp[0] != '0' || tp[1] != '0' || tp[52] != '-' {
		return false
	}
	c := tp[54]
	switch {
	case c >= '0' && c <= '9':
		return (c-'0')&1 == 0
	case c >= 'a' && c <= 'f':
		return (c-'a'+10)&1 == 0
	}
	return false
}

// StartBatch starts the spans of an invocation of function with b at
// start: the batch span, child of the first event's trace with links to
// the others'. It sets b.TraceParents, which Event fills in.
func (t *Tracer) StartBatch(function string, b *plugins.Batch, start time.Time) *Batch {
	bt := batchPool.Get().(*Batch)
	bt.t, bt.n, bt.start = t, t.names(function), start
	ctx := context.Background()
	var links []trace.Link
	for i, ev := range b.Events {
		sc, ok := spanContext(ev.TraceParent, ev.TraceState)
		if !ok {
			continue
		}
		if i == 0 {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			continue
		}
		links = append(links, trace.Link{SpanContext: sc})
	}
	bt.ctx, bt.batch = t.tr.Start(ctx, bt.n.batch,
		trace.WithTimestamp(start), trace.WithLinks(links...),
		trace.WithAttributes(bt.n.attr, attribute.Int("sluice.batch.size", len(b.Events)), attribute.String("sluice.batch.id", b.ID)))
	bt.batchSC = bt.batch.SpanContext()
	if cap(bt.invs) < len(b.Events) {
		bt.invs = make([]trace.Span, len(b.Events))
	}
	bt.invs = bt.invs[:len(b.Events)]
	b.TraceParents = make([]string, len(b.Events))
	return bt
}

// Event records event i of b: the span of its wait in the queue since
// enqueued, and the start of its invocation span (attempt counts from 1),
// whose traceparent the worker passes on to the function.
func (bt *Batch) Event(b *plugins.Batch, i int, enqueued time.Time, attempt int) {
	ev := b.Events[i]
	parent := context.Background()
	sc, ok := spanContext(ev.TraceParent, ev.TraceState)
	if ok {
		parent = trace.ContextWithRemoteSpanContext(parent, sc)
	}
	fn := bt.n.attr
	if !enqueued.IsZero() && enqueued.Before(bt.start) {
		_, q := bt.t.tr.Start(parent, bt.n.queue, trace.WithTimestamp(enqueued), trace.WithAttributes(fn))
		q.End(trace.WithTimestamp(bt.start))
	}
	// Under the batch span when it is of the same trace; otherwise under
	// the event's own parent, linked to the batch.
	opts := []trace.SpanStartOption{trace.WithTimestamp(bt.start), trace.WithAttributes(fn,
		attribute.Int("sluice.attempt", attempt), attribute.String("faas.invocation_id", ev.ID))}
	if !ok || sc.TraceID() == bt.batchSC.TraceID() {
		parent = bt.ctx
	} else {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: bt.batchSC}))
	}
	_, s := bt.t.tr.Start(parent, bt.n.invoke, opts...)
	bt.invs[i] = s
	b.TraceParents[i] = traceParent(s.SpanContext())
}

// ColdStart records on the batch span and every invocation span not ended
// yet whether the invocation waited for an instance to start (init > 0,
// the worker's plugins.Batch.InitDuration): faas.coldstart, as OpenTelemetry's
// FaaS conventions name it, and on a cold start sluice.init_duration_ms.
// Call it before End and Finish.
func (bt *Batch) ColdStart(init time.Duration) {
	attrs := []attribute.KeyValue{attribute.Bool("faas.coldstart", init > 0)}
	if init > 0 {
		attrs = append(attrs, attribute.Float64("sluice.init_duration_ms", float64(init.Microseconds())/1000))
	}
	if bt.batch.IsRecording() {
		bt.batch.SetAttributes(attrs...)
	}
	for _, s := range bt.invs {
		if s != nil && s.IsRecording() {
			s.SetAttributes(attrs...)
		}
	}
}

// End ends the invocation span of event i with its outcome.
func (bt *Batch) End(i int, outcome string, end time.Time) {
	s := bt.invs[i]
	if s == nil {
		return
	}
	bt.invs[i] = nil
	if s.IsRecording() {
		s.SetAttributes(attribute.String("sluice.outcome", outcome))
		if outcome != OutcomeSuccess {
			// error.type is OpenTelemetry's attribute for the class of a
			// failure; the outcome is that class here.
			s.SetAttributes(attribute.String("error.type", outcome))
			s.SetStatus(codes.Error, outcome)
		}
	}
	s.End(trace.WithTimestamp(end))
}

// Finish ends the batch span and every invocation span not ended yet, and
// recycles bt, which must not be used after.
func (bt *Batch) Finish(outcome string, end time.Time) {
	for i := range bt.invs {
		bt.End(i, outcome, end)
	}
	if bt.batch.IsRecording() {
		bt.batch.SetAttributes(attribute.String("sluice.outcome", outcome))
	}
	bt.batch.End(trace.WithTimestamp(end))
	clear(bt.invs)
	*bt = Batch{invs: bt.invs[:0]}
	batchPool.Put(bt)
}
