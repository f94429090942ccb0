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
}

var _ plugins.Worker = (*Worker)(nil)

// NewWorker returns a Worker for function name running h with env visible
// through plugins.Getenv.
func NewWorker(name string, h plugins.Handler, env map[string]string) *Worker {
	return &Worker{name: name, handler: h, env: env}
}

// Start implements plugins.Worker; a Go function needs no preparation.
func (w *Worker) Start(context.Context) error { return nil }

// Close implements plugins.Worker.
func (w *Worker) Close(context.Context) error { return nil }

// Invoke runs every event of b in order. When the deadline passes mid-batch
// it returns the context's error, failing the whole batch.
func (w *Worker) Invoke(ctx context.Context, b *plugins.Batch) error {
	ctx = plugins.WithFunction(ctx, w.name, w.env)
	for i, ev := range b.Events {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.Results[i] = w.call(ctx, ev)
	}
	return ctx.Err()
}

func (w *Worker) call(ctx context.Context, ev *plugins.Event) (res plugins.Result) {
	defer func() {
		if p := recover(); p != nil {
			res = plugins.Result{Err: &plugins.FunctionError{
				Message: fmt.Sprint(p),
				Type:    "Panic",
				Trace:   strings.Split(strings.TrimSpace(string(debug.Stack())), "\n"),
			}}
		}
	}()
	out, err := w.handler(ctx, ev)
	return plugins.Result{Output: out, Err: err}
}
