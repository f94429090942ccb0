package gateway

import (
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/invoker"
)

// BenchmarkServeHandlerStatus is BenchmarkServeHandler with the status
// page's hook on the function, as sluice serve runs it: compare the two
// (the ceiling) for what the status page costs a request.
func BenchmarkServeHandlerStatus(b *testing.B) {
	st := NewStatus(0)
	st.AddFunction(StatusFunction{Name: "echo", Runtime: "go", Instances: 64})
	echo := startFunctionDeps(b, "echo", builtinHandler(b, "echo"), invoker.Config{}, nil,
		invoker.Deps{Metrics: metrics.NewSet(), OnInvocation: st.Observe})
	s, err := New(Config{}, []Route{{Method: "POST", Path: "/echo/{id}", Function: echo}}, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := requestCtx(b, "POST /echo/42?x=1 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: bench\r\n"+
		"Content-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"hello\":\"world\"}")
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		s.serve(ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkStatusObserveParallel is the hook alone, from every core.
func BenchmarkStatusObserveParallel(b *testing.B) {
	st := NewStatus(0)
	st.AddFunction(StatusFunction{Name: "f", Runtime: "go"})
	inv := invoker.Invocation{Function: "f", RequestID: "r", Trigger: "http", Outcome: "success", Start: time.Now(), Duration: time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st.Observe(inv)
		}
	})
}

// BenchmarkWriteMetrics is one /metrics scrape, regrouping included,
// against metrics.WritePrometheus alone (the ceiling).
func BenchmarkWriteMetrics(b *testing.B) {
	set := metrics.NewSet()
	for _, fn := range []string{"a", "b", "c", "d"} {
		set.GetOrCreateCounter(`sluice_bench_total{function="` + fn + `"}`).Inc()
		set.GetOrCreatePrometheusHistogram(`sluice_bench_seconds{function="` + fn + `"}`).Update(0.1)
	}
	metrics.RegisterSet(set)
	b.Cleanup(func() { metrics.UnregisterSet(set, true) })
	var w discard
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			metrics.WritePrometheus(&w, true)
		}
	})
	b.Run("regrouped", func(b *testing.B) {
		for b.Loop() {
			WriteMetrics(&w)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
