package invoker

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/tracing"
)

// TestInvocationSpanAttributes checks what an invocation span says, as
// OpenTelemetry's FaaS conventions name it where they do: the function
// (faas.name), the event (faas.invocation_id), whether it waited for a cold
// start (faas.coldstart, from the worker's InitDuration), the attempt and
// the outcome.
func TestInvocationSpanAttributes(t *testing.T) {
	for _, tt := range []struct {
		name     string
		init     time.Duration
		fail     bool
		wantCold bool
		outcome  string
	}{
		{"warm success", 0, false, false, tracing.OutcomeSuccess},
		{"cold success", 120 * time.Millisecond, false, true, tracing.OutcomeSuccess},
		{"cold error", 80 * time.Millisecond, true, true, tracing.OutcomeError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tr, err := tracing.New(tracing.Config{Exporter: exp, SampleRatio: 1, BatchTimeout: time.Millisecond}, tracing.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
			w := &funcWorker{invoke: func(_ context.Context, b *plugins.Batch) error {
				b.InitDuration = tt.init
				for i := range b.Events {
					if tt.fail {
						b.Results[i] = plugins.Result{Err: &plugins.FunctionError{Message: "no"}}
					} else {
						b.Results[i] = plugins.Result{Output: []byte(`1`)}
					}
				}
				return nil
			}}
			f := startFunction(t, Config{}, w, Deps{Tracer: tr})
			o := f.Call(&Item{Event: newEvent("ev-1"), Trigger: "http"})
			var fe *plugins.FunctionError
			if tt.fail != errors.As(o.Err, &fe) {
				t.Fatalf("outcome %+v", o)
			}
			if err := tr.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			var inv, batch *tracetest.SpanStub
			spans := exp.GetSpans()
			for i := range spans {
				switch spans[i].Name {
				case "invoke f":
					inv = &spans[i]
				case "batch f":
					batch = &spans[i]
				}
			}
			if inv == nil || batch == nil {
				t.Fatalf("spans %v: want an invoke and a batch span", spans)
			}
			attrs := map[attribute.Key]attribute.Value{}
			for _, kv := range inv.Attributes {
				attrs[kv.Key] = kv.Value
			}
			want := map[attribute.Key]any{
				"faas.name":          "f",
				"faas.invocation_id": "ev-1",
				"faas.coldstart":     tt.wantCold,
				"sluice.attempt":     int64(1),
				"sluice.outcome":     tt.outcome,
			}
			if tt.fail {
				want["error.type"] = tracing.OutcomeError
			}
			for k, v := range want {
				if got, ok := attrs[k]; !ok || got.AsInterface() != v {
					t.Errorf("invoke span %s = %v, want %v", k, got.AsInterface(), v)
				}
			}
			if _, ok := attrs["sluice.init_duration_ms"]; ok != tt.wantCold {
				t.Errorf("invoke span has sluice.init_duration_ms: %v, want %v", ok, tt.wantCold)
			}
			cold := false
			for _, kv := range batch.Attributes {
				if kv.Key == "faas.coldstart" {
					cold = kv.Value.AsBool()
				}
			}
			if cold != tt.wantCold {
				t.Errorf("batch span faas.coldstart = %v, want %v", cold, tt.wantCold)
			}
		})
	}
}
