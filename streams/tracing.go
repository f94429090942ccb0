package streams

import (
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sluicehq/sluice/tracing"
)

// headerTraceparent is the record header of W3C trace context, read when
// the record's format carries none of its own (a CloudEvent's traceparent
// extension) and written on the records Sluice produces.
const headerTraceparent = "traceparent"

// traceRecord starts r's consumer span, from its fetch until it is done,
// as a child of the trace context the record carries, and makes it the
// parent of the invocations of r's events.
func (t *Trigger) traceRecord(r *rec) {
	kr := r.kr
	tp, ts := r.events[0].TraceParent, r.events[0].TraceState
	if tp == "" {
		for _, h := range kr.Headers {
			if h.Key == headerTraceparent {
				tp = string(h.Value)
			}
		}
	}
	r.span = t.tr.Start("process "+kr.Topic, tracing.KindConsumer, tp, ts, r.fetchedAt(),
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", kr.Topic),
		attribute.String("messaging.consumer.group.name", t.cfg.Group),
		attribute.Int("messaging.destination.partition.id", int(kr.Partition)),
		attribute.Int64("messaging.kafka.offset", kr.Offset),
		attribute.String("sluice.trigger", t.cfg.Name),
	)
	own := r.span.TraceParent()
	for _, ev := range r.events {
		ev.TraceParent = own
	}
}

// appendTraceparent adds a traceparent header, when there is one, so that
// consumers that do not read CloudEvents continue the trace too.
func appendTraceparent(hs []kgo.RecordHeader, tp string) []kgo.RecordHeader {
	if tp == "" {
		return hs
	}
	return append(hs, kgo.RecordHeader{Key: headerTraceparent, Value: []byte(tp)})
}

// setTraceparent replaces the traceparent header of hs, or adds one.
func setTraceparent(hs []kgo.RecordHeader, tp string) []kgo.RecordHeader {
	if tp == "" {
		return hs
	}
	for i := range hs {
		if hs[i].Key == headerTraceparent {
			hs[i].Value = []byte(tp)
			return hs
		}
	}
	return append(hs, kgo.RecordHeader{Key: headerTraceparent, Value: []byte(tp)})
}
