package gateway

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/tracing"
)

func testTracer(t testing.TB, ratio float64, exp sdktrace.SpanExporter) *tracing.Tracer {
	t.Helper()
	tr, err := tracing.New(tracing.Config{Exporter: exp, SampleRatio: ratio, BatchTimeout: time.Millisecond}, tracing.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

func tracedFunction(t testing.TB, tr *tracing.Tracer, h plugins.Handler) *invoker.Function {
	t.Helper()
	return startFunctionDeps(t, "fn", h, invoker.Config{}, nil, invoker.Deps{Metrics: metrics.NewSet(), Tracer: tr})
}

// TestServeTraced checks a traced sync request: the response carries the
// request span's traceparent, the event carries it too, and the function's
// context the invocation span's, all in the caller's trace when it named
// one.
func TestServeTraced(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := testTracer(t, 1, exp)
	fn := tracedFunction(t, tr, func(ctx context.Context, ev *plugins.Event) ([]byte, error) {
		return json.Marshal(map[string]string{"event": ev.TraceParent, "ctx": plugins.TraceParentFrom(ctx)})
	})
	s, err := New(Config{}, []Route{{Method: "POST", Path: "/t/{id}", Function: fn}}, Deps{Metrics: metrics.NewSet(), Tracer: tr})
	if err != nil {
		t.Fatal(err)
	}
	const in = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, tc := range []struct{ name, header string }{
		{"continues the caller's trace", "Traceparent: " + in + "\r\n"},
		{"starts a trace", ""},
		{"starts a trace for a malformed traceparent", "Traceparent: 00-nope\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp.Reset()
			ctx := requestCtx(t, "POST /t/1 HTTP/1.1\r\nHost: h\r\n"+tc.header+"Content-Length: 2\r\n\r\n{}")
			s.serve(ctx)
			resp := string(ctx.Response.Header.Peek("Traceparent"))
			rc, ok := plugins.ParseTraceParent(resp)
			if !ok {
				t.Fatalf("response traceparent %q", resp)
			}
			var out map[string]string
			if err := json.Unmarshal(ctx.Response.Body(), &out); err != nil {
				t.Fatalf("%s: %v", ctx.Response.Body(), err)
			}
			if out["event"] != resp {
				t.Errorf("event traceparent %q, response %q", out["event"], resp)
			}
			cc, ok := plugins.ParseTraceParent(out["ctx"])
			if !ok || cc.TraceID != rc.TraceID || cc.SpanID == rc.SpanID {
				t.Errorf("function context traceparent %q, response %q", out["ctx"], resp)
			}
			if tc.header == "" || strings.Contains(tc.header, "nope") {
				if strings.HasPrefix(resp, in[:35]) {
					t.Error("a new trace reused the example id")
				}
			} else if !strings.HasPrefix(resp, in[:36]) {
				t.Errorf("response traceparent %q is not in the caller's trace", resp)
			}
			if err := tr.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			names := map[string]tracetest.SpanStub{}
			for _, sp := range exp.GetSpans() {
				names[sp.Name] = sp
			}
			srv, ok := names["POST /t/{id}"]
			if !ok || names["invoke fn"].Name == "" || names["batch fn"].Name == "" {
				t.Fatalf("spans: %v", names)
			}
			if tc.header != "" && !strings.Contains(tc.header, "nope") && srv.Parent.SpanID().String() != "b7ad6b7169203331" {
				t.Errorf("request span parent %s", srv.Parent.SpanID())
			}
			if names["invoke fn"].SpanContext.SpanID() != cc.SpanID {
				t.Error("the function's context is not the invocation span")
			}
		})
	}
}

// BenchmarkServeHandlerTracing is BenchmarkServeHandler with tracing off,
// on with 1% of traces sampled and on with all of them, spans exported to
// a no-op exporter: what tracing costs the hot path in CPU and
// allocations.
func BenchmarkServeHandlerTracing(b *testing.B) {
	for _, tc := range []struct {
		name  string
		ratio float64
		on    bool
	}{{"off", 0, false}, {"sampled=1%", 0.01, true}, {"sampled=100%", 1, true}} {
		b.Run(tc.name, func(b *testing.B) {
			var tr *tracing.Tracer
			if tc.on {
				tr = testTracer(b, tc.ratio, tracetest.NewNoopExporter())
			}
			fn := tracedFunction(b, tr, builtinHandler(b, "echo"))
			s, err := New(Config{}, []Route{{Method: "POST", Path: "/echo/{id}", Function: fn}}, Deps{Metrics: metrics.NewSet(), Tracer: tr})
			if err != nil {
				b.Fatal(err)
			}
			ctx := requestCtx(b, "POST /echo/42?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: bench\r\n"+
				"Content-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"hello\":\"world\"}")
			b.ReportAllocs()
			for b.Loop() {
				ctx.Request.Header.Del("Traceparent")
				ctx.Response.Reset()
				s.serve(ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}
