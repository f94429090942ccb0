package streams

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/tracing"
)

// TestTracedRecords: with a tracer, a record's traceparent header is the
// parent of its consumer span, a record without one starts a trace, the
// function sees its invocation span, and the dead letter of a failed
// record carries the record span's traceparent.
func TestTracedRecords(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 1)
	const in = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	e.produce(t, &kgo.Record{Topic: topic, Value: []byte("with"), Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(in)}}})
	e.produce(t, &kgo.Record{Topic: topic, Value: []byte("without")})
	e.produce(t, &kgo.Record{Topic: topic, Value: []byte("bad"), Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(in)}}})

	exp := tracetest.NewInMemoryExporter()
	tr, err := tracing.New(tracing.Config{Exporter: exp, SampleRatio: 1, BatchTimeout: time.Millisecond}, tracing.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	var mu sync.Mutex
	seen := map[string]string{}
	h := func(ctx context.Context, ev *plugins.Event) ([]byte, error) {
		mu.Lock()
		seen[string(ev.Data)] = plugins.TraceParentFrom(ctx)
		mu.Unlock()
		if string(ev.Data) == "bad" {
			return nil, &plugins.FunctionError{Message: "bad"}
		}
		return nil, nil
	}
	fn, err := invoker.New("fn", invoker.Config{Retry: invoker.RetryConfig{Attempts: 1}}, builtinWorker("fn", h), invoker.Deps{Metrics: metrics.NewSet(), Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	if err := fn.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fn.Close(context.Background()) })
	log := testLogger(t)
	trig, err := NewTrigger(Config{Name: "traced", Topics: []string{topic}, Group: topic, Brokers: e.seeds,
		CommitInterval: 50 * time.Millisecond, ClientOpts: []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond)}},
		fn, Deps{Logger: &log, Metrics: metrics.NewSet(), Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := trig.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = trig.Close(ctx)
	})
	e.waitCommitted(t, topic, topic, map[int32]int64{0: 3})

	dl := e.readAll(t, topic+".dlq", 1)
	if len(dl) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dl))
	}
	dlTP, _ := header(dl[0], "traceparent")
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	with, ok := plugins.ParseTraceParent(seen["with"])
	if !ok || seen["with"][3:35] != in[3:35] {
		t.Errorf("the function saw %q for a record carrying %q", seen["with"], in)
	}
	if without, ok := plugins.ParseTraceParent(seen["without"]); !ok || without.TraceID == with.TraceID {
		t.Errorf("the function saw %q for a record carrying no trace", seen["without"])
	}
	var process []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "process "+topic {
			process = append(process, s)
		}
	}
	if len(process) != 3 {
		t.Fatalf("%d record spans, want 3", len(process))
	}
	var inTrace int
	for _, s := range process {
		if s.SpanContext.TraceID().String() == in[3:35] {
			inTrace++
			if s.Parent.SpanID().String() != in[36:52] {
				t.Errorf("record span parent %s, want the header's %s", s.Parent.SpanID(), in[36:52])
			}
		}
	}
	if inTrace != 2 {
		t.Errorf("%d record spans in the header's trace, want 2", inTrace)
	}
	if dlTP == "" || dlTP[3:35] != in[3:35] || dlTP == in {
		t.Errorf("dead letter traceparent %q: want the record span's, in trace %s", dlTP, in[3:35])
	}
}

// TestPublishedTraceparent: an async event and a dead letter written by the
// publisher carry the event's traceparent as a header, for consumers that
// do not read CloudEvents.
func TestPublishedTraceparent(t *testing.T) {
	e := newEnv(t)
	topic := e.topic(t, 1)
	pub, err := NewPublisher(PublisherConfig{Brokers: e.seeds}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ev := &plugins.Event{ID: "1", Source: "/s", Type: "t", TraceParent: tp}
	if err := pub.Publish(ctx, topic, ev); err != nil {
		t.Fatal(err)
	}
	if err := pub.DeadLetterTo(topic).DeadLetter(ctx, &invoker.DeadLetterRecord{Function: "f", Trigger: "http", Event: ev, Err: errors.New("x"), Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, topic, &plugins.Event{ID: "2", Source: "/s", Type: "t"}); err != nil {
		t.Fatal(err)
	}
	rs := e.readAll(t, topic, 3)
	for i, want := range []string{tp, tp, ""} {
		got, _ := header(rs[i], "traceparent")
		if got != want {
			t.Errorf("record %d traceparent header %q, want %q", i, got, want)
		}
	}
}
