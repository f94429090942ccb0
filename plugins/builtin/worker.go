package builtin

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/sluicehq/sluice/plugins"
)

// Worker runs a Handler in the gateway's own process: each event of a batch
// in order, on the invoking goroutine. A panicking handler fails only its
// event. It is safe for concurrent use.
type Worker struct {
	name    string
	handler plugins.Handler
	env     map[string]string
	metrics plugins.MetricSink
}

var _ plugins.Worker = (*Worker)(nil)

// NewWorker returns a Worker for function name running h with env visible
// through plugins.Getenv.
func NewWorker(name string, h plugins.Handler, env map[string]string) *Worker {
	return &Worker{name: name, handler: h, env: env}
}

// SetMetrics hands the custom metrics the function puts with
// plugins.PutMetric to sink. Call it before the first Invoke.
func (w *Worker) SetMetrics(sink plugins.MetricSink) { w.metrics = sink }

// Start implements plugins.Worker; a Go function needs no preparation.
func (w *Worker) Start(context.Context) error { return nil }

// Close implements plugins.Worker.
func (w *Worker) Close(context.Context) error { return nil }

// Invoke runs every event of b in order. When the deadline passes mid-batch
// it returns the context's error: the events that finished before keep
// their results, the one running and those after it fail.
func (w *Worker) Invoke(ctx context.Context, b *plugins.Batch) error {
	ctx = plugins.WithFunctionMetrics(ctx, w.name, w.env, w.metrics)
	for i := 0; i < len(b.Events) && ctx.Err() == nil; {
		i = w.runFrom(ctx, b, i)
	}
	return ctx.Err()
}

// runFrom runs the events of b from i on until the deadline passes or one
// panics, which fails only that event, and returns the index of the next
// event to run. One deferred recover per batch rather than per event: for
// a function as small as noop, the per-event frame cost as much as the
// call.
func (w *Worker) runFrom(ctx context.Context, b *plugins.Batch, i int) (next int) {
	next = i
	defer func() {
		if p := recover(); p != nil {
			b.Results[next] = plugins.Result{Err: &plugins.FunctionError{
				Message: fmt.Sprint(p),
				Type:    "Panic",
				Trace:   strings.Split(strings.TrimSpace(string(debug.Stack())), "\n"),
			}}
			next++
		}
	}()
	for ; next < len(b.Events); next++ {
		if ctx.Err() != nil {
			return next
		}
		hctx := ctx
		if b.TraceParents != nil {
			hctx = plugins.WithTraceParent(ctx, b.TraceParent(next))
		}
		out, err := w.handler(hctx, b.Events[next])
		if ctx.Err() != nil {
			// It returned after the deadline: it timed out, whatever it
			// returned.
			return next
		}
		b.Results[next] = plugins.Result{Output: out, Err: err}
	}
	return next
}
