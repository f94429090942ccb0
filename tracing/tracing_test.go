package tracing

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluicehq/sluice/plugins"
)

func TestTracesURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"},
		{"http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"},
		{"https://otel.example/v1/traces", "https://otel.example/v1/traces"},
		{"https://otel.example/prefix", "https://otel.example/prefix/v1/traces"},
		{"127.0.0.1:4318", ""},
		{"grpc://c:4317", ""},
	} {
		got, err := TracesURL(tc.in)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("TracesURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func newTestTracer(t *testing.T, ratio float64) (*Tracer, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr, err := New(Config{Exporter: exp, SampleRatio: ratio, BatchTimeout: time.Millisecond}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr, exp
}

// TestSampling checks what a span inherits: a remote parent's trace and
// sampled flag, or a new trace sampled by ratio.
func TestSampling(t *testing.T) {
	t.Parallel()
	const sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	for _, tc := range []struct {
		name        string
		ratio       float64
		parent      string
		wantTrace   string // "" for a new trace
		wantSampled bool
	}{
		{"root, ratio 1", 1, "", "", true},
		{"root, ratio 0", 0, "", "", false},
		{"sampled parent beats ratio 0", 0, sampled, "4bf92f3577b34da6a3ce929d0e0e4736", true},
		{"unsampled parent beats ratio 1", 1, unsampled, "4bf92f3577b34da6a3ce929d0e0e4736", false},
		{"malformed parent starts a trace", 1, "00-zz", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr, exp := newTestTracer(t, tc.ratio)
			sp := tr.Start("s", KindServer, tc.parent, "", time.Time{})
			c, ok := plugins.ParseTraceParent(sp.TraceParent())
			if !ok {
				t.Fatalf("span traceparent %q", sp.TraceParent())
			}
			if tc.wantTrace != "" && sp.TraceID() != tc.wantTrace {
				t.Errorf("trace %s, want %s", sp.TraceID(), tc.wantTrace)
			}
			if tc.wantTrace == "" && sp.TraceID() == "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Error("a new trace reused the malformed parent's id")
			}
			if c.Sampled() != tc.wantSampled {
				t.Errorf("sampled %v, want %v", c.Sampled(), tc.wantSampled)
			}
			sp.End(time.Time{})
			if err := tr.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := len(exp.GetSpans()); (n == 1) != tc.wantSampled {
				t.Errorf("%d spans exported", n)
			}
		})
	}
}

// TestBatchSpans checks the spans of a batch of two events of different
// traces: each queues and runs under its own trace, the batch under the
// first's, linked to the second's.
func TestBatchSpans(t *testing.T) {
	t.Parallel()
	tr, exp := newTestTracer(t, 1)
	a := tr.Start("a", KindServer, "", "", time.Time{})
	b := tr.Start("b", KindServer, "", "", time.Time{})
	batch := &plugins.Batch{ID: "B", Events: []*plugins.Event{{ID: "1", TraceParent: a.TraceParent()}, {ID: "2", TraceParent: b.TraceParent()}}, Results: make([]plugins.Result, 2)}
	start := time.Now()
	bt := tr.StartBatch("fn", batch, start)
	bt.Event(batch, 0, start.Add(-time.Millisecond), 1)
	bt.Event(batch, 1, start.Add(-time.Millisecond), 2)
	for i, want := range []string{a.TraceID(), b.TraceID()} {
		c, ok := plugins.ParseTraceParent(batch.TraceParent(i))
		if !ok || c.String()[3:35] != want {
			t.Errorf("event %d passes on %q, want trace %s", i, batch.TraceParent(i), want)
		}
	}
	bt.End(0, OutcomeSuccess, time.Now())
	bt.End(1, OutcomeError, time.Now())
	bt.Finish(OutcomeSuccess, time.Now())
	a.End(time.Time{})
	b.End(time.Time{})
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byName[s.Name] = append(byName[s.Name], s)
	}
	if len(byName["queue fn"]) != 2 || len(byName["invoke fn"]) != 2 || len(byName["batch fn"]) != 1 {
		t.Fatalf("spans: %v", byName)
	}
	bs := byName["batch fn"][0]
	if bs.Parent.SpanID().String() != a.TraceParent()[36:52] || len(bs.Links) != 1 || bs.Links[0].SpanContext.TraceID().String() != b.TraceID() {
		t.Errorf("batch span: parent %s, links %v", bs.Parent.SpanID(), bs.Links)
	}
	for _, s := range byName["invoke fn"] {
		switch s.SpanContext.TraceID().String() {
		case a.TraceID():
			if s.Parent.SpanID() != bs.SpanContext.SpanID() {
				t.Error("the first event's invocation is not under the batch span")
			}
		case b.TraceID():
			if s.Parent.SpanID().String() != b.TraceParent()[36:52] || len(s.Links) != 1 {
				t.Error("the second event's invocation is not under its own parent, linked to the batch")
			}
		}
	}
}

// TestDeadCollector checks that a collector that is down or hangs costs
// nothing but dropped spans, counted.
func TestDeadCollector(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: connections are refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	_ = ln.Close()
	// A collector that takes the request and never answers.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-stop })}
	go func() { _ = srv.Serve(hang) }()
	t.Cleanup(func() { close(stop); _ = srv.Close() })

	for _, tc := range []struct{ name, url string }{
		{"refused", refused},
		{"hanging", "http://" + hang.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set := metrics.NewSet()
			tr, err := New(Config{Endpoint: tc.url, SampleRatio: 1, QueueSize: 8, BatchSize: 4,
				BatchTimeout: time.Millisecond, ExportTimeout: 50 * time.Millisecond}, Deps{Metrics: set})
			if err != nil {
				t.Fatal(err)
			}
			const n = 100
			for range n {
				tr.Start("s", KindServer, "", "", time.Time{}).End(time.Time{})
			}
			dropped := set.GetOrCreateCounter(`sluice_trace_spans_dropped_total`)
			deadline := time.Now().Add(30 * time.Second)
			for dropped.Get() < n {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d spans counted as dropped", dropped.Get(), n)
				}
				time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
			}
			if got := set.GetOrCreateCounter(`sluice_trace_spans_exported_total`).Get(); got != 0 {
				t.Errorf("%d spans counted as exported", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = tr.Shutdown(ctx)
		})
	}
}

func TestUnsampled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tp   string
		want bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0b", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x", false},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", false},
		{"", false},
	} {
		if got := unsampled(tc.tp); got != tc.want {
			t.Errorf("unsampled(%q) = %v, want %v", tc.tp, got, tc.want)
		}
	}
}
